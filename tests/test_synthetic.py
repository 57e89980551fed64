"""Tests of the synthetic C-NMC generator: layout, counts, determinism, atomicity, validation, signal."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from leukobench.data import synthetic
from leukobench.data.synthetic import SyntheticSpec, write_cnmc_tree

NAME = r"UID_(?P<subject>H?\d+)_(?P<image>\d+)_(?P<cell>\d+)_(?P<cls>all|hem)\.bmp"
SMALL = SyntheticSpec(subjects=8, cells_per_subject=10, image_size=64, folds=2, seed=3)
LEARN_SIZE = 16  # pixels of the downsampled images the learning checks use


# --- helpers ---------------------------------------------------------------------------------
def tree_files(root: Path) -> dict[str, bytes]:
    """Every file under root, by POSIX path relative to root, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def cell_mask(image: np.ndarray) -> np.ndarray:
    """The segmented cell: every pixel that is not pure black."""
    return image.max(axis=2) > 0


def nucleus_share(image: np.ndarray) -> float:
    """Share of the cell's area darker than the Otsu threshold of its grey levels (the nucleus)."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[cell_mask(image)]
    threshold, _ = cv2.threshold(grey.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float((grey <= threshold).mean())


def circularity(image: np.ndarray) -> float:
    """4 pi area / perimeter^2 of the cell's outline: 1 for a disc, lower for a ragged outline."""
    contours, _ = cv2.findContours(cell_mask(image).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=cv2.contourArea)
    return 4 * math.pi * cv2.contourArea(contour) / cv2.arcLength(contour, True) ** 2


def read_images(root: Path, manifest: pd.DataFrame) -> list[np.ndarray]:
    return [cv2.imread(str(root / path), cv2.IMREAD_COLOR) for path in manifest["path"]]


def pixels(root: Path, manifest: pd.DataFrame) -> np.ndarray:
    """Images downsampled to LEARN_SIZE, flattened and scaled to [0, 1]."""
    return np.stack([
        cv2.resize(image, (LEARN_SIZE, LEARN_SIZE), interpolation=cv2.INTER_AREA).reshape(-1) / 255.0
        for image in read_images(root, manifest)
    ])


def subject_disjoint_accuracy(features: np.ndarray, labels: np.ndarray, subjects: np.ndarray,
                              shuffle_seed: int | None = None) -> float:
    """Balanced accuracy of a logistic regression, 4-fold cross-validated by subject."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    scores = []
    for train, test in GroupKFold(n_splits=4).split(features, labels, subjects):
        train_labels = labels[train]
        if shuffle_seed is not None:
            train_labels = np.random.default_rng(shuffle_seed).permutation(train_labels)
        model = LogisticRegression(C=0.1, max_iter=1000, class_weight="balanced")
        model.fit(features[train], train_labels)
        scores.append(balanced_accuracy_score(labels[test], model.predict(features[test])))
    return float(np.mean(scores))


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("small") / "cnmc"
    return root, write_cnmc_tree(root, SMALL)


@pytest.fixture(scope="module")
def learning_trees(tmp_path_factory):
    """Writes (and caches) a 16-subject tree of 48 px cells for a given difficulty."""
    cache: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def get(difficulty: float):
        if difficulty not in cache:
            spec = SyntheticSpec(subjects=16, cells_per_subject=30, image_size=48, difficulty=difficulty, seed=0)
            root = tmp_path_factory.mktemp("learn") / "cnmc"
            manifest = write_cnmc_tree(root, spec)
            cache[difficulty] = (pixels(root, manifest), manifest["label"].to_numpy(), manifest["subject"].to_numpy())
        return cache[difficulty]

    return get


# --- layout and counts -----------------------------------------------------------------------
def test_layout_names_and_manifest_match_the_files(small_tree):
    root, manifest = small_tree
    assert list(manifest.columns) == ["path", "subject", "label", "fold"]
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert on_disk == sorted(manifest["path"])
    for row in manifest.itertuples(index=False):
        top, fold_dir, class_dir, name = Path(row.path).parts
        parts = re.fullmatch(NAME, name)
        assert parts, name
        assert top == "training_data"
        assert fold_dir == f"fold_{row.fold}"
        assert class_dir == parts["cls"] == ("all" if row.label == 1 else "hem")
        assert parts["subject"] == row.subject
        assert row.subject.startswith("H") == (row.label == 0)  # ALL patients only all, healthy only hem
        assert int(parts["image"]) >= 1 and int(parts["cell"]) >= 1


def test_images_are_square_bgr_cells_on_black(small_tree):
    root, manifest = small_tree
    for image in read_images(root, manifest):
        assert image.shape == (SMALL.image_size, SMALL.image_size, 3) and image.dtype == np.uint8
        mask = cell_mask(image)
        assert not mask[0].any() and not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()
        assert 0.08 < mask.mean() < 0.35  # one cell, about half the image wide
        n_parts, _ = cv2.connectedComponents(mask.astype(np.uint8))
        assert n_parts == 2  # background + one cell


def test_counts_per_class_and_subject_follow_the_spec(small_tree):
    _, manifest = small_tree
    n_all = round(SMALL.subjects * SMALL.all_fraction)
    subjects = manifest.groupby("subject")["label"].agg(["first", "nunique", "size"])
    assert set(subjects.index) == {str(i) for i in range(1, n_all + 1)} | {
        f"H{i}" for i in range(1, SMALL.subjects - n_all + 1)}
    assert (subjects["nunique"] == 1).all()
    assert (subjects["size"] == SMALL.cells_per_subject).all()
    assert (manifest["label"] == 1).sum() == n_all * SMALL.cells_per_subject
    assert (manifest["label"] == 0).sum() == (SMALL.subjects - n_all) * SMALL.cells_per_subject
    ids = manifest["path"].str.extract(NAME)[["subject", "image", "cell"]]
    assert not ids.duplicated().any()


def test_each_subject_lives_in_one_fold_and_every_fold_has_both_classes(small_tree):
    _, manifest = small_tree
    assert (manifest.groupby("subject")["fold"].nunique() == 1).all()
    assert sorted(manifest["fold"].unique()) == list(range(SMALL.folds))
    assert (manifest.groupby("fold")["label"].nunique() == 2).all()


def test_the_projects_reader_accepts_the_tree(small_tree):
    readers = pytest.importorskip("leukobench.data.readers")
    root, manifest = small_tree
    table, rejected = readers.read_dataset("synthetic", root)
    assert len(rejected) == 0
    assert len(table) == len(manifest)
    assert sorted(table["patient_id"].unique()) == sorted(manifest["subject"].unique())


# --- determinism -----------------------------------------------------------------------------
def test_same_spec_gives_byte_identical_files(small_tree, tmp_path):
    root, manifest = small_tree
    again = write_cnmc_tree(tmp_path / "again", SMALL)
    pd.testing.assert_frame_equal(again, manifest)
    assert tree_files(tmp_path / "again") == tree_files(root)


def test_a_different_seed_gives_different_images(small_tree, tmp_path):
    root, _ = small_tree
    write_cnmc_tree(tmp_path / "other", SyntheticSpec(**{**vars(SMALL), "seed": 4}))
    other, mine = tree_files(tmp_path / "other"), tree_files(root)
    shared = set(mine) & set(other)
    assert shared, "some file names are expected in both trees"
    assert sum(mine[name] != other[name] for name in shared) == len(shared)


# --- atomicity -------------------------------------------------------------------------------
def test_non_empty_root_is_refused_and_left_alone(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "keep.txt").write_text("user data")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(FileExistsError, match=str(root)):
        write_cnmc_tree(root, SMALL)
    assert tree_files(root) == {"keep.txt": b"user data"}
    assert sorted(os.listdir(tmp_path)) == before  # no temporary folder left behind


def test_root_that_is_a_file_is_refused(tmp_path):
    root = tmp_path / "data"
    root.write_text("not a folder")
    with pytest.raises(FileExistsError, match=str(root)):
        write_cnmc_tree(root, SMALL)
    assert root.read_text() == "not a folder"
    assert os.listdir(tmp_path) == ["data"]


def test_empty_root_folder_is_filled_and_missing_parents_are_made(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(write_cnmc_tree(empty, SMALL)) == len(list(empty.rglob("*.bmp")))
    nested = tmp_path / "a" / "b" / "cnmc"
    assert len(write_cnmc_tree(nested, SMALL)) == len(list(nested.rglob("*.bmp")))
    assert sorted(os.listdir(tmp_path / "a" / "b")) == ["cnmc"]


def test_a_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    real_imwrite = cv2.imwrite
    calls = []

    def failing_imwrite(path, image):
        calls.append(path)
        return real_imwrite(path, image) if len(calls) < 5 else False

    monkeypatch.setattr(synthetic.cv2, "imwrite", failing_imwrite)
    root = tmp_path / "data"
    with pytest.raises(OSError, match="could not write"):
        write_cnmc_tree(root, SMALL)
    assert len(calls) == 5
    assert os.listdir(tmp_path) == []  # neither root nor a temporary folder


# --- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value"), [
    ("subjects", 1), ("subjects", 2.0), ("subjects", True), ("subjects", "30"),
    ("all_fraction", 0.0), ("all_fraction", 1.0), ("all_fraction", 1.5), ("all_fraction", float("nan")),
    ("all_fraction", 0.01),  # rounds to no ALL subject at all
    ("cells_per_subject", 0), ("cells_per_subject", -5),
    ("image_size", 16), ("image_size", 100.5), ("image_size", 1_000_000),
    ("difficulty", -0.1), ("difficulty", 1.01), ("difficulty", float("inf")), ("difficulty", None),
    ("subject_shift", -0.5), ("subject_shift", 100.0),
    ("folds", 0), ("folds", 31),  # more folds than the 30 subjects
    ("seed", -1), ("seed", 1.5),
])
def test_invalid_spec_values_raise_naming_the_field_and_value(field, value):
    with pytest.raises(ValueError) as error:
        SyntheticSpec(**{field: value})
    message = str(error.value)
    assert message.startswith(f"{field}:")
    assert repr(value) in message
    assert "allowed" in message


def test_valid_edge_values_are_accepted():
    SyntheticSpec(subjects=2, all_fraction=0.5, cells_per_subject=1, image_size=32,
                  difficulty=1, subject_shift=0, folds=2, seed=0)


# --- signal and realism ----------------------------------------------------------------------
def test_blasts_have_a_larger_nucleus_share_larger_cells_and_a_less_round_outline(small_tree):
    root, manifest = small_tree
    images = read_images(root, manifest)
    measures = pd.DataFrame({
        "label": manifest["label"],
        "nucleus": [nucleus_share(image) for image in images],
        "area": [cell_mask(image).mean() for image in images],
        "circularity": [circularity(image) for image in images],
    }).groupby("label").mean()
    assert measures.loc[1, "nucleus"] > measures.loc[0, "nucleus"] + 0.05
    assert measures.loc[1, "area"] > measures.loc[0, "area"] * 1.1
    assert measures.loc[1, "circularity"] < measures.loc[0, "circularity"]


def test_colour_inside_the_cell_looks_like_the_real_images(small_tree, cnmc_sample):
    real = [cv2.imread(str(p)) for p in sorted(cnmc_sample.rglob("*.bmp"))]
    assert real, f"no .bmp under {cnmc_sample}"
    real_means = np.array([image[cell_mask(image)].mean(axis=0) for image in real])
    root, manifest = small_tree
    fake_means = np.array([image[cell_mask(image)].mean(axis=0) for image in read_images(root, manifest)])
    # the average colour of the generated cells lies within 12 grey levels of the real ones, per channel
    np.testing.assert_allclose(fake_means.mean(axis=0), real_means.mean(axis=0), atol=12)
    # dark purple: blue > red > green on average, as in every real image; a subject's stain may
    # be a little pinker (red >= blue) but never green
    assert (real_means[:, 0] > real_means[:, 2]).all() and (real_means[:, 2] > real_means[:, 1]).all()
    blue, green, red = fake_means.mean(axis=0)
    assert blue > red > green
    assert (fake_means[:, 0] > fake_means[:, 2]).mean() >= 0.75
    assert (fake_means[:, 2] > fake_means[:, 1]).all()
    # and no generated cell is far outside the real images' range (stain varies between subjects)
    low, high = real_means.min(axis=0) - 30, real_means.max(axis=0) + 30
    assert ((fake_means >= low) & (fake_means <= high)).all()


def test_cells_of_one_subject_share_a_stain(tmp_path):
    def spread_of_subject_means(shift: float) -> float:
        spec = SyntheticSpec(subjects=10, cells_per_subject=6, image_size=32, subject_shift=shift, seed=1)
        root = tmp_path / f"shift{shift}"
        manifest = write_cnmc_tree(root, spec)
        colours = pd.DataFrame([image[cell_mask(image)].mean(axis=0) for image in read_images(root, manifest)])
        colours["subject"] = manifest["subject"]
        return float(colours.groupby("subject").mean().std().mean())

    assert spread_of_subject_means(1.0) > 3 * spread_of_subject_means(0.0)


@pytest.mark.slow
def test_a_linear_model_learns_across_subjects_and_not_from_shuffled_labels(learning_trees):
    features, labels, subjects = learning_trees(0.5)
    accuracy = subject_disjoint_accuracy(features, labels, subjects)
    shuffled = np.mean([subject_disjoint_accuracy(features, labels, subjects, shuffle_seed=s) for s in range(3)])
    assert accuracy >= 0.65
    assert abs(shuffled - 0.5) < 0.15
    assert accuracy - shuffled >= 0.15


@pytest.mark.slow
def test_higher_difficulty_is_harder_to_learn(learning_trees):
    easy = subject_disjoint_accuracy(*learning_trees(0.1))
    hard = subject_disjoint_accuracy(*learning_trees(0.9))
    assert easy >= 0.85
    assert easy - hard >= 0.15


# --- the default run's leakage point ------------------------------------------------------------
def random_and_subject_accuracies(root: Path, spec: SyntheticSpec, split: dict) -> dict[str, tuple[float, float]]:
    """Test accuracy (subject-disjoint split, cell-level random split) of logistic regression and
    random forest on 32 px pixels, with the workflow's reader, splits and classifiers."""
    from leukobench.data.readers import read_dataset
    from leukobench.data.splits import assign_splits
    from leukobench.learn.classical import logistic_regression, random_forest

    write_cnmc_tree(root, spec)
    manifest, _ = read_dataset("synthetic", root)
    images = np.stack([cv2.resize(cv2.imread(str(path)), (32, 32), interpolation=cv2.INTER_AREA).reshape(-1) / 255.0
                       for path in manifest["path"]])
    labels = manifest["label"].to_numpy()
    parts = {method: assign_splits(manifest, method, split["ratios"], split["seed"]).set_index("image_id")
             .loc[manifest["image_id"], "split"].to_numpy() for method in ("subject", "random")}
    accuracies = {}
    for name, classifier in {"lr": logistic_regression, "rf": random_forest}.items():
        accuracy = {}
        for method, part in parts.items():
            model = classifier(0, 2).fit(images[part == "train"], labels[part == "train"])
            accuracy[method] = round(float((model.predict(images[part == "test"]) == labels[part == "test"]).mean()), 3)
        accuracies[name] = (accuracy["subject"], accuracy["random"])
    return accuracies


@pytest.mark.slow
def test_the_default_data_scores_higher_on_a_cell_level_random_split(tmp_path):
    """docs/pipeline.md (step 1, synthesize) promises that on the default run's synthetic cells, as on real data, a random
    cell-level split scores higher than a subject-disjoint one (its leakage figure). Checked on the
    default config's data with the workflow's own reader, splits (seed, ratios) and two of its
    classical trials (logistic regression and random forest on 32 px pixels): the random split's
    test accuracy is higher for both, by at least 0.02 each."""
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    spec = SyntheticSpec(**config["datasets"]["synthetic"]["synthetic"])
    accuracies = random_and_subject_accuracies(tmp_path / "cnmc", spec, config["split"])
    assert all(random - subject >= 0.02 for subject, random in accuracies.values()), (
        f"test accuracy (subject-disjoint, random) per classifier: {accuracies}")
