"""The Parquet image store: balancing, preparation, metadata, vectorised loading."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import write_cnmc_layout
from leukobench.readers import read_dataset
from leukobench.splits import assign_splits
from leukobench.store import STORE_COLUMNS, Preparation, build_store, load_image, load_store, read_metadata, to_model_input

RATIOS = {"train": 0.5, "val": 0.25, "test": 0.25}


@pytest.fixture
def dataset(tmp_path):
    subjects = {**{str(s): 6 for s in range(1, 9)}, **{f"H{s}": 3 for s in range(1, 5)}}
    write_cnmc_layout(tmp_path / "raw", subjects)
    manifest, _ = read_dataset("cnmc", tmp_path / "raw")
    return manifest, assign_splits(manifest, "subject", RATIOS, seed=0)


def test_store_is_balanced_per_split_and_round_trips_pixels(dataset, tmp_path):
    manifest, splits = dataset
    prep = Preparation(size=16, color="rgb")
    out = tmp_path / "store" / "16px.parquet"
    build_store(manifest, splits, prep, out, threads=2, provenance={"dataset": "toy"})
    assert pq.read_schema(out).names == STORE_COLUMNS
    store = load_store(out)
    assert store.images.shape == (len(store.frame), 16, 16, 3) and store.images.dtype == np.uint8
    counts = store.frame.groupby(["split", "label"]).size().unstack()
    assert (counts[0] == counts[1]).all()
    assert store.metadata["dataset"] == "toy" and store.class_names == ["hem", "all"]
    assert read_metadata(out)["preparation"] == prep.__dict__
    row = store.frame.iloc[3]
    np.testing.assert_array_equal(store.images[3], load_image(row["source"], prep))
    assert (store.frame.merge(splits, on="image_id")["split_x"] == store.frame.merge(splits, on="image_id")["split_y"]).all()


def test_no_balancing_keeps_every_image_and_gray_has_one_channel(dataset, tmp_path):
    manifest, splits = dataset
    build_store(manifest, splits, Preparation(size=12, color="gray", balance="none"), tmp_path / "s.parquet")
    store = load_store(tmp_path / "s.parquet")
    assert len(store.frame) == len(splits) and store.images.shape[1:] == (12, 12, 1)


def test_colour_conversion_follows_opencv_conventions():
    prep_rgb, prep_gray = Preparation(size=8, color="rgb"), Preparation(size=8, color="gray")
    blue_bgr = np.zeros((16, 16, 3), np.uint8)
    blue_bgr[..., 0] = 255
    assert to_model_input(blue_bgr, prep_rgb)[0, 0].tolist() == [0, 0, 255]
    bgra = np.dstack([blue_bgr, np.full((16, 16), 255, np.uint8)])
    assert to_model_input(bgra, prep_rgb)[0, 0].tolist() == [0, 0, 255]
    sixteen_bit = np.full((16, 16), 65535, np.uint16)
    assert to_model_input(sixteen_bit, prep_gray).max() == 255
    assert to_model_input(sixteen_bit, prep_rgb).shape == (8, 8, 3)
    assert to_model_input(blue_bgr, prep_gray)[0, 0, 0] == cv2.cvtColor(blue_bgr, cv2.COLOR_BGR2GRAY)[0, 0]


def test_a_failed_build_leaves_no_store_behind(dataset, tmp_path):
    manifest, splits = dataset
    out = tmp_path / "broken.parquet"
    (tmp_path / "raw" / manifest.iloc[0]["image_id"]).write_bytes(b"gone")
    with pytest.raises(ValueError, match="not a decodable image"):
        build_store(manifest, splits, Preparation(size=8, balance="none"), out)
    assert list(tmp_path.glob("*broken*")) == []


def test_split_rows_missing_from_the_manifest_are_an_error(dataset, tmp_path):
    manifest, splits = dataset
    with pytest.raises(ValueError, match="missing from the manifest"):
        build_store(manifest.iloc[2:], splits, Preparation(size=8), tmp_path / "s.parquet")


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 4}, "at least 8"), ({"size": 32, "color": "hsv"}, "colour mode 'hsv'"), ({"size": 32, "balance": "smote"}, "balance 'smote'"),
])
def test_bad_preparation_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Preparation(**kwargs)
