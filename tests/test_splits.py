"""Subject-disjoint and cell-level splits."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from leukobench.data.splits import assign_splits

RATIOS = {"train": 0.7, "val": 0.15, "test": 0.15}


def manifest_of(n_all: int, n_hem: int, seed: int = 0) -> pd.DataFrame:
    """Subjects of one class each, with uneven numbers of cells, as in C-NMC."""
    rng = np.random.default_rng(seed)
    rows = []
    for prefix, n, label in (("", n_all, 1), ("H", n_hem, 0)):
        for s in range(1, n + 1):
            for c in range(int(rng.integers(5, 40))):
                rows.append({"image_id": f"{prefix}{s}/{c}", "patient_id": f"{prefix}{s}", "label": label, "subset": "training"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_subject_in_two_parts_and_every_part_has_both_classes(seed):
    manifest = manifest_of(20, 10, seed)
    splits = assign_splits(manifest, "subject", RATIOS, seed)
    assert splits.groupby("patient_id")["split"].nunique().max() == 1
    assert set(splits["split"]) == {"train", "val", "test"}
    assert (splits.groupby("split")["label"].nunique() == 2).all()
    assert len(splits) == len(manifest)


def test_subject_split_follows_the_ratios_per_class():
    manifest = manifest_of(60, 40)
    splits = assign_splits(manifest, "subject", RATIOS, seed=0)
    shares = splits.groupby("label")["split"].value_counts(normalize=True)
    for label in (0, 1):
        for name, ratio in RATIOS.items():
            assert shares[(label, name)] == pytest.approx(ratio, abs=0.06)


def test_same_seed_same_split_other_seed_other_split():
    manifest = manifest_of(20, 10)
    first = assign_splits(manifest, "subject", RATIOS, seed=3)
    assert first.equals(assign_splits(manifest, "subject", RATIOS, seed=3))
    assert not first["split"].equals(assign_splits(manifest, "subject", RATIOS, seed=4)["split"])


def test_random_split_is_cell_level_and_stratified():
    manifest = manifest_of(20, 10)
    splits = assign_splits(manifest, "random", RATIOS, seed=0)
    assert splits.groupby("patient_id")["split"].nunique().max() > 1  # the leak it is named for
    overall = manifest["label"].mean()
    for _, part in splits.groupby("split"):
        assert part["label"].mean() == pytest.approx(overall, abs=0.03)
    assert (splits["split"] == "test").mean() == pytest.approx(0.15, abs=0.01)


def test_only_the_training_subset_is_split():
    manifest = manifest_of(6, 6)
    manifest.loc[manifest.index[:5], "subset"] = "prelim_test"
    splits = assign_splits(manifest, "subject", RATIOS, seed=0)
    assert len(splits) == len(manifest) - 5


def test_the_labelled_preliminary_test_set_is_an_external_split_when_asked():
    from leukobench.data.splits import fold_partition

    manifest = manifest_of(12, 12)
    prelim = manifest["patient_id"].isin(["1", "H1"])
    manifest.loc[prelim, "subset"] = "prelim_test"
    splits = assign_splits(manifest, "subject", RATIOS, seed=0, external_test=True)
    external = splits[splits["split"] == "external"]
    assert set(external["image_id"]) == set(manifest.loc[prelim, "image_id"])
    assert not set(splits.loc[splits["split"] != "external", "patient_id"]) & {"1", "H1"}
    folded = assign_splits(manifest, "subject", RATIOS, seed=0, folds=3, external_test=True)
    for fold in range(3):
        part = fold_partition(folded, fold)
        assert set(part.loc[part["split"] == "external", "image_id"]) == set(external["image_id"])
    with pytest.raises(ValueError, match="no images outside its training subset"):
        assign_splits(manifest_of(6, 6), "subject", RATIOS, seed=0, external_test=True)


@pytest.mark.parametrize("ratios, message", [
    ({"train": 0.7, "val": 0.2, "test": 0.2}, "sum to 1"),
    ({"train": 0.8, "test": 0.2}, "exactly"),
    ({"train": 1.2, "val": -0.1, "test": -0.1}, ">= 0"),
])
def test_bad_ratios_are_refused(ratios, message):
    with pytest.raises(ValueError, match=message):
        assign_splits(manifest_of(6, 6), "subject", ratios, seed=0)


def test_too_few_subjects_and_unknown_method():
    with pytest.raises(ValueError, match="class 0 has 2 subject"):
        assign_splits(manifest_of(5, 2), "subject", RATIOS, seed=0)
    with pytest.raises(ValueError, match="unknown split method 'patient'"):
        assign_splits(manifest_of(5, 5), "patient", RATIOS, seed=0)


def manifest_with_copies(n_images: int = 120, n_copied: int = 15, patients: bool = False) -> pd.DataFrame:
    """Images without known subjects (as in Aria), some of them present twice or three times."""
    rows = [{"image_id": f"img{i}", "patient_id": "", "label": i % 2, "subset": "training", "content_hash": f"h{i}"}
            for i in range(n_images)]
    for i in range(n_copied):
        for copy in range(1 + i % 2):
            rows.append({**rows[i], "image_id": f"img{i}_copy{copy}"})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("method", ["subject", "random"])
def test_byte_identical_copies_never_straddle_two_parts(method):
    manifest = manifest_with_copies()
    splits = assign_splits(manifest, method, RATIOS, seed=0).merge(manifest[["image_id", "content_hash"]], on="image_id")
    assert len(splits) == len(manifest)
    assert splits.groupby("content_hash")["split"].nunique().max() == 1
    assert set(splits["split"]) == {"train", "val", "test"}


def test_without_subjects_the_subject_split_works_per_image():
    splits = assign_splits(manifest_with_copies(n_copied=0), "subject", RATIOS, seed=0)
    assert (splits["split"] == "test").mean() == pytest.approx(0.15, abs=0.03)


def test_dropping_duplicates_keeps_one_copy_of_each():
    manifest = manifest_with_copies()
    splits = assign_splits(manifest, "subject", RATIOS, seed=0, duplicates="drop")
    assert len(splits) == manifest["content_hash"].nunique()
    with pytest.raises(ValueError, match="unknown duplicates policy 'merge'"):
        assign_splits(manifest, "subject", RATIOS, seed=0, duplicates="merge")


@pytest.mark.parametrize("method", ["subject", "random"])
def test_k_fold_puts_every_image_in_one_test_fold_and_no_subject_in_two(method):
    from leukobench.data.splits import fold_partition

    manifest = manifest_of(40, 25)
    splits = assign_splits(manifest, method, RATIOS, seed=3, folds=4)
    assert sorted(splits["fold"].unique()) == [0, 1, 2, 3] and len(splits) == len(manifest)
    if method == "subject":
        assert splits.groupby("patient_id")["fold"].nunique().max() == 1
    for fold in range(4):
        part = fold_partition(splits, fold)
        assert set(part.loc[part["split"] == "test", "image_id"]) == set(splits.loc[splits["fold"] == fold, "image_id"])
        assert set(part["split"]) == {"train", "val", "test"}
        assert set(part["label"][part["split"] == "test"]) == {0, 1}  # stratified: both classes in every test fold
        if method == "subject":
            assert part.groupby("patient_id")["split"].nunique().max() == 1
    assert set(fold_partition(splits, 0, validation=False)["split"]) == {"train", "test"}
    assert assign_splits(manifest, method, RATIOS, seed=3, folds=4).equals(splits)  # same seed, same folds


def test_k_fold_asks_for_enough_subjects_and_an_existing_fold():
    from leukobench.data.splits import fold_partition

    manifest = manifest_of(40, 25)
    with pytest.raises(ValueError, match="lower split.folds"):
        assign_splits(manifest, "subject", RATIOS, seed=0, folds=manifest["patient_id"].nunique() + 1)
    with pytest.raises(ValueError, match="fold 9 does not exist"):
        fold_partition(assign_splits(manifest, "subject", RATIOS, seed=0, folds=3), 9)


# --- data without subjects (the Aria layout): the split log and the intervals ---------------------------

ARIA_CLASSES = ("Benign", "Early", "Pre", "Pro")
ARIA_IMAGES_PER_CLASS = 12
ARIA_RATIOS = {"train": 0.5, "val": 0.2, "test": 0.3}


def aria_tree(root):
    """``<root>/Original/<class>/WBC-...-001.jpg``: the Aria layout, small noise images, no patients."""
    import cv2

    rng = np.random.default_rng(0)
    for cls in ARIA_CLASSES:
        folder = root / "Original" / cls
        folder.mkdir(parents=True)
        for i in range(1, ARIA_IMAGES_PER_CLASS + 1):
            name = f"WBC-Benign-{i:03d}.jpg" if cls == "Benign" else f"WBC-Malignant-{cls}-{i:03d}.jpg"
            assert cv2.imwrite(str(folder / name), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    return root


@pytest.fixture(scope="module")
def aria_splits(tmp_path_factory):
    from leukobench.data.readers import read_dataset

    manifest, rejected = read_dataset("aria", aria_tree(tmp_path_factory.mktemp("aria")))
    assert rejected.empty and (manifest["patient_id"] == "").all()
    return assign_splits(manifest, "random", ARIA_RATIOS, seed=0)


def test_the_split_log_says_subjects_are_unknown_not_one_subject(aria_splits):
    from leukobench.data import splits as splits_module

    log = splits_module.split_log(aria_splits).splitlines()
    assert [line.split(":")[0] for line in log] == ["train", "val", "test"]
    for line in log:
        part = line.split(":")[0]
        n = int((aria_splits["split"] == part).sum())
        assert f"subjects unknown: each image is its own group ({n} images)" in line, line
        assert "1 subject" not in line and "subjects 1" not in line, line
    assert "no bootstrap interval" not in log[2]  # test: 15 images, 15 groups
    with_subjects = splits_module.split_log(assign_splits(manifest_of(20, 20), "subject", RATIOS, seed=0))
    assert all(re.search(r"; \d+ subjects", line) for line in with_subjects.splitlines()), with_subjects


def test_aria_test_split_intervals_are_not_degenerate(aria_splits):
    """Read, split and score like the workflow: groups from the split's patient_id (all empty)."""
    from leukobench.metrics import metrics_table

    test = aria_splits[aria_splits["split"] == "test"]
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(len(test), 4)) + 1.0 * np.eye(4)[test["label"].to_numpy()]
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    row = metrics_table(test["label"].to_numpy(), scores, groups=test["patient_id"].to_numpy(), n_boot=200)
    assert 0 < row["accuracy"] < 1
    assert row["accuracy_high"] - row["accuracy_low"] > 0.1, row
    assert row["interval_groups"] == len(test) and row["interval_note"] == ""


@pytest.mark.parametrize("method, folds, message", [
    ("random", None, r"class 2 has 1 image\(s\) \(class 'Pro'\), fewer than the 3 parts"),
    ("subject", None, r"class 2 has 1 subject\(s\) or image group\(s\) \(class 'Pro'\), fewer than the 3 parts"),
    ("random", 5, r"class 2 has 1 subject\(s\) or image group\(s\) \(class 'Pro'\), fewer than the 5 folds"),
])
def test_a_class_too_small_to_stratify_is_named(method, folds, message):
    """scikit-learn's own message says 'The least populated class in y has only 1 member', naming no class."""
    manifest = pd.DataFrame([{"image_id": f"{name}{i}", "patient_id": "", "label": label, "class_name": name,
                              "subset": "training"}
                             for label, (name, n) in enumerate({"Benign": 20, "Early": 20, "Pro": 1}.items())
                             for i in range(n)])
    with pytest.raises(ValueError, match=message):
        assign_splits(manifest, method, RATIOS, seed=0, folds=folds)


def test_the_split_log_names_every_part_and_class_without_an_image():
    """A part without images of a declared class gives n/a metrics later (AUC, sensitivity...): the
    split's log says so, one line per (part, class) pair, the class named."""
    from leukobench.data.splits import split_log

    splits = pd.DataFrame({"image_id": [f"i{k}" for k in range(6)], "patient_id": ["a", "a", "b", "b", "c", "c"],
                           "label": [0, 1, 0, 0, 1, 1], "split": ["train", "train", "val", "val", "test", "test"]})
    classes = {0: "hem", 1: "all", 2: "Pro"}  # a declared class without any image
    log = split_log(splits, min_groups=1, classes=classes).splitlines()
    empty = [re.match(r"(\w+): no image of class (\d) \((\w+)\): ", line).groups() for line in log
             if "no image of class" in line]
    assert empty == [("train", "2", "Pro"), ("val", "1", "all"), ("val", "2", "Pro"), ("test", "0", "hem"),
                     ("test", "2", "Pro")]
    assert "val: no image of class 1 (all): metrics that need it" in "\n".join(log)
    assert "train: no image of class 2 (Pro): the model never learns it" in log
    assert not any("no image of class" in line for line in split_log(splits.assign(label=[0, 1] * 3)).splitlines())


def test_the_split_log_names_the_folds_without_a_class():
    from leukobench.data.splits import split_log

    splits = pd.DataFrame({"image_id": [f"i{k}" for k in range(6)], "patient_id": list("abcdef"),
                           "label": [0, 1, 0, 0, 1, 0], "split": "", "fold": [0, 0, 1, 1, 2, 2]})
    lines = [line for line in split_log(splits, min_groups=1).splitlines() if "no image of class" in line]
    assert lines == ["fold 1: no image of class 1: metrics that need it (AUC, its recall and precision, "
                     "specificity or sensitivity) will be n/a there"]
