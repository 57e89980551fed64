"""The classes of a dataset are fixed by its reader and its config, never by which files could be read;
odd file and folder names (case, bytes that are not UTF-8) are read or quarantined, never a crash."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

from conftest import write_cnmc_layout, write_image
from leukobench.data.readers import NOT_UTF8, LayoutError, MissingClassError, read_dataset


def write_folder_dataset(root: Path, classes=("A", "B", "C"), per_class=3) -> None:
    for c, cls in enumerate(classes):
        for i in range(per_class):
            write_image(root / cls / f"P{i}_{cls}.png", seed=10 * c + i, size=16)


def corrupt(folder: Path) -> None:
    for path in folder.iterdir():
        path.write_bytes(path.read_bytes()[:20])  # a header, no pixels


def test_a_declared_class_whose_files_were_all_rejected_stops_ingest_naming_it(tmp_path):
    write_folder_dataset(tmp_path)
    corrupt(tmp_path / "A")
    with pytest.raises(MissingClassError) as error:
        read_dataset("folder", tmp_path, options={"classes": ["A", "B", "C"]})
    message = str(error.value)
    assert "class 'A'" in message and "'B'" not in message.split("\n", 1)[1]
    assert f"all 3 file(s) in {tmp_path / 'A'}" in message
    assert "3 x not a decodable image" in message
    assert str(tmp_path / "A" / "P0_A.png") in message


def test_a_class_with_no_file_at_all_is_named_with_the_expected_layout(tmp_path):
    write_cnmc_layout(tmp_path, {"1": 3, "2": 3})  # leukemic subjects only: no hem/ anywhere
    with pytest.raises(MissingClassError, match=r"class 'hem': no file of it was found \(expected layout: C-NMC"):
        read_dataset("cnmc", tmp_path)


def test_the_labels_are_the_readers_classes_whatever_survives(tmp_path):
    write_folder_dataset(tmp_path)
    (tmp_path / "A" / "P0_A.png").write_bytes(b"")  # one bad file of A: A keeps label 0
    manifest, rejected = read_dataset("folder", tmp_path, options={"classes": ["A", "B", "C"]})
    assert manifest.groupby("class_name")["label"].first().to_dict() == {"A": 0, "B": 1, "C": 2}
    assert rejected["path"].tolist() == [str(tmp_path / "A" / "P0_A.png")]


def test_cnmc_class_folders_and_names_are_matched_without_regard_to_case(tmp_path):
    paths = write_cnmc_layout(tmp_path, {"1": 2, "H1": 2})
    for path in paths:  # as a copy from a Windows share may come: Hem/, UID_h1_..._HEM.BMP
        if path.parent.name == "hem":
            path.rename(path.with_name(path.name.replace("H1", "h1").replace("hem.bmp", "HEM.BMP")))
    (tmp_path / "training_data/fold_0/hem").rename(tmp_path / "training_data/fold_0/Hem")
    manifest, rejected = read_dataset("cnmc", tmp_path)
    assert rejected.empty
    assert manifest.groupby(["label", "class_name", "patient_id"]).size().to_dict() == {
        (0, "hem", "H1"): 2, (1, "all", "1"): 2}


def test_aria_and_folder_classes_are_matched_without_regard_to_case(tmp_path):
    for seed, cls in enumerate(("benign", "EARLY", "pre", "Pro")):
        stage = "Benign" if cls == "benign" else f"Malignant-{cls.capitalize()}"
        write_image(tmp_path / "aria" / "original" / cls / f"WBC-{stage}-001.jpg", seed=seed, size=16)
    manifest, _ = read_dataset("aria", tmp_path / "aria")
    assert manifest.groupby("label")["class_name"].first().tolist() == ["Benign", "Early", "Pre", "Pro"]

    write_folder_dataset(tmp_path / "lab", classes=("blast", "Normal"))
    manifest, _ = read_dataset("folder", tmp_path / "lab", options={"classes": ["normal", "blast"]})
    assert manifest.groupby("class_name")["label"].first().to_dict() == {"normal": 0, "blast": 1}


def test_folders_that_differ_only_in_case_are_refused_naming_both(tmp_path):
    write_folder_dataset(tmp_path, classes=("blast", "Blast", "normal"))
    with pytest.raises(LayoutError, match=re.escape(f"{tmp_path}: folders Blast, blast differ only in case")):
        read_dataset("folder", tmp_path, options={"classes": ["normal", "blast"]})


def test_file_names_that_are_not_utf8_are_quarantined_and_the_manifest_is_written(tmp_path):
    write_folder_dataset(tmp_path, classes=("blast", "normal"))
    good = write_image(tmp_path / "P9.png", seed=99, size=16)  # (cv2.imwrite crashes on such a name)
    os.rename(good, os.fsencode(tmp_path / "blast") + b"/P9_\xff\xfe.png")  # Latin-1 bytes from an old lab share
    os.mkdir(os.fsencode(tmp_path) + b"/caf\xe9")  # a class-like folder with such a name
    manifest, rejected = read_dataset("folder", tmp_path)
    assert sorted(manifest["class_name"].unique()) == ["blast", "normal"] and len(manifest) == 6
    reasons = dict(zip(rejected["path"], rejected["reason"]))
    assert reasons == {f"{tmp_path}/blast/P9_\\xff\\xfe.png": NOT_UTF8, f"{tmp_path}/caf\\xe9": NOT_UTF8}
    manifest.to_parquet(tmp_path / "manifest.parquet")  # what the ingest job writes: no UnicodeEncodeError
    rejected.to_csv(tmp_path / "rejected.tsv", sep="\t", index=False)
    assert pd.read_csv(tmp_path / "rejected.tsv", sep="\t")["path"].str.contains(r"\\xff\\xfe").any()
