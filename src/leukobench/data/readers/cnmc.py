"""The C-NMC 2019 reader (``cnmc``, and ``synthetic``: the embedded generator writes this layout):
the TCIA original and the Kaggle mirror, training folds and the labelled preliminary test set."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from leukobench.data.readers.common import READERS, Candidate, LayoutError, Reading

CNMC_CLASSES = ("hem", "all")  # index = label: 0 = normal (hem), 1 = leukemic blast (all)
# names and folders are matched without regard to case (copies made on Windows or macOS shares
# change it: Hem/, UID_h12_..., .BMP); the class and subject are read back in their canonical case
CNMC_NAME = re.compile(r"UID_(?P<subject>H?\d+)_(?P<image>\d+)_(?P<cell>\d+)_(?P<cls>all|hem)\.bmp", re.IGNORECASE)
CNMC_FOLD = re.compile(r"fold_(?P<fold>\d+)", re.IGNORECASE)
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
            cls = class_dir.name.lower()
            if cls not in CNMC_CLASSES:
                rejected.append({"path": str(class_dir), "reason": "folder is neither all/ nor hem/ (any case)"})
                continue
            for path in sorted(p for p in class_dir.iterdir() if p.is_file()):
                match = CNMC_NAME.fullmatch(path.name)
                if match is None:
                    rejected.append({"path": str(path), "class_name": cls,
                                     "reason": f"name does not match {CNMC_NAME.pattern} (any case)"})
                    continue
                if match["cls"].lower() != cls:
                    rejected.append({
                        "path": str(path), "class_name": cls,
                        "reason": f"name says '{match['cls']}' but the file is in {class_dir.name}/",
                    })
                    continue
                candidates.append(Candidate(
                    path=path,
                    image_id=path.relative_to(root).as_posix(),
                    label=CNMC_CLASSES.index(cls),
                    class_name=cls,
                    patient_id=match["subject"].upper(),
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
            patient_id=match["subject"].upper() if match else f"prelim:{row.Patient_ID}",
            fold="prelim_test",
            subset="prelim_test",
        ))
    return candidates


@READERS.register("cnmc", layout=CNMC_LAYOUT)
def cnmc_candidates(root: Path, rejected: list[dict]) -> Reading:
    """All labelled images of a C-NMC 2019 tree (TCIA or Kaggle layout)."""
    return CNMC_CLASSES, _cnmc_training_candidates(root, rejected) + _cnmc_prelim_candidates(root, rejected)


# the embedded generator writes the C-NMC Kaggle layout
READERS.register("synthetic", layout=CNMC_LAYOUT)(cnmc_candidates)
