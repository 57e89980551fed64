"""The C-NMC reader on real files, on synthetic trees in both layouts, and on bad input."""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pytest

from conftest import write_cnmc_layout, write_image
from leukobench.readers import CNMC_NAME, MANIFEST_COLUMNS, LayoutError, read_dataset


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
    assert first["sha256"] == hashlib.sha256(open(first["path"], "rb").read()).hexdigest()


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
    (all_dir / "notes.txt").write_text("a stray file")
    write_image(all_dir / "UID_H1_5_1_hem.bmp", seed=9)  # a normal cell in the blast folder
    manifest, rejected = read_dataset("cnmc", tmp_path)
    assert len(manifest) == 4
    reasons = {row.path.split("/")[-1]: row.reason for row in rejected.itertuples()}
    assert re.search("empty", reasons["UID_1_8_1_all.bmp"])
    assert re.search("truncated|corrupt", reasons["UID_1_9_1_all.bmp"])
    assert re.search("truncated|corrupt", reasons["UID_1_7_1_all.bmp"])
    assert re.search("does not match", reasons["notes.txt"])
    assert re.search("name says 'hem'", reasons["UID_H1_5_1_hem.bmp"])


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
