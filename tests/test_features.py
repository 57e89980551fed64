"""Feature stores: pixels, HOG + PCA (fitted on train only) and a trained CNN's conv features.

The image stores here hold a known signal: leukemic cells ("all") are large bright discs, normal
ones ("hem") small dark discs, at jittered places, with noise. ``test_classical.py`` reuses the
builders below.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leukobench.learn.feature_store import load_features, write_features
from leukobench.learn.feature_extractors import FEATURE_EXTRACTORS, extract_features, list_extractors
from leukobench.data.readers import read_dataset
from leukobench.data.splits import assign_splits
from leukobench.data.store import Preparation, build_store, load_store

SIZE = 32
SUBJECTS_PER_CLASS = 20  # 12 subjects in the test split: enough for a bootstrap interval (subjects.MIN_INTERVAL_GROUPS)
CELLS_PER_SUBJECT = 7
RATIOS = {"train": 0.5, "val": 0.2, "test": 0.3}
NOISE_SD = 25.0
# label -> (disc radius, grey level): blasts large and bright, normal cells small and dark
DISCS = {1: (10.0, 200.0), 0: (6.0, 110.0)}
# four classes for the multi-class case (Aria's names), radius growing with the class
FOUR_CLASSES = ("Benign", "Early", "Pre", "Pro")
FOUR_CLASS_DISCS = {k: (4.0 + 3.0 * k, 90.0 + 40.0 * k) for k in range(len(FOUR_CLASSES))}
FOUR_CLASS_IMAGES = 80


def disc_image(rng: np.random.Generator, radius: float, level: float, size: int = SIZE) -> np.ndarray:
    """A noisy disc (BGR uint8) at a jittered centre, with a jittered radius and brightness."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.uniform(-3, 3, size=2)
    r = radius + rng.uniform(-1.5, 1.5)
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    grey = np.where(inside, level + rng.normal(0, 15), 20.0) + rng.normal(0, NOISE_SD, (size, size))
    tint = np.array([1.0, 0.6, 0.9])  # stained purple-ish, so RGB differs from grey
    return np.clip(grey[:, :, None] * tint, 0, 255).astype(np.uint8)


def write_disc_cnmc(root: Path, seed: int = 0) -> Path:
    """A C-NMC (Kaggle layout) tree of disc cells: subjects 1..n are ALL, H1..Hn healthy."""
    rng = np.random.default_rng(seed)
    for label, cls, prefix in ((1, "all", ""), (0, "hem", "H")):
        for subject in range(1, SUBJECTS_PER_CLASS + 1):
            for cell in range(1, CELLS_PER_SUBJECT + 1):
                path = root / "training_data" / "fold_0" / cls / f"UID_{prefix}{subject}_{cell}_1_{cls}.bmp"
                path.parent.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(path), disc_image(rng, *DISCS[label]))
    return root


def binary_store(root: Path, prep: Preparation = Preparation(size=SIZE)) -> Path:
    """The disc dataset read with the C-NMC reader, split by subject, built into a store."""
    raw = root / "raw"
    if not raw.is_dir():
        write_disc_cnmc(raw)
    manifest, rejected = read_dataset("cnmc", raw, threads=2)
    assert rejected.empty
    splits = assign_splits(manifest, "subject", RATIOS, seed=0)
    path = root / f"{prep.color}_{prep.size}px.parquet"
    build_store(manifest, splits, prep, path, threads=2)
    return path


def four_class_store(root: Path, seed: int = 0) -> Path:
    """Four classes of discs (no patients: each image is its own group), random stratified split."""
    rng = np.random.default_rng(seed)
    records = []
    for label, name in enumerate(FOUR_CLASSES):
        for i in range(FOUR_CLASS_IMAGES):
            path = root / "raw" / name / f"{name}-{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), disc_image(rng, *FOUR_CLASS_DISCS[label]))
            image_id = f"{name}-{i:03d}"
            records.append({"image_id": image_id, "path": str(path), "label": label, "class_name": name,
                            "patient_id": image_id, "subset": "training"})
    manifest = pd.DataFrame(records)
    splits = assign_splits(manifest, "random", RATIOS, seed=0)
    path = root / "four_class.parquet"
    build_store(manifest, splits, Preparation(size=SIZE), path, provenance={"dataset": "discs4"})
    return path


def with_changed_images(store_path: Path, out_path: Path, splits: set[str]) -> Path:
    """The same store with the images of ``splits`` replaced by their negatives."""
    table = pq.read_table(store_path)
    split = table.column("split").to_pylist()
    pixels = [bytes(255 - np.frombuffer(p, np.uint8)) if s in splits else p
              for p, s in zip(table.column("pixels").to_pylist(), split)]
    index = table.schema.get_field_index("pixels")
    pq.write_table(table.set_column(index, table.schema.field(index), pa.array(pixels, type=pa.binary())), out_path)
    return out_path


@pytest.fixture(scope="module")
def store_path(tmp_path_factory) -> Path:
    return binary_store(tmp_path_factory.mktemp("discs"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- pixels, round trip


def test_registry_lists_the_extractors():
    assert list_extractors() == sorted(FEATURE_EXTRACTORS) == ["hog_pca", "pixels"]


def test_pixel_features_are_the_flattened_pixels_in_unit_range(store_path, tmp_path):
    rows = extract_features(store_path, "pixels", tmp_path / "pixels.parquet")
    loaded_rows, features, metadata = load_features(tmp_path / "pixels.parquet")
    store = load_store(store_path)
    assert features.dtype == np.float32 and features.shape == (len(store.images), SIZE * SIZE * 3)
    np.testing.assert_allclose(features, store.images.reshape(len(store.images), -1) / 255.0, rtol=1e-6)
    assert 0.0 <= features.min() and features.max() <= 1.0
    pd.testing.assert_frame_equal(loaded_rows, rows)
    assert loaded_rows["image_id"].tolist() == store.frame["image_id"].tolist()
    assert metadata["extractor"] == "pixels" and metadata["model_path"] is None


@pytest.mark.parametrize("row_group_bytes", [64 << 20, 16])  # one row group, or one per row
def test_feature_store_round_trip(tmp_path, monkeypatch, row_group_bytes):
    monkeypatch.setattr("leukobench.learn.feature_store.ROW_GROUP_BYTES", row_group_bytes)
    rows = pd.DataFrame({
        "image_id": ["a", "b", "c"], "patient_id": ["p1", "p1", "p2"], "split": ["train", "val", "test"],
        "label": np.array([0, 1, 2], dtype="int16"), "class_name": ["x", "y", "z"],
    })
    features = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    metadata = {"extractor": "test", "class_names": ["x", "y", "z"], "parameters": {"k": [1, 2]}}
    write_features(rows, features, metadata, tmp_path / "f.parquet")
    loaded_rows, loaded, loaded_metadata = load_features(tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(loaded_rows, rows)
    np.testing.assert_array_equal(loaded, features)
    assert loaded_metadata == metadata
    assert pq.read_schema(tmp_path / "f.parquet").field("features").type == pa.list_(pa.float32(), 4)
    assert pq.ParquetFile(tmp_path / "f.parquet").metadata.num_row_groups == (1 if row_group_bytes > 16 else 3)


def test_metadata_records_how_the_features_were_made(store_path, tmp_path):
    extract_features(store_path, "hog_pca", tmp_path / "hog.parquet", pca_components=20, seed=3)
    _, features, metadata = load_features(tmp_path / "hog.parquet")
    assert metadata["extractor"] == "hog_pca"
    assert metadata["source_store"] == str(store_path)
    assert metadata["class_names"] == ["hem", "all"]
    assert metadata["store_metadata"]["preparation"]["size"] == SIZE
    assert metadata["options"] == {"pca_components": 20, "seed": 3} and metadata["model_path"] is None
    hog, pca = metadata["parameters"]["hog"], metadata["parameters"]["pca"]
    assert (hog["orientations"], hog["pixels_per_cell"], hog["cells_per_block"]) == (9, 8, 3)
    assert hog["block_norm"] == "L2-Hys"
    assert hog["n_values"] == 2 * 2 * 3 * 3 * 9  # 32 px: 4x4 cells, 2x2 blocks of 3x3 cells, 9 bins
    assert pca["components"] == 20 == features.shape[1] == metadata["n_features"]
    assert pca["fitted_on"] == "train"
    json.dumps(metadata)  # plain JSON all the way down


# ----------------------------------------------------------------------------- HOG + PCA


def test_hog_pca_reduces_to_the_requested_components(store_path, tmp_path):
    extract_features(store_path, "hog_pca", tmp_path / "hog.parquet")
    rows, features, _ = load_features(tmp_path / "hog.parquet")
    assert features.shape == (len(rows), 100)
    train = (rows["split"] == "train").to_numpy()
    # PCA scores of the data PCA was fitted on are centred there
    np.testing.assert_allclose(features[train].mean(axis=0), 0, atol=1e-4)


def test_pca_components_are_capped_with_a_note(store_path, tmp_path, capsys):
    extract_features(store_path, "hog_pca", tmp_path / "hog.parquet", pca_components=1000)
    rows, features, metadata = load_features(tmp_path / "hog.parquet")
    n_train = int((rows["split"] == "train").sum())
    expected = min(n_train, 324)
    assert features.shape[1] == expected == metadata["parameters"]["pca"]["components"]
    assert f"{expected} components instead of the 1000 requested" in capsys.readouterr().out


def test_pca_is_fitted_on_the_train_split_only(store_path, tmp_path):
    changed = with_changed_images(store_path, tmp_path / "changed.parquet", {"val", "test"})
    extract_features(store_path, "hog_pca", tmp_path / "a.parquet", pca_components=30)
    extract_features(changed, "hog_pca", tmp_path / "b.parquet", pca_components=30)
    rows, original, _ = load_features(tmp_path / "a.parquet")
    _, altered, _ = load_features(tmp_path / "b.parquet")
    train = (rows["split"] == "train").to_numpy()
    np.testing.assert_array_equal(altered[train], original[train])
    assert not np.allclose(altered[~train], original[~train])


def test_hog_needs_images_of_one_block(tmp_path):
    small = binary_store(tmp_path, Preparation(size=16))
    with pytest.raises(ValueError, match="at least 24 px"):
        extract_features(small, "hog_pca", tmp_path / "out" / "hog.parquet")
    assert not (tmp_path / "out").exists() or leftovers(tmp_path / "out") == []


# ----------------------------------------------------------------------------- CNN features


@pytest.mark.slow
def test_the_training_job_writes_the_feature_layer_of_its_model(store_path, tmp_path):
    """train_from_store with features_path (rule train_with_features): the conv features in the
    layout of every feature store, from the model it saved."""
    from leukobench.learn.saved_model import TrainedModel
    from leukobench.learn.cnn_features import write_conv_features
    from leukobench.learn.train import TrainingSpec, train_from_store

    model_path = tmp_path / "model.keras"
    train_from_store(store_path, TrainingSpec(model="abed_cnn", epochs=1, batch_size=64), model_path,
                     tmp_path / "history.csv", trial={"model": "abed_cnn"}, threads=2,
                     features_path=tmp_path / "cnn.parquet")
    rows, features, metadata = load_features(tmp_path / "cnn.parquet")

    trained = TrainedModel.load(model_path)
    width = int(np.prod(trained.model.get_layer("features").output.shape[1:]))
    assert width == 4 * 4 * 128  # abed_cnn at 32 px: 30 -> 15 -> 13 -> 6 -> 4, 128 filters
    store = load_store(store_path)
    assert features.shape == (len(store.frame), width)
    assert rows["image_id"].tolist() == store.frame["image_id"].tolist()
    assert np.isfinite(features).all() and features.min() >= 0  # ReLU outputs
    assert metadata["extractor"] == "cnn" and metadata["model_path"] == str(model_path)
    assert metadata["parameters"]["model"] == "abed_cnn"
    # the saved model gives the same features (they were taken from the model in memory)
    write_conv_features(trained, store, store_path, model_path, tmp_path / "again.parquet")
    np.testing.assert_allclose(load_features(tmp_path / "again.parquet")[1], features, rtol=1e-5, atol=1e-6)

    # a store prepared differently from the model's is refused, and nothing is written
    gray = binary_store(tmp_path, Preparation(size=SIZE, color="gray"))
    with pytest.raises(ValueError, match="prepared with"):
        write_conv_features(trained, load_store(gray), gray, model_path, tmp_path / "out" / "cnn.parquet")
    assert not (tmp_path / "out").exists() or leftovers(tmp_path / "out") == []


# ----------------------------------------------------------------------------- errors


def test_unknown_extractor_is_named(store_path, tmp_path):
    with pytest.raises(ValueError, match=r"unknown feature extractor 'sift'.*hog_pca, pixels"):
        extract_features(store_path, "sift", tmp_path / "f.parquet")
    assert leftovers(tmp_path) == []


def test_bad_requests_fail_before_reading(tmp_path):
    with pytest.raises(ValueError, match="pca_components must be a positive integer"):
        extract_features(tmp_path / "no-such-store.parquet", "hog_pca", tmp_path / "f.parquet", pca_components=0)
