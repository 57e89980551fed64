"""Readers: turn a raw dataset folder into the manifest, one row per image.

A reader walks a dataset in its published layout, decodes every image once (so a truncated or
unreadable file is caught here, not in the middle of training), and returns two tables:

* the manifest (``MANIFEST_COLUMNS``): path, label, class name, patient, fold, subset, sha256,
  width, height, status;
* the rejected files: path and the reason, written by the workflow to ``rejected.tsv``.

The run goes on without the rejected files. A folder in none of the known layouts is an error
that names the folder and the layout that was expected.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

MANIFEST_COLUMNS = [
    "image_id", "path", "label", "class_name", "patient_id", "fold", "subset",
    "sha256", "width", "height", "status",
]
REJECTED_COLUMNS = ["path", "reason"]

CNMC_CLASSES = ("hem", "all")  # index = label: 0 = normal (hem), 1 = leukemic blast (all)
CNMC_NAME = re.compile(r"UID_(?P<subject>H?\d+)_(?P<image>\d+)_(?P<cell>\d+)_(?P<cls>all|hem)\.bmp")
CNMC_FOLD = re.compile(r"fold_(?P<fold>\d+)")
CNMC_LAYOUT = (
    "C-NMC 2019: <root>/training_data/fold_<k>/{all,hem}/UID_<subject>_<image>_<cell>_<all|hem>.bmp "
    "(Kaggle mirror, optionally inside C-NMC_Leukemia/) or <root>/C-NMC_training_data/fold_<k>/... (TCIA)"
)
CNMC_TRAINING_DIRS = ("training_data", "C-NMC_training_data", "C-NMC_Leukemia/training_data")
CNMC_PRELIM_DIRS = (
    "validation_data/C-NMC_test_prelim_phase_data",
    "C-NMC_test_prelim_phase_data",
    "C-NMC_Leukemia/validation_data/C-NMC_test_prelim_phase_data",
)
PRELIM_LABELS_SUFFIX = "_labels.csv"
IMAGE_SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}


class LayoutError(ValueError):
    """A dataset folder is not in the layout its reader expects."""


@dataclass(frozen=True)
class Candidate:
    """A file found by a reader, with what its name and place say about it."""

    path: Path
    image_id: str
    label: int
    class_name: str
    patient_id: str
    fold: str
    subset: str


def _cnmc_training_dir(root: Path) -> Path:
    for name in CNMC_TRAINING_DIRS:
        if (root / name).is_dir():
            return root / name
    raise LayoutError(
        f"{root}: no C-NMC training folder found (looked for {', '.join(CNMC_TRAINING_DIRS)}). "
        f"Expected layout: {CNMC_LAYOUT}. Point the dataset's 'path' in config.yaml at the folder "
        "that holds training_data/."
    )


def _cnmc_training_candidates(root: Path, rejected: list[dict]) -> list[Candidate]:
    training = _cnmc_training_dir(root)
    candidates = []
    fold_dirs = sorted(d for d in training.iterdir() if d.is_dir() and CNMC_FOLD.fullmatch(d.name))
    if not fold_dirs:
        raise LayoutError(f"{training}: no fold_<k>/ folders. Expected layout: {CNMC_LAYOUT}.")
    for fold_dir in fold_dirs:
        for class_dir in sorted(d for d in fold_dir.iterdir() if d.is_dir()):
            if class_dir.name not in CNMC_CLASSES:
                rejected.append({"path": str(class_dir), "reason": "folder is neither all/ nor hem/"})
                continue
            for path in sorted(p for p in class_dir.iterdir() if p.is_file()):
                match = CNMC_NAME.fullmatch(path.name)
                if match is None:
                    rejected.append({"path": str(path), "reason": f"name does not match {CNMC_NAME.pattern}"})
                    continue
                if match["cls"] != class_dir.name:
                    rejected.append({
                        "path": str(path),
                        "reason": f"name says '{match['cls']}' but the file is in {class_dir.name}/",
                    })
                    continue
                candidates.append(Candidate(
                    path=path,
                    image_id=path.relative_to(root).as_posix(),
                    label=CNMC_CLASSES.index(class_dir.name),
                    class_name=class_dir.name,
                    patient_id=match["subject"],
                    fold=fold_dir.name,
                    subset="training",
                ))
    return candidates


def _cnmc_prelim_candidates(root: Path, rejected: list[dict]) -> list[Candidate]:
    """The labelled preliminary test set, when present: ``<n>.bmp`` plus its labels csv."""
    for name in CNMC_PRELIM_DIRS:
        images = root / name
        labels_csv = images.with_name(images.name + PRELIM_LABELS_SUFFIX)
        if images.is_dir() and labels_csv.is_file():
            break
    else:
        return []
    table = pd.read_csv(labels_csv, dtype=str)
    missing = {"Patient_ID", "new_names", "labels"} - set(table.columns)
    if missing:
        raise LayoutError(f"{labels_csv}: missing column(s) {sorted(missing)}; expected Patient_ID,new_names,labels")
    candidates = []
    for row in table.itertuples(index=False):
        path = images / row.new_names
        if row.labels not in ("0", "1"):
            rejected.append({"path": str(path), "reason": f"label '{row.labels}' in {labels_csv.name} is not 0 or 1"})
            continue
        match = CNMC_NAME.fullmatch(row.Patient_ID)
        label = int(row.labels)
        candidates.append(Candidate(
            path=path,
            image_id=path.relative_to(root).as_posix(),
            label=label,
            class_name=CNMC_CLASSES[label],
            patient_id=match["subject"] if match else f"prelim:{row.Patient_ID}",
            fold="prelim_test",
            subset="prelim_test",
        ))
    return candidates


def cnmc_candidates(root: Path, rejected: list[dict]) -> list[Candidate]:
    """All labelled images of a C-NMC 2019 tree (TCIA or Kaggle layout)."""
    return _cnmc_training_candidates(root, rejected) + _cnmc_prelim_candidates(root, rejected)


READERS: dict[str, Callable[[Path, list[dict]], list[Candidate]]] = {
    "cnmc": cnmc_candidates,
    "synthetic": cnmc_candidates,  # the embedded generator writes the C-NMC Kaggle layout
}


def decode_image(data: bytes) -> np.ndarray | None:
    """Decode image bytes with OpenCV; None when OpenCV cannot read them."""
    if not data:
        return None
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)


def _inspect(candidate: Candidate) -> dict:
    """Hash and decode one file; the status says why it cannot be used, or 'ok'."""
    row = {
        "image_id": candidate.image_id, "path": str(candidate.path), "label": candidate.label,
        "class_name": candidate.class_name, "patient_id": candidate.patient_id, "fold": candidate.fold,
        "subset": candidate.subset, "sha256": "", "width": 0, "height": 0,
    }
    try:
        data = candidate.path.read_bytes()
    except OSError as error:
        return row | {"status": f"unreadable: {error.strerror or error}"}
    row["sha256"] = hashlib.sha256(data).hexdigest()
    if not data:
        return row | {"status": "empty file (0 bytes)"}
    image = decode_image(data)
    if image is None or image.size == 0:
        return row | {"status": "not a decodable image (truncated or corrupt)"}
    return row | {"width": int(image.shape[1]), "height": int(image.shape[0]), "status": "ok"}


def _inspect_all(candidates: Iterable[Candidate], threads: int) -> pd.DataFrame:
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        rows = list(pool.map(_inspect, candidates))
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def read_dataset(fmt: str, root: str | os.PathLike, threads: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a dataset folder into ``(manifest, rejected)``.

    Args:
        fmt: the dataset's ``format`` in config (a key of ``READERS``).
        root: the dataset folder.
        threads: files decoded in parallel.

    Returns:
        The manifest (only readable images, status 'ok') and the rejected files with reasons.
    """
    if fmt not in READERS:
        raise ValueError(f"unknown dataset format '{fmt}'; known formats: {', '.join(sorted(READERS))}")
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"dataset folder {root} does not exist or is not a folder")
    rejected: list[dict] = []
    inspected = _inspect_all(READERS[fmt](root, rejected), threads)
    if inspected.empty:
        raise LayoutError(f"{root}: no images found. Expected layout: {CNMC_LAYOUT}.")
    bad = inspected["status"] != "ok"
    rejected.extend({"path": p, "reason": s} for p, s in inspected.loc[bad, ["path", "status"]].itertuples(index=False))
    manifest = inspected.loc[~bad].reset_index(drop=True)
    return manifest, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
