"""The readers on real files, on synthetic trees in each dataset's layout, and on bad input."""

from __future__ import annotations

import re
import struct

import cv2
import numpy as np
import pandas as pd
import pytest
import xxhash

from conftest import write_cnmc_layout, write_image
from leukobench.data.images import decode_image, file_bytes, open_image, thread_map
from leukobench.data.readers import MANIFEST_COLUMNS, READERS, LayoutError, read_dataset
from leukobench.data.readers.allidb import ALLIDB_NAME
from leukobench.data.readers.cnmc import CNMC_NAME
from leukobench.data.store import Preparation, to_model_input


def test_reads_the_real_cnmc_sample(cnmc_sample):
    manifest, rejected = read_dataset("cnmc", cnmc_sample / "C-NMC_Leukemia")
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert rejected.empty
    assert manifest.groupby("class_name").size().to_dict() == {"all": 3, "hem": 3}
    assert set(manifest.loc[manifest["class_name"] == "all", "patient_id"]) == {"1"}
    assert set(manifest.loc[manifest["class_name"] == "hem", "patient_id"]) == {"H6"}
    assert (manifest["label"] == (manifest["class_name"] == "all").astype(int)).all()
    assert (manifest[["width", "height"]] == 450).all().all()
    first = manifest.iloc[0]
    assert first["content_hash"] == xxhash.xxh3_128_hexdigest(open(first["path"], "rb").read())


def test_finds_the_training_folder_above_the_kaggle_root(cnmc_sample):
    manifest, _ = read_dataset("cnmc", cnmc_sample)
    assert len(manifest) == 6


def test_synthetic_tree_counts_folds_and_subjects(tmp_path):
    write_cnmc_layout(tmp_path, {"1": 3, "2": 2, "H1": 4}, fold_of=lambda s: 1 if s == "2" else 0)
    manifest, rejected = read_dataset("cnmc", tmp_path, threads=2)
    assert rejected.empty
    counts = manifest.groupby(["fold", "patient_id"]).size().to_dict()
    assert counts == {("fold_0", "1"): 3, ("fold_0", "H1"): 4, ("fold_1", "2"): 2}
    assert manifest["image_id"].is_unique
    assert all(CNMC_NAME.fullmatch(p.split("/")[-1]) for p in manifest["image_id"])


def test_tcia_layout_with_labelled_preliminary_test_set(tmp_path):
    training = tmp_path / "C-NMC_training_data"
    write_image(training / "fold_0" / "all" / "UID_3_1_1_all.bmp", seed=1)
    write_image(training / "fold_0" / "hem" / "UID_H2_1_1_hem.bmp", seed=2)
    prelim = tmp_path / "C-NMC_test_prelim_phase_data"
    write_image(prelim / "1.bmp", seed=3)
    write_image(prelim / "2.bmp", seed=4)
    pd.DataFrame({
        "Patient_ID": ["UID_57_29_1_all.bmp", "UID_H9_2_1_hem.bmp"], "new_names": ["1.bmp", "2.bmp"], "labels": [1, 0],
    }).to_csv(tmp_path / "C-NMC_test_prelim_phase_data_labels.csv", index=False)
    manifest, rejected = read_dataset("cnmc", tmp_path)
    assert rejected.empty
    prelim_rows = manifest[manifest["subset"] == "prelim_test"].set_index("image_id")
    assert prelim_rows.loc["C-NMC_test_prelim_phase_data/1.bmp", ["label", "patient_id"]].tolist() == [1, "57"]
    assert prelim_rows.loc["C-NMC_test_prelim_phase_data/2.bmp", ["label", "patient_id"]].tolist() == [0, "H9"]
    assert (manifest["subset"] == "training").sum() == 2


def test_bad_files_are_quarantined_with_reasons_and_the_rest_is_read(tmp_path):
    write_cnmc_layout(tmp_path, {"1": 2, "H1": 2})
    all_dir = tmp_path / "training_data" / "fold_0" / "all"
    (all_dir / "UID_1_8_1_all.bmp").write_bytes(b"")
    good = (all_dir / "UID_1_1_1_all.bmp").read_bytes()
    (all_dir / "UID_1_9_1_all.bmp").write_bytes(good[: len(good) // 3])
    (all_dir / "UID_1_7_1_all.bmp").write_text("this is not an image")
    huge = struct.pack("<2sIHHIIiiHHIIiiII", b"BM", 154, 0, 0, 54, 40, 1 << 30, 1 << 30, 1, 24, 0, 0, 2835, 2835, 0, 0)
    (all_dir / "UID_1_6_1_all.bmp").write_bytes(huge + bytes(100))  # above the pixel limit; OpenCV refuses it with an exception
    (all_dir / "notes.txt").write_text("a stray file")
    write_image(all_dir / "UID_H1_5_1_hem.bmp", seed=9)  # a normal cell in the blast folder
    manifest, rejected = read_dataset("cnmc", tmp_path)
    assert len(manifest) == 4
    reasons = {row.path.split("/")[-1]: row.reason for row in rejected.itertuples()}
    assert re.search("empty", reasons["UID_1_8_1_all.bmp"])
    assert re.search("truncated|corrupt", reasons["UID_1_9_1_all.bmp"])
    assert re.search("truncated|corrupt", reasons["UID_1_7_1_all.bmp"])
    assert reasons["UID_1_6_1_all.bmp"].startswith("image is 1073741824 x 1073741824 px = 1,152,921,504,607 Mpx, above")
    assert re.search("truncated|corrupt", open_image(all_dir / "UID_1_6_1_all.bmp", max_pixels=None)[1])
    assert re.search("does not match", reasons["notes.txt"])
    assert re.search("name says 'hem'", reasons["UID_H1_5_1_hem.bmp"])


def test_file_bytes_gives_each_file_exactly_while_reusing_one_buffer(tmp_path):
    """Big, small, empty and big again in one thread: no tail of an earlier, longer file shows."""
    rng = np.random.default_rng(0)
    contents = [rng.bytes(600_000), rng.bytes(1_000), b"", rng.bytes(10), rng.bytes(700_000)]
    for number, content in enumerate(contents):
        (tmp_path / f"{number}.bin").write_bytes(content)
    for number, content in enumerate(contents):
        with file_bytes(tmp_path / f"{number}.bin") as data:
            assert bytes(data) == content
    with pytest.raises(FileNotFoundError):
        with file_bytes(tmp_path / "missing.bin"):
            pass


def test_parallel_ingest_gives_the_serial_manifest_in_the_same_order(tmp_path):
    """Threads change nothing: same rows in the same order, same hashes, same rejected files."""
    subjects = {**{str(s): 9 for s in range(1, 8)}, **{f"H{s}": 7 for s in range(1, 6)}}
    paths = write_cnmc_layout(tmp_path, subjects, fold_of=lambda s: len(s) % 3)
    paths[5].write_bytes(paths[5].read_bytes()[:100])  # truncated
    paths[40].write_bytes(b"")
    paths[41].write_bytes(paths[3].read_bytes())  # a byte-identical copy under another name
    paths[42].write_bytes(paths[3].read_bytes()[:-1] + b"\x07")  # the same image but for its last byte
    serial, serial_rejected = read_dataset("cnmc", tmp_path, threads=1)
    assert len(serial) == len(paths) - 2 and len(serial_rejected) == 2
    assert serial["image_id"].tolist() == sorted(serial["image_id"])  # the walk's order: folds, classes, names
    for threads in (2, 3, 8, 200):
        manifest, rejected = read_dataset("cnmc", tmp_path, threads=threads)
        pd.testing.assert_frame_equal(manifest, serial)
        pd.testing.assert_frame_equal(rejected, serial_rejected)
    copies = serial.set_index("path").loc[[str(paths[3]), str(paths[41]), str(paths[42])], "content_hash"]
    assert copies.iloc[0] == copies.iloc[1] != copies.iloc[2]
    assert serial["content_hash"].duplicated().sum() == 1
    assert (serial["content_hash"] == [xxhash.xxh3_128_hexdigest(open(p, "rb").read()) for p in serial["path"]]).all()


@pytest.mark.parametrize("threads", [1, 2, 5, 64])
@pytest.mark.parametrize("n", [0, 1, 7, 100, 1001])
def test_thread_map_keeps_order_and_raises_the_first_error(threads, n):
    assert thread_map(lambda x: x * x, range(n), threads) == [x * x for x in range(n)]

    def fails_from_50(x):
        if x >= 50:
            raise ValueError(f"item {x}")
        return x

    if n > 50:
        with pytest.raises(ValueError, match="item 50$"):
            thread_map(fails_from_50, range(n), threads)


@pytest.mark.parametrize("layout", ["empty", "flat", "no_folds"])
def test_unknown_layout_names_the_folder_and_the_expected_layout(tmp_path, layout):
    if layout == "flat":
        write_image(tmp_path / "cell.bmp", seed=0)
    if layout == "no_folds":
        write_image(tmp_path / "training_data" / "all" / "UID_1_1_1_all.bmp", seed=0)
    with pytest.raises(LayoutError, match=re.escape(str(tmp_path))) as error:
        read_dataset("cnmc", tmp_path)
    assert "fold_" in str(error.value)


def test_missing_folder_and_unknown_format(tmp_path):
    with pytest.raises(LayoutError, match="does not exist"):
        read_dataset("cnmc", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown dataset format 'kaggle'.*cnmc"):
        read_dataset("kaggle", tmp_path)


# --- Aria et al., ALL-IDB2 and a lab's own folders ------------------------------------------

ARIA_COUNTS = {"Benign": 2, "Early": 3, "Pre": 1, "Pro": 2}


def write_array(path, image: np.ndarray):
    """Write ``image`` at ``path`` in the format its suffix names (OpenCV)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def noise(seed: int, shape=(24, 24, 3), dtype=np.uint8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)


def aria_name(cls: str, n: int, suffix: str = ".jpg") -> str:
    return f"WBC-Benign-{n:03d}{suffix}" if cls == "Benign" else f"WBC-Malignant-{cls}-{n:03d}{suffix}"


def write_aria(folder, counts=ARIA_COUNTS, seed=0):
    """The Kaggle layout under ``folder`` (Original/ or Segmented/): JPEG smear fields."""
    for c, (cls, n) in enumerate(counts.items()):
        for i in range(1, n + 1):
            write_array(folder / cls / aria_name(cls, i), noise(seed + 10 * c + i))


def aria_tree(tmp_path):
    write_aria(tmp_path / "Original")
    write_aria(tmp_path / "Segmented", {"Benign": 1, "Early": 1, "Pre": 1, "Pro": 4}, seed=500)
    return tmp_path


def per_class(manifest):
    return manifest.groupby(["label", "class_name"]).size().to_dict()


def reasons_by_name(rejected):
    return {row.path.split("/")[-1]: row.reason for row in rejected.itertuples()}


def test_readers_are_registered():
    assert {"cnmc", "synthetic", "aria", "allidb", "folder"} <= set(READERS)


def test_aria_four_classes_from_the_folder_holding_original_and_segmented(tmp_path):
    manifest, rejected = read_dataset("aria", aria_tree(tmp_path), threads=2)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert rejected.empty
    assert per_class(manifest) == {(0, "Benign"): 2, (1, "Early"): 3, (2, "Pre"): 1, (3, "Pro"): 2}
    assert manifest["image_id"].str.startswith("Original/").all()
    assert (manifest["patient_id"] == "").all() and (manifest["subset"] == "training").all()
    assert (manifest[["width", "height"]] == 24).all().all()
    assert "Original/Early/WBC-Malignant-Early-002.jpg" in set(manifest["image_id"])


def test_aria_two_classes_and_the_segmented_set(tmp_path):
    root = aria_tree(tmp_path)
    manifest, _ = read_dataset("aria", root, options={"classes": 2})
    assert per_class(manifest) == {(0, "benign"): 2, (1, "malignant"): 6}
    segmented, _ = read_dataset("aria", root, options={"images": "segmented", "classes": 4})
    assert per_class(segmented) == {(0, "Benign"): 1, (1, "Early"): 1, (2, "Pre"): 1, (3, "Pro"): 4}
    assert segmented["image_id"].str.startswith("Segmented/").all()


@pytest.mark.parametrize("start, options, expected_pro", [
    ("Original", None, 2), ("Segmented", None, 4), ("Segmented", {"images": "segmented"}, 4),
])
def test_aria_root_may_be_the_image_set_itself(tmp_path, start, options, expected_pro):
    manifest, rejected = read_dataset("aria", aria_tree(tmp_path) / start, options=options)
    assert rejected.empty
    assert (manifest["class_name"] == "Pro").sum() == expected_pro
    assert manifest["image_id"].str.match(r"(Benign|Early|Pre|Pro)/WBC-").all()


def test_aria_image_set_option_that_contradicts_the_root(tmp_path):
    root = aria_tree(tmp_path) / "Original"
    with pytest.raises(LayoutError, match=re.escape(str(root)) + ".*images: segmented"):
        read_dataset("aria", root, options={"images": "segmented"})
    (tmp_path / "only").mkdir()
    (tmp_path / "Original").rename(tmp_path / "only" / "Original")
    with pytest.raises(LayoutError, match="no Segmented/ folder"):
        read_dataset("aria", tmp_path / "only", options={"images": "segmented"})


def test_aria_bad_files_are_quarantined_with_reasons(tmp_path):
    write_aria(tmp_path / "Original")
    pre = tmp_path / "Original" / "Pre"
    (pre / "WBC-Malignant-Pre-010.jpg").write_bytes(b"")
    good = (pre / "WBC-Malignant-Pre-001.jpg").read_bytes()
    (pre / "WBC-Malignant-Pre-011.jpg").write_bytes(good[: len(good) // 2])
    (pre / "WBC-Malignant-Pre-012.jpg").write_text("not an image")
    ok, png = cv2.imencode(".png", noise(7))
    (pre / "WBC-Malignant-Pre-013.jpg").write_bytes(png.tobytes())  # a PNG under a .jpg name decodes
    write_array(pre / "WBC-Malignant-Pro-099.jpg", noise(8))  # a Pro cell in the Pre folder
    (pre / "Thumbs.db").write_bytes(b"\0" * 10)
    (tmp_path / "Original" / "readme.txt").write_text("stray")
    manifest, rejected = read_dataset("aria", tmp_path)
    assert (manifest["class_name"] == "Pre").sum() == 2
    assert "Original/Pre/WBC-Malignant-Pre-013.jpg" in set(manifest["image_id"])
    reasons = reasons_by_name(rejected)
    assert set(reasons) == {
        "WBC-Malignant-Pre-010.jpg", "WBC-Malignant-Pre-011.jpg", "WBC-Malignant-Pre-012.jpg",
        "WBC-Malignant-Pro-099.jpg", "Thumbs.db", "readme.txt",
    }
    assert re.search("empty", reasons["WBC-Malignant-Pre-010.jpg"])
    assert re.search("truncated|corrupt", reasons["WBC-Malignant-Pre-011.jpg"])
    assert re.search("truncated|corrupt", reasons["WBC-Malignant-Pre-012.jpg"])
    assert re.search("name says 'Pro' but the file is in Pre/", reasons["WBC-Malignant-Pro-099.jpg"])
    assert re.search("does not match", reasons["Thumbs.db"])
    assert re.search("outside the class folders", reasons["readme.txt"])


@pytest.mark.parametrize("classes, left_out", [(4, True), (2, False)])
def test_the_same_bytes_under_two_classes_are_left_out_naming_each_other(tmp_path, classes, left_out):
    """An Early image copied into Pre is one image with two truths: with the 4 classes every copy is
    rejected (a copy within one class stays: the split keeps such copies together); with 2 classes
    Early and Pre are both malignant, so nothing conflicts."""
    write_aria(tmp_path / "Original")
    early, pre = tmp_path / "Original" / "Early", tmp_path / "Original" / "Pre"
    (pre / "WBC-Malignant-Pre-050.jpg").write_bytes((early / "WBC-Malignant-Early-001.jpg").read_bytes())
    (early / "WBC-Malignant-Early-050.jpg").write_bytes((early / "WBC-Malignant-Early-002.jpg").read_bytes())
    manifest, rejected = read_dataset("aria", tmp_path, options={"classes": classes})
    reasons = reasons_by_name(rejected)
    copies, kept = {"WBC-Malignant-Early-001.jpg", "WBC-Malignant-Pre-050.jpg"}, set(manifest["image_id"].str.split("/").str[-1])
    assert (copies <= set(reasons)) == left_out and (not copies & kept) == left_out
    assert {"WBC-Malignant-Early-002.jpg", "WBC-Malignant-Early-050.jpg"} <= kept
    if left_out:
        assert "Pre/WBC-Malignant-Pre-050.jpg (Pre)" in reasons["WBC-Malignant-Early-001.jpg"]
        assert "Early/WBC-Malignant-Early-001.jpg (Early)" in reasons["WBC-Malignant-Pre-050.jpg"]
        assert "cannot be two classes" in reasons["WBC-Malignant-Pre-050.jpg"]


@pytest.mark.parametrize("problem", ["empty_class", "missing_class", "unknown"])
def test_aria_layout_errors_name_the_folder(tmp_path, problem):
    counts = dict(ARIA_COUNTS)
    if problem == "unknown":
        write_image(tmp_path / "cells" / "WBC-Benign-001.jpg", seed=0)
        expected = tmp_path
    else:
        counts.pop("Pre")
        write_aria(tmp_path / "Original", counts)
        if problem == "empty_class":
            (tmp_path / "Original" / "Pre").mkdir()
        expected = tmp_path / "Original" / "Pre" if problem == "empty_class" else tmp_path / "Original"
    with pytest.raises(LayoutError, match=re.escape(str(expected))) as error:
        read_dataset("aria", tmp_path)
    assert "Benign" in str(error.value)


def test_reader_options_are_checked(tmp_path):
    aria_tree(tmp_path)
    with pytest.raises(ValueError, match="unknown option.*'size'.*allowed: classes, images"):
        read_dataset("aria", tmp_path, options={"size": 3})
    with pytest.raises(ValueError, match="classes: 3"):
        read_dataset("aria", tmp_path, options={"classes": 3})
    with pytest.raises(ValueError, match="images: 'raw'"):
        read_dataset("aria", tmp_path, options={"images": "raw"})
    with pytest.raises(ValueError, match="'cnmc' takes no options"):
        read_dataset("cnmc", tmp_path, options={"classes": 2})
    with pytest.raises(ValueError, match="named group 'patient'"):
        read_dataset("folder", tmp_path, options={"patient_pattern": r"P\d+"})


def write_allidb(img_dir, labels=(1, 0, 1, 0, 0)):
    """ALL-IDB2 crops: 257x257 8-bit RGB TIFF, Im<nnn>_<label>.tif."""
    for n, label in enumerate(labels, start=1):
        write_array(img_dir / f"Im{n:03d}_{label}.tif", noise(n, shape=(257, 257, 3)))


@pytest.mark.parametrize("start", ["", "ALL_IDB2", "ALL_IDB2/img"])
def test_allidb_labels_from_the_suffix(tmp_path, start):
    write_allidb(tmp_path / "ALL_IDB2" / "img")
    root = tmp_path / start if start else tmp_path
    manifest, rejected = read_dataset("allidb", root)
    assert rejected.empty
    assert per_class(manifest) == {(0, "normal"): 3, (1, "blast"): 2}
    assert (manifest[["width", "height"]] == 257).all().all()
    assert (manifest["patient_id"] == "").all()
    assert all(ALLIDB_NAME.fullmatch(i.split("/")[-1]) for i in manifest["image_id"])
    labels = manifest.set_index(manifest["image_id"].str.split("/").str[-1])["label"]
    assert labels["Im001_1.tif"] == 1 and labels["Im002_0.tif"] == 0


def test_allidb_bad_names_and_files(tmp_path):
    img = tmp_path / "ALL_IDB2" / "img"
    write_allidb(img, labels=(1, 0))
    good = (img / "Im001_1.tif").read_bytes()
    (img / "Im003_1.tif").write_bytes(good[: len(good) // 2])
    (img / "Im004_0.tif").write_bytes(b"")
    write_array(img / "Im005_2.tif", noise(5))
    write_array(img / "Im006_1.jpg", noise(6))
    manifest, rejected = read_dataset("allidb", tmp_path)
    assert len(manifest) == 2
    reasons = reasons_by_name(rejected)
    assert re.search("truncated|corrupt", reasons["Im003_1.tif"])
    assert re.search("empty", reasons["Im004_0.tif"])
    assert re.search("does not match", reasons["Im005_2.tif"])
    assert re.search("does not match", reasons["Im006_1.jpg"])


@pytest.mark.parametrize("layout", ["empty", "other_images", "empty_img"])
def test_allidb_unknown_layout_names_the_folder(tmp_path, layout):
    if layout == "other_images":
        write_image(tmp_path / "cells" / "Im001_1.bmp", seed=0)
    if layout == "empty_img":
        (tmp_path / "ALL_IDB2" / "img").mkdir(parents=True)
    expected = tmp_path / "ALL_IDB2" / "img" if layout == "empty_img" else tmp_path
    with pytest.raises(LayoutError, match=re.escape(str(expected))) as error:
        read_dataset("allidb", tmp_path)
    assert "ALL_IDB2/img/Im<nnn>_<0|1>.tif" in str(error.value)


def write_lab_folders(root):
    """Two classes with nested folders and mixed formats, file names <patient>_<cell>."""
    write_array(root / "normal" / "P01_1.png", noise(1))
    write_array(root / "normal" / "day2" / "P02_1.tif", noise(2, shape=(24, 24), dtype=np.uint16))  # 16-bit gray
    write_array(root / "normal" / "P02_2.tiff", noise(3))  # 8-bit RGB
    write_array(root / "blast" / "P03_1.png", noise(4, shape=(24, 24, 4)))  # RGBA
    write_array(root / "blast" / "P03_2.jpg", noise(5, shape=(24, 24)))  # gray
    write_array(root / "blast" / "scan" / "P04_1.bmp", noise(6))
    write_array(root / "blast" / "P05_1.tif", noise(7, shape=(24, 32, 3), dtype=np.uint16))  # 16-bit RGB


def test_folder_reader_alphabetical_classes_and_formats(tmp_path):
    write_lab_folders(tmp_path)
    manifest, rejected = read_dataset("folder", tmp_path)
    assert rejected.empty
    assert per_class(manifest) == {(0, "blast"): 4, (1, "normal"): 3}
    assert (manifest["patient_id"] == "").all()
    assert set(manifest["image_id"]) >= {"normal/day2/P02_1.tif", "blast/scan/P04_1.bmp"}
    size = manifest.set_index("image_id")[["width", "height"]]
    assert size.loc["blast/P05_1.tif"].tolist() == [32, 24]


def test_folder_reader_class_order_and_patients(tmp_path):
    write_lab_folders(tmp_path)
    write_array(tmp_path / "unsure" / "P09_1.png", noise(9))
    write_array(tmp_path / "blast" / "cell_without_patient.png", noise(10))
    (tmp_path / "normal" / "notes.txt").write_text("scanned on a Tuesday")
    options = {"classes": ["normal", "blast"], "patient_pattern": r"^(?P<patient>P\d+)_"}
    manifest, rejected = read_dataset("folder", tmp_path, options=options)
    assert per_class(manifest) == {(0, "normal"): 3, (1, "blast"): 4}
    assert manifest.groupby("patient_id").size().to_dict() == {"P01": 1, "P02": 2, "P03": 2, "P04": 1, "P05": 1}
    reasons = reasons_by_name(rejected)
    assert re.search("not one of the classes", reasons["unsure"])
    assert re.search("finds no patient", reasons["cell_without_patient.png"])
    assert re.search("not an image", reasons["notes.txt"])


def test_folder_reader_bad_files_are_quarantined(tmp_path):
    write_lab_folders(tmp_path)
    (tmp_path / "blast" / "zero.tif").write_bytes(b"")
    good = (tmp_path / "normal" / "P02_2.tiff").read_bytes()
    (tmp_path / "normal" / "cut.tiff").write_bytes(good[: len(good) // 2])
    jpeg = cv2.imencode(".jpg", noise(11))[1].tobytes()
    (tmp_path / "normal" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (tmp_path / "normal" / "text.png").write_text("no pixels here")
    (tmp_path / "normal" / "png_named.bmp").write_bytes(cv2.imencode(".png", noise(12))[1].tobytes())
    manifest, rejected = read_dataset("folder", tmp_path)
    assert "normal/png_named.bmp" in set(manifest["image_id"])
    reasons = reasons_by_name(rejected)
    assert set(reasons) == {"zero.tif", "cut.tiff", "cut.jpg", "text.png"}
    assert re.search("empty", reasons["zero.tif"])
    assert all(re.search("truncated|corrupt", reasons[n]) for n in ("cut.tiff", "cut.jpg", "text.png"))


@pytest.mark.parametrize("problem", ["one_class", "empty_class", "missing_listed", "empty_listed"])
def test_folder_layout_errors_name_the_folder(tmp_path, problem):
    options = None
    write_array(tmp_path / "blast" / "a.png", noise(1))
    expected = tmp_path
    if problem == "empty_class":
        (tmp_path / "normal" / "sub").mkdir(parents=True)
        expected = tmp_path / "normal"
    if problem == "missing_listed":
        write_array(tmp_path / "normal" / "a.png", noise(2))
        options = {"classes": ["normal", "blast", "other"]}
    if problem == "empty_listed":
        (tmp_path / "normal").mkdir()
        (tmp_path / "normal" / "notes.txt").write_text("no images")
        options = {"classes": ["blast", "normal"]}
        expected = tmp_path / "normal"
    with pytest.raises(LayoutError, match=re.escape(str(expected))) as error:
        read_dataset("folder", tmp_path, options=options)
    assert "<root>/<class_name>/**/<image>" in str(error.value)
    if problem == "missing_listed":
        assert "other" in str(error.value)


def test_uncommon_pixel_formats_become_sensible_rgb_model_inputs(tmp_path):
    gray16 = np.full((30, 20), 65535 // 2, dtype=np.uint16)
    gray16[:, 10:] = 65535
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # blue in OpenCV's BGRA order
    rgba[..., 3] = 128
    tif = write_array(tmp_path / "gray16.tif", gray16)
    png = write_array(tmp_path / "rgba.png", rgba)
    assert decode_image(tif.read_bytes()).dtype == np.uint16
    assert decode_image(png.read_bytes()).shape == (20, 20, 4)
    prep = Preparation(size=16, color="rgb")
    from_tif = to_model_input(open_image(tif)[0], prep)
    from_png = to_model_input(open_image(png)[0], prep)
    for image in (from_tif, from_png):
        assert image.dtype == np.uint8 and image.shape == (16, 16, 3)
    assert np.allclose(from_tif[:, 0], 127, atol=1) and (from_tif[:, -1] == 255).all()
    assert (from_tif[..., 0] == from_tif[..., 1]).all() and (from_tif[..., 1] == from_tif[..., 2]).all()
    assert (from_png.reshape(-1, 3) == [0, 0, 255]).all()  # RGB order: blue is the last channel


# --- sample types, channel counts and the pixel limit: one rule in open_image ----------------

def tiff_bytes(array: np.ndarray) -> bytes:
    """An uncompressed one-strip little-endian TIFF of ``array`` ((h, w) or (h, w, c), any numeric
    type): for what OpenCV cannot write (uint32, float16, gray + alpha)."""
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    samples = 1 if array.ndim == 2 else array.shape[2]
    data = array.astype(array.dtype.newbyteorder("<")).tobytes()
    tags = [(256, 4, [width]), (257, 4, [height]), (258, 3, [array.dtype.itemsize * 8] * samples), (259, 3, [1]),
            (262, 3, [2 if samples >= 3 else 1]), (273, 4, [0]), (277, 3, [samples]), (278, 4, [height]),
            (279, 4, [len(data)]), (284, 3, [1])] + ([(338, 3, [2])] if samples in (2, 4) else []) + [
            (339, 3, [{"u": 1, "i": 2, "f": 3}[array.dtype.kind]] * samples)]
    extra_at = 8 + 2 + 12 * len(tags) + 4
    extra, entries = b"", []
    for tag, kind, values in tags:
        packed = struct.pack(f"<{len(values)}{'H' if kind == 3 else 'I'}", *values)
        if len(packed) > 4:
            entries.append((tag, kind, len(values), struct.pack("<I", extra_at + len(extra))))
            extra += packed
        else:
            entries.append((tag, kind, len(values), packed.ljust(4, b"\0")))
    data_at = extra_at + len(extra)
    ifd = b"".join(struct.pack("<HHI", tag, kind, count) + (struct.pack("<I", data_at) if tag == 273 else field)
                   for tag, kind, count, field in entries)
    return b"II*\0" + struct.pack("<IH", 8, len(tags)) + ifd + struct.pack("<I", 0) + extra + data


def ramp(dtype, high, shape=(6, 8), low=0) -> np.ndarray:
    return np.linspace(low, high, num=int(np.prod(shape))).reshape(shape).astype(dtype)


def gray_alpha_png(gray: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.dstack([gray, np.full_like(gray, 7)]), mode="LA").save(buffer, format="PNG")
    return buffer.getvalue()


GRAY8, BGR16, UNIT_BGR = ramp(np.uint8, 255), ramp(np.uint16, 65535, (6, 8, 3)), ramp(np.float32, 1.0, (6, 8, 3))
WITH_NAN = ramp(np.float32, 1.0)
WITH_NAN[2, 3] = np.nan
# file name: (what is written: an array for cv2.imwrite or the bytes, the 8-bit image open_image gives or the reason)
SAMPLE_TYPES = {
    "uint8_gray.tif": (GRAY8, GRAY8),
    "uint8_bgra.png": (ramp(np.uint8, 255, (6, 8, 4)), ramp(np.uint8, 255, (6, 8, 4))[..., :3]),
    "uint16_bgr.tif": (BGR16, np.rint(BGR16 / 257).astype(np.uint8)),  # 255/65535 = 1/257
    "uint16_bgra.png": (ramp(np.uint16, 65535, (6, 8, 4)), np.rint(ramp(np.uint16, 65535, (6, 8, 4))[..., :3] / 257)),
    "int8_gray.tif": (ramp(np.int8, 100), ramp(np.uint8, 100)),
    "int8_negative.tif": (ramp(np.int8, 100, low=-5), "sample type int8 with values outside [0, 255] (min -5, max 100)"),
    "int16_bgr.tif": (ramp(np.int16, 255, (6, 8, 3)), ramp(np.uint8, 255, (6, 8, 3))),
    "int16_12bit.tif": (ramp(np.int16, 4095), "sample type int16 with values outside [0, 255] (min 0, max 4095)"),
    "int32_0_to_999.tif": (ramp(np.int32, 999), "sample type int32 with values outside [0, 255] (min 0, max 999): "
                           "convert to 8- or 16-bit unsigned integer images"),
    "int32_bgra.tif": (ramp(np.int32, 255, (6, 8, 4)), ramp(np.uint8, 255, (6, 8, 4))[..., :3]),
    "float32_bgr.tif": (UNIT_BGR, np.rint(UNIT_BGR * 255).astype(np.uint8)),
    "float32_bgra.tif": (np.dstack([UNIT_BGR, np.full((6, 8), 7.0, np.float32)]),  # the alpha's range is not judged
                         np.rint(UNIT_BGR * 255).astype(np.uint8)),
    "float32_range.tif": (np.array([[-3.2, 0.0, 870.0]] * 3, np.float32),
                          "sample type float32 with values outside [0, 1] (min -3.2, max 870): "
                          "convert to 8- or 16-bit integer images"),
    "float32_nan.tif": (WITH_NAN, "sample type float32 with NaN or infinite values"),
    "float64_gray.tif": (ramp(np.float64, 1.0), np.rint(ramp(np.float64, 1.0) * 255).astype(np.uint8)),
    "uint32.tif": (tiff_bytes(ramp(np.uint32, 255)), "not a decodable image"),  # OpenCV reads no uint32 or float16
    "float16.tif": (tiff_bytes(ramp(np.float16, 1.0)), "not a decodable image"),
    "gray_alpha.tif": (tiff_bytes(np.dstack([GRAY8, np.full_like(GRAY8, 7)])), GRAY8),  # OpenCV drops the alpha itself
    "gray_alpha.png": (gray_alpha_png(GRAY8), np.dstack([GRAY8] * 3)),  # OpenCV gives BGRA with gray in B, G and R
}


@pytest.fixture(scope="module")
def sample_type_tree(tmp_path_factory):
    """Every case of SAMPLE_TYPES in class folder cells/ of a folder dataset, read by ingest."""
    root = tmp_path_factory.mktemp("sample_types")
    for name, (content, _) in SAMPLE_TYPES.items():
        if isinstance(content, bytes):
            (root / "cells").mkdir(exist_ok=True)
            (root / "cells" / name).write_bytes(content)
        else:
            write_array(root / "cells" / name, content)
    write_image(root / "other" / "plain.bmp", seed=0)
    manifest, rejected = read_dataset("folder", root)
    return root, manifest.set_index("image_id"), reasons_by_name(rejected)


@pytest.mark.parametrize("name", SAMPLE_TYPES)
def test_every_sample_type_is_converted_by_one_rule_or_quarantined_naming_it(sample_type_tree, name):
    """Ingest's verdict, open_image's pixels, and the store's and predict's preparation of them."""
    from leukobench.apply.inputs import prepare_image
    from leukobench.data.store import load_image

    root, manifest, reasons = sample_type_tree
    path, expected = root / "cells" / name, SAMPLE_TYPES[name][1]
    image, problem, _ = open_image(path)
    if isinstance(expected, str):
        assert reasons[name].startswith(expected) and problem == reasons[name]
        assert f"cells/{name}" not in manifest.index and image is None
        with pytest.raises(ValueError, match=re.escape(str(path))):
            load_image(path, Preparation(size=8))
        return
    assert name not in reasons
    assert image.dtype == np.uint8 and image.ndim in (2, 3) and (image.ndim == 2 or image.shape[2] == 3)
    np.testing.assert_array_equal(image, expected.astype(np.uint8))
    assert manifest.loc[f"cells/{name}", ["width", "height"]].tolist() == [8, 6]
    for prep in (Preparation(size=8), Preparation(size=12, color="gray")):
        prepared = to_model_input(expected.astype(np.uint8), prep)
        np.testing.assert_array_equal(load_image(path, prep), prepared)
        np.testing.assert_array_equal(prepare_image(path, prep), prepared)


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height 8-bit gray pixels, with almost no pixel data."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(1000))) + chunk(b"IEND", b"")


@pytest.fixture
def decoded_sizes(monkeypatch):
    """The byte counts cv2.imdecode is given, from here on."""
    sizes, real_imdecode = [], cv2.imdecode

    def imdecode(data, flags):
        sizes.append(len(data))
        return real_imdecode(data, flags)

    monkeypatch.setattr(cv2, "imdecode", imdecode)
    return sizes


def test_an_image_above_the_pixel_limit_is_quarantined_with_its_size_without_being_decoded(tmp_path, decoded_sizes):
    huge = huge_png_header(20000, 20000)  # decoded it would take 400 MB (gray), 1.2 GB as RGB
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "huge.png").write_bytes(huge)
    plain = [write_image(tmp_path / cls / "plain.bmp", seed=seed) for seed, cls in enumerate(("cells", "other"))]
    manifest, rejected = read_dataset("folder", tmp_path, threads=2)  # the default limit, 50 Mpx
    assert reasons_by_name(rejected) == {"huge.png": "image is 20000 x 20000 px = 400 Mpx, above the limit of 50 Mpx "
                                                      "(ingest.max_pixels); crop it or raise the limit"}
    assert manifest["image_id"].tolist() == ["cells/plain.bmp", "other/plain.bmp"]
    assert decoded_sizes == [p.stat().st_size for p in plain]  # the huge PNG's pixels were never decoded
    assert open_image(tmp_path / "cells" / "huge.png")[1] == reasons_by_name(rejected)["huge.png"]  # predict's default


def test_the_pixel_limit_reads_the_size_of_any_tiff_from_its_header(tmp_path, decoded_sizes):
    """A float RGB TIFF has no Pillow mode: its size comes from its first directory (tifffile)."""
    write_array(tmp_path / "cells" / "big.png", noise(1, (40, 40, 3)))
    write_array(tmp_path / "cells" / "big_float.tif", noise(2, (40, 40, 3)).astype(np.float32) / 255)
    write_array(tmp_path / "cells" / "small_float.tif", noise(3, (20, 25, 3)).astype(np.float32) / 255)
    write_array(tmp_path / "other" / "small.png", noise(4, (25, 20, 3)))
    manifest, rejected = read_dataset("folder", tmp_path, max_pixels=1000)
    too_large = "image is 40 x 40 px = 0.0016 Mpx, above the limit of 0.001 Mpx (ingest.max_pixels); crop it or raise the limit"
    assert reasons_by_name(rejected) == {"big.png": too_large, "big_float.tif": too_large}
    assert sorted(manifest["image_id"]) == ["cells/small_float.tif", "other/small.png"]
    assert len(decoded_sizes) == 2  # the two small ones only
    assert open_image(tmp_path / "cells" / "big.png", max_pixels=None)[0].shape == (40, 40, 3)  # None: no limit


def test_an_image_whose_header_is_not_read_is_held_to_the_limit_once_decoded(tmp_path, monkeypatch):
    import leukobench.data.images

    path = write_array(tmp_path / "big.png", noise(1, (40, 30, 3)))
    monkeypatch.setattr(leukobench.data.images, "image_size", lambda path: None)  # a format only OpenCV reads
    assert open_image(path, max_pixels=1000)[1].startswith("image is 30 x 40 px = 0.0012 Mpx, above the limit")
    assert open_image(path, max_pixels=1200)[0].shape == (40, 30, 3)
