"""The Parquet image store: balancing, preparation, metadata, vectorised loading."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import write_cnmc_layout
from leukobench.data.images import to_8bit
from leukobench.data.readers import read_dataset
from leukobench.data.splits import assign_splits
from leukobench.data.store import STORE_COLUMNS, Preparation, build_store, load_image, load_store, read_metadata, to_model_input

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
    written = build_store(manifest, splits, prep, out, threads=2, provenance={"dataset": "toy"})
    assert pq.read_schema(out).names == STORE_COLUMNS
    store = load_store(out)
    np.testing.assert_array_equal(written.images, store.images)  # what it returns is what it wrote
    assert written.frame["image_id"].tolist() == store.frame["image_id"].tolist() and written.metadata == store.metadata
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
    assert to_model_input(to_8bit(bgra)[0], prep_rgb)[0, 0].tolist() == [0, 0, 255]
    sixteen_bit = np.full((16, 16), 65535, np.uint16)
    assert to_model_input(to_8bit(sixteen_bit)[0], prep_gray).max() == 255
    assert to_model_input(to_8bit(sixteen_bit)[0], prep_rgb).shape == (8, 8, 3)
    for undecoded in (bgra, sixteen_bit):  # sample types and alpha are the decoding layer's (open_image)
        with pytest.raises(ValueError, match="uint8 gray or BGR"):
            to_model_input(undecoded, prep_rgb)
    assert to_model_input(blue_bgr, prep_gray)[0, 0, 0] == cv2.cvtColor(blue_bgr, cv2.COLOR_BGR2GRAY)[0, 0]


def test_a_failed_build_leaves_no_store_behind(dataset, tmp_path):
    manifest, splits = dataset
    out = tmp_path / "broken.parquet"
    (tmp_path / "raw" / manifest.iloc[0]["image_id"]).write_bytes(b"gone")
    with pytest.raises(ValueError, match="not a decodable image"):
        build_store(manifest, splits, Preparation(size=8, balance="none"), out)
    assert list(tmp_path.glob("*broken*")) == []


def tiff_as(path: Path, image: np.ndarray) -> Path:
    """``image`` encoded as a TIFF (any sample type OpenCV writes) at ``path``, whatever its suffix."""
    path.write_bytes(cv2.imencode(".tif", image)[1].tobytes())
    return path


def test_a_float_image_is_quarantined_in_ingest_rather_than_failing_the_store(tmp_path):
    """It used to pass ingest and stop every store of the dataset with "Invalid integer data type 'f'."."""
    paths = write_cnmc_layout(tmp_path / "raw", {"1": 4, "2": 4, "H1": 4, "H2": 4})
    floats = tiff_as(paths[1], np.linspace(-3.2, 870.0, 40 * 40 * 3, dtype=np.float32).reshape(40, 40, 3))
    manifest, rejected = read_dataset("cnmc", tmp_path / "raw")
    assert rejected.set_index("path")["reason"].to_dict() == {str(floats): (
        "sample type float32 with values outside [0, 1] (min -3.2, max 870): convert to 8- or 16-bit integer images")}
    splits = assign_splits(manifest, "random", RATIOS, seed=0)
    store = build_store(manifest, splits, Preparation(size=8, balance="none"), tmp_path / "s.parquet")
    assert len(store.frame) == len(paths) - 1


@pytest.mark.parametrize("changed", [
    np.full((40, 40, 3), 870.0, np.float32),  # used to fail with "Invalid integer data type 'f'." naming no file
    np.full((40, 40, 3), 999, np.int32),  # used to be stored as an all-black image
])
def test_a_file_changed_after_ingest_stops_the_store_naming_it(dataset, tmp_path, changed):
    manifest, splits = dataset
    path = tiff_as(tmp_path / "raw" / manifest.iloc[0]["image_id"], changed)
    with pytest.raises(ValueError, match=re.escape(f"{path}: sample type {changed.dtype.name} with values outside")
                       + ".*changed after ingest"):
        build_store(manifest, splits, Preparation(size=8, balance="none"), tmp_path / "s.parquet", threads=2)


def test_the_store_holds_files_to_the_pixel_limit_it_is_given(dataset, tmp_path):
    manifest, splits = dataset
    with pytest.raises(ValueError, match=r"\.bmp: image is 40 x 40 px = 0\.0016 Mpx, above the limit of 0\.001 Mpx"):
        build_store(manifest, splits, Preparation(size=8), tmp_path / "s.parquet", max_pixels=1000)


def test_split_rows_missing_from_the_manifest_are_an_error(dataset, tmp_path):
    manifest, splits = dataset
    with pytest.raises(ValueError, match="missing from the manifest"):
        build_store(manifest.iloc[2:], splits, Preparation(size=8), tmp_path / "s.parquet")


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 4}, "at least 8"), ({"size": 32, "color": "hsv"}, "colour mode 'hsv'"), ({"size": 32, "balance": "oversample"}, "needs per_class"), ({"size": 32, "normalization": "zscore"}, "normalization 'zscore'"), ({"size": 32, "balance": "smote"}, "balance 'smote'"),
    ({"size": 32, "interpolation": "cubic"}, "interpolation 'cubic' unknown; allowed: area, linear, nearest"),
])
def test_bad_preparation_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Preparation(**kwargs)


AUGMENTATION = {"rotation_range": 30, "shear_range": 0.2, "brightness_range": [0.1, 1.0]}  # Varol's Dataset3


@pytest.fixture
def big_dataset(tmp_path):
    """Imbalanced like C-NMC: more blasts than normal cells."""
    subjects = {**{str(s): 10 for s in range(1, 9)}, **{f"H{s}": 8 for s in range(1, 6)}}
    write_cnmc_layout(tmp_path / "raw", subjects)
    manifest, _ = read_dataset("cnmc", tmp_path / "raw")
    return manifest, assign_splits(manifest, "subject", {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)


@pytest.mark.parametrize("per_class", [20, 30])
def test_undersampling_to_n_per_class_gives_n_per_class(big_dataset, tmp_path, per_class):
    manifest, splits = big_dataset
    build_store(manifest, splits, Preparation(size=8, per_class=per_class), tmp_path / "s.parquet")
    frame = load_store(tmp_path / "s.parquet").frame
    assert frame.groupby("label").size().tolist() == [per_class, per_class]
    assert not frame["augmented"].any()


def test_undersampling_beyond_what_exists_names_the_split_and_class(big_dataset, tmp_path):
    manifest, splits = big_dataset
    with pytest.raises(ValueError, match=r"class 0: \d+ images wanted but only \d+ available"):
        build_store(manifest, splits, Preparation(size=8, per_class=200), tmp_path / "s.parquet")
    assert not (tmp_path / "s.parquet").exists()


def test_oversampling_adds_augmented_copies_to_the_training_split_only(big_dataset, tmp_path):
    manifest, splits = big_dataset
    prep = Preparation(size=16, balance="oversample", per_class=100, augmentation=AUGMENTATION)
    build_store(manifest, splits, prep, tmp_path / "s.parquet")
    store = load_store(tmp_path / "s.parquet")
    frame = store.frame
    assert frame.groupby("label").size().tolist() == [100, 100]
    augmented = frame[frame["augmented"]]
    assert len(augmented) > 0 and set(augmented["split"]) == {"train"}
    train_originals = set(frame.loc[(frame["split"] == "train") & ~frame["augmented"], "image_id"])
    assert set(augmented["source"]) <= train_originals
    assert not store.metadata["leaky"]
    source_of = frame.set_index("image_id")
    first = augmented.iloc[0]
    assert source_of.loc[first["source"], "label"] == first["label"]
    assert not np.array_equal(store.images[augmented.index[0]], store.images[source_of.index.get_loc(first["source"])])


def test_augmenting_before_the_split_is_leaky_and_marked(big_dataset, tmp_path):
    manifest, splits = big_dataset
    prep = Preparation(size=16, balance="oversample", per_class=100, augmentation=AUGMENTATION, augment_scope="before_split")
    build_store(manifest, splits, prep, tmp_path / "s.parquet")
    store = load_store(tmp_path / "s.parquet")
    assert store.metadata["leaky"]
    assert set(store.frame.loc[store.frame["augmented"], "split"]) > {"train"}


def test_normalisation_statistics_come_from_the_training_split(big_dataset, tmp_path):
    manifest, splits = big_dataset
    build_store(manifest, splits, Preparation(size=8, normalization="per_channel"), tmp_path / "s.parquet")
    store = load_store(tmp_path / "s.parquet")
    train, _, _ = store.part("train")
    np.testing.assert_allclose(store.metadata["normalization"]["mean"], train.reshape(-1, 3).mean(axis=0) / 255)
    everything = store.images.reshape(-1, 3).mean(axis=0) / 255
    assert not np.allclose(store.metadata["normalization"]["mean"], everything)
    build_store(manifest, splits, Preparation(size=8, normalization="mean_image"), tmp_path / "m.parquet")
    assert np.asarray(load_store(tmp_path / "m.parquet").metadata["normalization"]["mean"]).shape == (8, 8, 3)


def _reference_model_input(image: np.ndarray, prep: Preparation) -> np.ndarray:
    """to_model_input as it was first written: every colour conversion before the resize."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, np.iinfo(image.dtype).max))
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if prep.color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    interpolation = cv2.INTER_AREA if max(image.shape[:2]) > prep.size else cv2.INTER_LINEAR
    resized = cv2.resize(image, (prep.size, prep.size), interpolation=interpolation)
    return resized.reshape(prep.size, prep.size, prep.channels)


@pytest.mark.parametrize("color", ["rgb", "gray"])
@pytest.mark.parametrize("size", [8, 32, 64, 100, 224])
def test_model_input_is_pixel_equal_to_converting_colours_before_the_resize(color, size):
    """Reordering channels after the resize changes no pixel: shrinking (integer and fractional
    factors) and enlarging, 8 and 16 bit, gray, gray with a channel axis, BGR, BGRA, non-square.
    The decoding layer's rule (to_8bit: 16 bit to 8, alpha dropped) followed by to_model_input
    gives what the first to_model_input gave from OpenCV's raw output."""
    rng = np.random.default_rng(size)
    shapes = [(450, 450, 3), (257, 257, 3), (224, 224, 3), (64, 64, 3), (40, 40, 3), (300, 200, 3),
              (450, 450, 4), (120, 90, 4), (450, 450), (37, 53), (96, 96, 1)]
    images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
    images += [rng.integers(0, 65536, shape, dtype=np.uint16) for shape in [(128, 128, 3), (50, 70)]]
    smooth = cv2.GaussianBlur(images[0], (0, 0), 5)  # image-like content as well as noise
    prep = Preparation(size=size, color=color)
    for image in images + [smooth]:
        np.testing.assert_array_equal(to_model_input(to_8bit(image)[0], prep), _reference_model_input(image, prep),
                                      err_msg=str(image.shape))


def test_store_pixels_are_the_reference_preparation_of_each_file(dataset, tmp_path):
    manifest, splits = dataset
    for prep in (Preparation(size=32, balance="none"), Preparation(size=12, color="gray", balance="none")):
        store = build_store(manifest, splits, prep, tmp_path / f"{prep.color}.parquet", threads=3)
        paths = manifest.set_index("image_id").loc[store.frame["image_id"], "path"]
        expected = np.stack([_reference_model_input(cv2.imread(p, cv2.IMREAD_UNCHANGED), prep) for p in paths])
        np.testing.assert_array_equal(store.images, expected)


def test_model_input_of_real_cells_is_pixel_equal_to_the_reference(cnmc_sample):
    for path in sorted(cnmc_sample.rglob("*.bmp")):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        for prep in (Preparation(size=32), Preparation(size=224), Preparation(size=64, color="gray")):
            np.testing.assert_array_equal(to_model_input(image, prep), _reference_model_input(image, prep))


def test_nearest_picks_the_pixels_of_the_studies_keras_loader(cnmc_sample):
    """``interpolation: nearest`` is what ``keras.utils.load_img(path, target_size=...)`` gives."""
    from keras.utils import img_to_array, load_img

    for path in sorted(cnmc_sample.rglob("*.bmp")):
        for size in (32, 48, 100, 224):
            keras_pixels = img_to_array(load_img(path, target_size=(size, size))).astype(np.uint8)
            np.testing.assert_array_equal(load_image(path, Preparation(size=size, interpolation="nearest")), keras_pixels)


def test_area_averages_away_detail_finer_than_a_pixel_and_the_others_alias():
    """A one-pixel checkerboard shrunk 450 -> 32: area gives its mean grey, nearest and linear
    give a pattern that is not in the image (aliasing)."""
    board = np.indices((450, 450)).sum(axis=0) % 2 * 255
    image = np.dstack([board] * 3).astype(np.uint8)
    area = to_model_input(image, Preparation(size=32))
    assert np.abs(area.astype(int) - 127.5).max() <= 8
    for interpolation in ("nearest", "linear"):
        aliased = to_model_input(image, Preparation(size=32, interpolation=interpolation))
        assert aliased.std() > 40 or np.abs(aliased.astype(int) - 127.5).max() > 60, interpolation
    enlarged = to_model_input(image[:20, :20], Preparation(size=40, interpolation="area"))
    np.testing.assert_array_equal(enlarged, to_model_input(image[:20, :20], Preparation(size=40, interpolation="linear")))


@pytest.mark.parametrize("interpolation", ["area", "linear", "nearest"])
def test_the_store_records_its_interpolation_and_its_pixels_follow_it(dataset, tmp_path, interpolation):
    manifest, splits = dataset
    prep = Preparation(size=20, balance="none", interpolation=interpolation)
    store = build_store(manifest, splits, prep, tmp_path / "s.parquet", threads=2)
    recorded = Preparation(**read_metadata(tmp_path / "s.parquet")["preparation"])
    assert recorded == prep
    paths = manifest.set_index("image_id").loc[store.frame["image_id"], "path"]
    np.testing.assert_array_equal(store.images, np.stack([load_image(p, recorded) for p in paths]))
    flag = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST_EXACT}[interpolation]
    first = cv2.imread(paths.iloc[0], cv2.IMREAD_COLOR)
    expected = cv2.cvtColor(cv2.resize(first, (20, 20), interpolation=flag), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(store.images[0], expected)


def test_outputs_are_written_with_the_usual_permissions_not_private_ones(tmp_path):
    import os
    import stat

    from leukobench.io import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "table.csv") as tmp:
            tmp.write_text("a\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "table.csv").stat().st_mode) == 0o644


@pytest.mark.slow
def test_varol_dataset_variants_have_the_papers_sizes_per_class(tmp_path):
    """The preset's dataset1/2/3 on its C-NMC-sized stand-in (10,658 cells): 1266, 2823 and 6070
    images per class; Dataset3's augmented copies are all in the training split."""
    import yaml

    from leukobench.data.synthetic import SyntheticSpec, write_cnmc_tree

    preset = yaml.safe_load((Path(__file__).resolve().parents[1] / "presets" / "varol2024.yaml").read_text())
    write_cnmc_tree(tmp_path / "raw", SyntheticSpec(**{**preset["datasets"]["cnmc"]["synthetic"], "image_size": 32}))
    manifest, _ = read_dataset("cnmc", tmp_path / "raw", threads=2)
    split = preset["split"]
    splits = assign_splits(manifest, split["method"], split["ratios"], split["seed"])
    for variant, per_class in (("dataset1", 1266), ("dataset2", 2823), ("dataset3", 6070)):
        prep = Preparation(size=8, **preset["variants"][variant])
        frame = build_store(manifest, splits, prep, tmp_path / f"{variant}.parquet", threads=2).frame
        assert frame.groupby("class_name").size().to_dict() == {"all": per_class, "hem": per_class}, variant
        assert not frame.loc[frame["split"] != "train", "augmented"].any()
        assert frame["augmented"].any() == (variant == "dataset3")
