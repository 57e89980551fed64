"""Train / validation / test splits, subject-disjoint and stratified by class by default.

Cells of one subject share stain, microscope day and morphology, so a split that puts cells of
one subject on both sides of the line measures how well a model recognises subjects, not cells.
``subject`` (the default) keeps every subject in exactly one part; ``random`` is the studies'
cell-level protocol, kept for comparison and named as such.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from leukobench.subjects import MIN_INTERVAL_GROUPS, subject_counts, unknown_subjects

SPLIT_METHODS = ("subject", "random")
DUPLICATE_POLICIES = ("together", "drop")
SPLIT_NAMES = ("train", "val", "test")
EXTERNAL_SPLIT = "external"  # a dataset's own labelled test set (C-NMC's preliminary test phase), never split
RATIO_TOLERANCE = 1e-6


def check_ratios(ratios: dict[str, float]) -> None:
    """Raise ValueError unless ratios name train/val/test, are non-negative and sum to 1."""
    if set(ratios) != set(SPLIT_NAMES):
        raise ValueError(f"split ratios must name exactly {list(SPLIT_NAMES)}, got {sorted(ratios)}")
    if any(r < 0 for r in ratios.values()) or ratios["train"] <= 0 or ratios["test"] <= 0:
        raise ValueError(f"split ratios must be >= 0 with train and test > 0, got {ratios}")
    total = sum(ratios.values())
    if abs(total - 1) > RATIO_TOLERANCE:
        raise ValueError(f"split ratios must sum to 1, got {ratios} (sum {total:g})")


def _subject_split(manifest: pd.DataFrame, ratios: dict[str, float], rng: np.random.Generator) -> pd.Series:
    """Assign whole subjects to parts, per class, so each part gets its share of cells of each class.

    Subjects are taken in a seeded random order and each goes to the part that is furthest below
    its target number of cells of the subject's main class. With C-NMC every subject has one
    class (patients give blasts, healthy donors normal cells), so this is stratified by class.
    """
    parts = [name for name in SPLIT_NAMES if ratios[name] > 0]
    subjects = manifest.groupby("group")["label"].agg(cells="size", label=lambda s: s.mode().iloc[0])
    _check_class_sizes(subjects["label"], len(parts), manifest, f"the {len(parts)} parts {parts}",
                       "subject(s) or image group(s)", "a subject-disjoint split is impossible; use more "
                       "subjects or split.method: random")
    assignment: dict[str, str] = {}
    for label, group in subjects.groupby("label"):
        order = group.index.to_numpy()[rng.permutation(len(group))]
        target = {name: ratios[name] * group["cells"].sum() for name in parts}
        filled = dict.fromkeys(parts, 0)
        # every part first gets one subject, so no part is left without a class
        for name, subject in zip(parts, order):
            assignment[subject] = name
            filled[name] += group.at[subject, "cells"]
        for subject in order[len(parts):]:
            name = max(parts, key=lambda n: (target[n] - filled[n]) / target[n])
            assignment[subject] = name
            filled[name] += group.at[subject, "cells"]
    return manifest["group"].map(assignment)


def _random_split(manifest: pd.DataFrame, ratios: dict[str, float], seed: int) -> pd.Series:
    """Cell-level split stratified by class (the studies' protocol; leaks subjects).

    Byte-identical copies of an image (same content hash) go to the same part.
    """
    units = manifest.groupby("copies")["label"].agg(lambda s: s.mode().iloc[0])
    parts = [name for name in SPLIT_NAMES if ratios[name] > 0]
    _check_class_sizes(units, len(parts), manifest, f"the {len(parts)} parts {parts}", "image(s)",
                       "a stratified split needs one in each; add images of it or leave the class out")
    from sklearn.model_selection import train_test_split  # here: the planning imports this module

    index, labels = units.index.to_numpy(), units.to_numpy()
    split = pd.Series("train", index=units.index)
    rest, test = train_test_split(index, test_size=ratios["test"], stratify=labels, random_state=seed)
    split[test] = "test"
    if ratios["val"] > 0:
        val_share = ratios["val"] / (ratios["train"] + ratios["val"])
        _, val = train_test_split(rest, test_size=val_share, stratify=units[rest], random_state=seed)
        split[val] = "val"
    return manifest["copies"].map(split)


def _check_class_sizes(unit_labels: pd.Series, needed: int, manifest: pd.DataFrame, parts: str, units: str,
                       advice: str) -> None:
    """ValueError naming every class with fewer than ``needed`` units (images, subjects) to spread
    over ``parts``: scikit-learn's own message names no class, only a count."""
    names = manifest.groupby("label")["class_name"].first() if "class_name" in manifest else {}
    counts = unit_labels.value_counts()
    short = [f"class {label} has {n} {units}" + (f" (class '{names[label]}')" if label in names else "")
             for label, n in counts.sort_index().items() if n < needed]
    if short:
        raise ValueError(f"{'; '.join(short)}, fewer than {parts}: {advice}")


def _grouping(pool: pd.DataFrame) -> pd.DataFrame:
    """Add ``copies`` (images with the same bytes) and ``group`` (what must stay in one part).

    The group is the subject where it is known. Where it is not (Aria, ALL-IDB), each image is its
    own group, except that byte-identical copies form one group, so a duplicate never lies on
    both sides of the split. Copies of one image under two subjects join the first subject's group.
    """
    copies = pool["content_hash"] if "content_hash" in pool and pool["content_hash"].ne("").all() else pool["image_id"]
    unknown = unknown_subjects(pool["patient_id"])  # the bootstrap's rule: empty or missing id
    own = pool["patient_id"].astype(str).where(~unknown, "image:" + copies.astype(str))
    group = own.groupby(copies).transform("first")
    return pool.assign(copies=copies.to_numpy(), group=group.to_numpy())


def describe_subjects(patient_ids: pd.Series) -> str:
    """The subjects of a part in words: ``12 subjects``, ``subjects unknown: each image is its own
    group (40 images)``, or ``12 subjects, and 3 images without a subject, each its own group``. An unknown
    subject is an empty or missing ``patient_id`` (:func:`leukobench.subjects.unknown_subjects`)."""
    subjects, alone = subject_counts(patient_ids)
    named = f"{subjects} subject{'s' if subjects != 1 else ''}"
    images = f"{alone} image{'s' if alone != 1 else ''}"
    if alone == 0:
        return named
    if subjects == 0:
        return f"subjects unknown: each image is its own group ({images})"
    return f"{named}, and {images} without a subject, each its own group"


def split_log(splits: pd.DataFrame, min_groups: int = MIN_INTERVAL_GROUPS, classes: dict | None = None) -> str:
    """One line per part of :func:`assign_splits`' table (per fold for k-fold splits): images,
    images per label, the subjects (:func:`describe_subjects`), and a warning where an evaluated part
    has fewer resampling groups than ``min_groups`` (subjects, plus one per image without a subject),
    so its metrics will get no bootstrap interval (:data:`leukobench.subjects.MIN_INTERVAL_GROUPS`); then
    one line per (part, class) pair without an image: ``classes`` (label: class name, the dataset's
    declared classes; by default the labels the table holds) that a part lacks."""
    if "fold" in splits:
        parts = splits["fold"].map(lambda k: EXTERNAL_SPLIT if k < 0 else f"fold {k}")
        order = [*(f"fold {k}" for k in sorted(splits["fold"].unique()) if k >= 0), EXTERNAL_SPLIT]
    else:
        parts, order = splits["split"], [*SPLIT_NAMES, EXTERNAL_SPLIT]
    lines = []
    for part in [name for name in order if (parts == name).any()]:
        rows = splits[(parts == part).to_numpy()]
        unknown = unknown_subjects(rows["patient_id"])
        groups = rows.loc[~unknown, "patient_id"].nunique() + int(unknown.sum())
        labels = ", ".join(f"{label}: {count}" for label, count in rows["label"].value_counts().sort_index().items())
        line = f"{part}: {len(rows)} images (per label {labels}); {describe_subjects(rows['patient_id'])}"
        if groups < min_groups and part != "train":  # train is never evaluated
            line += f"; fewer than {min_groups} resampling groups, so its metrics get no bootstrap interval"
        lines.append(line)
    lines += empty_pairs(splits, parts, order, classes)
    return "\n".join(lines)


def empty_pairs(splits: pd.DataFrame, parts: pd.Series, order: list[str], classes: dict | None = None) -> list[str]:
    """A line for every (part, class) pair that holds no image, parts in ``order``."""
    classes = classes if classes is not None else {label: None for label in sorted(splits["label"].unique())}
    lines = []
    for part in [name for name in order if (parts == name).any()]:
        held = set(splits.loc[(parts == part).to_numpy(), "label"].tolist())
        for label, name in sorted(classes.items()):
            if label not in held:
                what = f"class {label}" + (f" ({name})" if name is not None else "")
                effect = ("the model never learns it" if part == "train" else
                          "metrics that need it (AUC, its recall and precision, specificity or sensitivity) "
                          "will be n/a there")
                lines.append(f"{part}: no image of {what}: {effect}")
    return lines


def drop_duplicates(manifest: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Keep one file of each set of byte-identical images; returns the rest and how many were dropped."""
    if "content_hash" not in manifest:
        return manifest, 0
    kept = manifest.sort_values("image_id").drop_duplicates("content_hash", keep="first").sort_index()
    return kept, len(manifest) - len(kept)


def _fold_assignment(pool: pd.DataFrame, method: str, folds: int, seed: int) -> np.ndarray:
    """k folds stratified by class; whole subjects (``subject``) or whole sets of copies (``random``) per fold."""
    groups = pool["group"] if method == "subject" else pool["copies"]
    if groups.nunique() < folds:
        raise ValueError(f"{folds} folds need at least {folds} subjects or image groups; there are {groups.nunique()}: "
                         "lower split.folds")
    _check_class_sizes(pool.groupby(groups)["label"].first(), folds, pool, f"the {folds} folds",
                       "subject(s) or image group(s)", "some folds would test without it; lower split.folds")
    fold = np.empty(len(pool), dtype=np.int64)
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(pool, pool["label"], groups)):
        fold[test] = k
    return fold


def fold_partition(splits: pd.DataFrame, fold: int, validation: bool = True) -> pd.DataFrame:
    """The train / val / test split of one fold of a k-fold ``splits`` table (its ``fold`` column):
    fold ``fold`` is the test part, the next fold (cyclically) the validation part when
    ``validation``, and the other folds train."""
    if "fold" not in splits:
        raise ValueError("these splits have no folds (split.folds is not set)")
    folds = int(splits["fold"].max()) + 1
    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} does not exist; the splits have folds 0..{folds - 1}")
    split = np.where(splits["fold"] == fold, "test", "train").astype(object)
    if validation:
        split[(splits["fold"] == (fold + 1) % folds).to_numpy()] = "val"
    split[(splits["fold"] < 0).to_numpy()] = EXTERNAL_SPLIT
    return splits.assign(split=split)


def assign_splits(manifest: pd.DataFrame, method: str, ratios: dict[str, float], seed: int,
                  duplicates: str = "together", folds: int | None = None, external_test: bool = False) -> pd.DataFrame:
    """Split the training subset of a manifest.

    Args:
        manifest: the reader's manifest (``image_id``, ``label``, ``patient_id``, ``subset``).
        method: ``subject`` (subject-disjoint, default) or ``random`` (cell-level).
        ratios: ``{"train": .., "val": .., "test": ..}`` summing to 1.
        seed: the same seed gives the same split.
        duplicates: byte-identical images are kept ``together`` in one part, or all but one
            copy are dropped (``drop``). Either way no duplicate straddles two parts.
        folds: k-fold cross-validation instead of one split by ratios: a column ``fold`` says in
            which fold's test part each image lies (see :func:`fold_partition`); ``split`` is empty.
        external_test: add the images of the manifest's other subsets (C-NMC's labelled preliminary
            test set) as the split ``external``: evaluated like test, never trained on, never split.

    Returns:
        One row per image of the training subset: ``image_id``, ``patient_id``, ``label``, ``split``
        (and ``fold``).
    """
    if method not in SPLIT_METHODS:
        raise ValueError(f"unknown split method '{method}'; allowed: {', '.join(SPLIT_METHODS)}")
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"unknown duplicates policy '{duplicates}'; allowed: {', '.join(DUPLICATE_POLICIES)}")
    check_ratios(ratios)
    pool = manifest.loc[manifest["subset"] == "training"]
    external = manifest.loc[manifest["subset"] != "training", ["image_id", "patient_id", "label"]]
    if external_test and external.empty:
        raise ValueError("split.external_test is set but the dataset has no images outside its training subset "
                         "(only C-NMC's labelled preliminary test set is one)")
    external = external.assign(split=EXTERNAL_SPLIT) if external_test else external.iloc[0:0].assign(split="")
    if duplicates == "drop":
        pool, _ = drop_duplicates(pool)
    pool = _grouping(pool.reset_index(drop=True))
    if pool.empty:
        raise ValueError("the manifest has no training images to split")
    if folds:
        assigned = pool[["image_id", "patient_id", "label"]].assign(split="", fold=_fold_assignment(pool, method, folds, seed))
        return pd.concat([assigned, external.assign(fold=-1)], ignore_index=True)
    if method == "subject":
        split = _subject_split(pool, ratios, np.random.default_rng(seed))
    else:
        split = _random_split(pool, ratios, seed)
    assigned = pool[["image_id", "patient_id", "label"]].assign(split=split.to_numpy())
    return pd.concat([assigned, external], ignore_index=True) if len(external) else assigned
