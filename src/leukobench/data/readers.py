"""Readers: turn a raw dataset folder into the manifest, one row per image.

A reader walks a dataset in its published layout, decodes every image once (so a truncated or
unreadable file is caught here, not in the middle of training), and returns two tables:

* the manifest (``MANIFEST_COLUMNS``): path, label, class name, patient, fold, subset,
  content hash (XXH3-128 of the file's bytes: equal for byte-identical files), width, height,
  status;
* the rejected files: path and the reason, written by the workflow to ``rejected.tsv``.

The run goes on without the rejected files. A folder in none of the known layouts is an error
that names the folder and the layout that was expected.

Formats (``READERS``, a :class:`leukobench.registry.Registry`): ``cnmc`` and ``synthetic``
(C-NMC 2019), ``aria`` (Aria et al.), ``allidb`` (ALL-IDB2) and ``folder`` (a lab's own images,
one folder per class). A reader is a function ``(root, rejected) -> (classes, candidates)``,
registered with its ``layout`` (the text that error messages show) and its ``options`` (the
option names it takes; none by default); one that takes options has a keyword ``options`` as
well, and ``read_dataset(..., options=...)`` passes them on. Every file is judged and decoded by
:func:`leukobench.data.images.open_image`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from leukobench.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, open_image, thread_map
from leukobench.io import is_text, printable
from leukobench.registry import Registry

MANIFEST_COLUMNS = [
    "image_id", "path", "label", "class_name", "patient_id", "fold", "subset",
    "content_hash", "width", "height", "status",
]
REJECTED_COLUMNS = ["path", "reason"]

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


class LayoutError(ValueError):
    """A dataset folder is not in the layout its reader expects."""


class MissingClassError(LayoutError):
    """A class the dataset declares has no readable image: its labels would shift or vanish."""


Reading = tuple[tuple[str, ...], list["Candidate"]]  # what a reader returns: its classes in label order, its files

#: The readers by dataset format (config ``datasets.<name>.format``). Attributes: ``layout``, the
#: expected layout that error messages show; ``options``, the option names the reader takes (it
#: then has an ``options`` keyword; none: read_dataset refuses options for it).
READERS: Registry[Callable[..., Reading]] = Registry("dataset format", attributes={"layout": "", "options": ()},
                                                     listed_as="known formats")


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


def _check_options(fmt: str, options: dict | None, allowed: Iterable[str]) -> dict:
    """The reader's options as a dict; ValueError naming any key the reader does not know."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"dataset format '{fmt}': unknown option(s) {unknown}; allowed: {', '.join(sorted(allowed)) or 'none'}"
        )
    return options


def _has_image_suffix(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _relative_id(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def child_dir(parent: Path, name: str) -> Path | None:
    """The folder of ``parent`` named ``name`` in any case (``Hem/`` for ``hem``), or None;
    :class:`LayoutError` naming both when two folders differ only in case."""
    matches = [d for d in sorted(parent.iterdir()) if d.is_dir() and d.name.lower() == name.lower()]
    if len(matches) > 1:
        raise LayoutError(f"{parent}: folders {', '.join(d.name for d in matches)} differ only in case; "
                          f"merge them into one {name}/ folder")
    return matches[0] if matches else None


# --- Aria et al. (Kaggle mehradaria/leukemia) ------------------------------------------------

ARIA_CLASSES = ("Benign", "Early", "Pre", "Pro")  # index = label with classes: 4
ARIA_BINARY_CLASSES = ("benign", "malignant")  # classes: 2; Early, Pre and Pro are malignant
ARIA_IMAGE_DIRS = {"original": "Original", "segmented": "Segmented"}
ARIA_NAME = re.compile(
    r"WBC-(?:Benign|Malignant-(?P<stage>Early|Pre|Pro))-(?P<image>\d+)\.(?:jpe?g|png|bmp|tiff?)", re.IGNORECASE
)
ARIA_LAYOUT = (
    "Aria et al. (Kaggle mehradaria/leukemia): <root>/{Original,Segmented}/{Benign,Early,Pre,Pro}/"
    "WBC-Benign-<n>.jpg, WBC-Malignant-{Early,Pre,Pro}-<n>.jpg; <root> may also be Original/ or "
    "Segmented/ itself (the folder holding Benign/, Early/, Pre/, Pro/)"
)
ARIA_OPTIONS = {"images": ("original", "segmented"), "classes": (4, 2)}


def _aria_class_parent(root: Path, images: str | None) -> Path:
    """The folder that holds Benign/, Early/, Pre/, Pro/ for the chosen image set."""
    if any(child_dir(root, name) for name in ARIA_IMAGE_DIRS.values()):
        wanted = ARIA_IMAGE_DIRS[images or "original"]
        folder = child_dir(root, wanted)
        if folder is None:
            raise LayoutError(
                f"{root}: no {wanted}/ folder (images: {images or 'original'}). Expected layout: {ARIA_LAYOUT}."
            )
        return folder
    if any(child_dir(root, name) for name in ARIA_CLASSES):
        other = {v.lower(): k for k, v in ARIA_IMAGE_DIRS.items()}.get(root.name.lower())
        if images is not None and other is not None and other != images:
            raise LayoutError(
                f"{root}: this is the {root.name}/ image set but the option asks for images: {images}; "
                f"point the dataset's path at the folder that holds both Original/ and Segmented/, "
                f"or at {ARIA_IMAGE_DIRS[images]}/ itself. Expected layout: {ARIA_LAYOUT}."
            )
        return root
    raise LayoutError(
        f"{root}: neither Original/ nor Segmented/ nor the class folders {', '.join(ARIA_CLASSES)} found. "
        f"Expected layout: {ARIA_LAYOUT}."
    )


@READERS.register("aria", layout=ARIA_LAYOUT, options=tuple(ARIA_OPTIONS))
def aria_candidates(root: Path, rejected: list[dict], options: dict | None = None) -> Reading:
    """All images of the Aria et al. ALL dataset: benign cells and three malignant stages.

    Options:
        images: ``original`` (default) or ``segmented``: which image set to read when ``root``
            holds both ``Original/`` and ``Segmented/``.
        classes: ``4`` (default; Benign, Early, Pre, Pro = labels 0..3, class name = folder) or
            ``2`` (``benign`` = 0 vs ``malignant`` = 1: Early, Pre and Pro).

    The dataset names no patients, so ``patient_id`` is empty: splits of it cannot be
    subject-disjoint (only a cell-level, ``random`` split is possible, and it may put images of
    one patient, and the dataset's exact duplicate files, on both sides). A file whose name says
    another class than its folder is rejected. Folders are matched without regard to case.
    """
    options = _check_options("aria", options, ARIA_OPTIONS)
    images = options.get("images")
    if images is not None and images not in ARIA_OPTIONS["images"]:
        raise ValueError(f"dataset format 'aria': option images: {images!r} unknown; allowed: original, segmented")
    n_classes = options.get("classes", 4)
    if isinstance(n_classes, bool) or n_classes not in ARIA_OPTIONS["classes"]:
        raise ValueError(f"dataset format 'aria': option classes: {n_classes!r} unknown; allowed: 4, 2")

    parent = _aria_class_parent(root, images)
    known = {cls.lower() for cls in ARIA_CLASSES}
    for entry in sorted(parent.iterdir()):
        if not (entry.is_dir() and entry.name.lower() in known):
            what = "folder" if entry.is_dir() else "file"
            reason = f"{what} outside the class folders {', '.join(ARIA_CLASSES)}"
            rejected.append({"path": str(entry), "reason": reason})
    candidates = []
    for label, cls in enumerate(ARIA_CLASSES):
        class_dir = child_dir(parent, cls)
        if class_dir is None:
            raise LayoutError(f"{parent}: class folder {cls}/ is missing. Expected layout: {ARIA_LAYOUT}.")
        entries = sorted(class_dir.iterdir())
        if not any(p.is_file() for p in entries):
            raise LayoutError(f"{class_dir}: class folder is empty. Expected layout: {ARIA_LAYOUT}.")
        label_out, name_out = (int(label > 0), ARIA_BINARY_CLASSES[int(label > 0)]) if n_classes == 2 else (label, cls)
        for path in entries:
            if not path.is_file():
                rejected.append({"path": str(path), "reason": "unexpected folder inside a class folder"})
                continue
            match = ARIA_NAME.fullmatch(path.name)
            if match is None:
                rejected.append({"path": str(path), "class_name": name_out,
                                 "reason": f"name does not match {ARIA_NAME.pattern}"})
                continue
            named = (match["stage"] or "Benign").capitalize()
            if named != cls:
                rejected.append({"path": str(path), "class_name": name_out,
                                 "reason": f"name says '{named}' but the file is in {class_dir.name}/"})
                continue
            candidates.append(Candidate(
                path=path, image_id=_relative_id(path, root), label=label_out, class_name=name_out,
                patient_id="", fold="", subset="training",
            ))
    return (ARIA_BINARY_CLASSES if n_classes == 2 else ARIA_CLASSES), candidates


# --- ALL-IDB2 --------------------------------------------------------------------------------

ALLIDB_CLASSES = ("normal", "blast")  # index = label: suffix _0 normal, _1 blast
ALLIDB_NAME = re.compile(r"Im(?P<image>\d{3})_(?P<label>[01])\.tiff?", re.IGNORECASE)
ALLIDB_DIRS = ("ALL_IDB2/img", "img")
ALLIDB_LAYOUT = (
    "ALL-IDB2: <root>/ALL_IDB2/img/Im<nnn>_<0|1>.tif (_1 = blast, _0 = normal); <root> may also be "
    "ALL_IDB2/ (holding img/) or img/ itself"
)


def _allidb_image_dir(root: Path) -> Path:
    for name in ALLIDB_DIRS:
        folder = root
        for part in name.split("/"):
            folder = child_dir(folder, part) if folder is not None else None
        if folder is not None:
            return folder
    if any(p.is_file() and ALLIDB_NAME.fullmatch(p.name) for p in root.iterdir()):
        return root
    raise LayoutError(
        f"{root}: no ALL-IDB2 image folder found (looked for {', '.join(ALLIDB_DIRS)} and Im<nnn>_<0|1>.tif "
        f"files in the folder itself). Expected layout: {ALLIDB_LAYOUT}."
    )


@READERS.register("allidb", layout=ALLIDB_LAYOUT)
def allidb_candidates(root: Path, rejected: list[dict]) -> Reading:
    """All images of ALL-IDB2: 257x257 TIFF crops of one cell each, labelled by the name's suffix.

    ALL-IDB names no patients, so ``patient_id`` is empty and splits cannot be subject-disjoint.
    """
    images = _allidb_image_dir(root)
    entries = sorted(images.iterdir())
    if not any(p.is_file() for p in entries):
        raise LayoutError(f"{images}: the image folder is empty. Expected layout: {ALLIDB_LAYOUT}.")
    candidates = []
    for path in entries:
        match = ALLIDB_NAME.fullmatch(path.name)
        if match is None:
            what = "folder" if path.is_dir() else "name"
            rejected.append({"path": str(path), "reason": f"{what} does not match {ALLIDB_NAME.pattern}"})
            continue
        label = int(match["label"])
        candidates.append(Candidate(
            path=path, image_id=_relative_id(path, root), label=label, class_name=ALLIDB_CLASSES[label],
            patient_id="", fold="", subset="training",
        ))
    return ALLIDB_CLASSES, candidates


# --- a lab's own images: one folder per class ------------------------------------------------

FOLDER_LAYOUT = (
    "folder: <root>/<class_name>/**/<image> with at least two class folders; images end in "
    + ", ".join(sorted(IMAGE_SUFFIXES))
)
FOLDER_OPTIONS = ("classes", "patient_pattern")


def _folder_pattern(pattern: Any) -> re.Pattern | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except (re.error, TypeError) as error:
        raise ValueError(
            f"dataset format 'folder': option patient_pattern {pattern!r} is not a regex: {error}"
        ) from None
    if "patient" not in compiled.groupindex:
        raise ValueError(
            f"dataset format 'folder': option patient_pattern {pattern!r} has no named group 'patient', "
            "e.g. '^(?P<patient>[^_]+)_'"
        )
    return compiled


def _folder_classes(root: Path, classes: Any, rejected: list[dict]) -> list[tuple[str, Path]]:
    """The classes in label order with their folders; folders not used are rejected, hidden ones
    skipped. Listed classes are matched to folders without regard to case."""
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if not entry.is_dir():
            rejected.append({"path": str(entry), "reason": "file outside the class folders"})
        elif not is_text(entry.name):
            rejected.append({"path": str(entry), "reason": NOT_UTF8})
        else:
            found.append(entry)
    if classes is None:
        if len(found) < 2:
            raise LayoutError(
                f"{root}: {len(found)} class folder(s) found ({', '.join(d.name for d in found) or 'none'}), "
                f"need at least 2. Expected layout: {FOLDER_LAYOUT}."
            )
        return [(d.name, d) for d in found]
    if (not isinstance(classes, (list, tuple)) or len(classes) < 2
            or not all(isinstance(c, str) and c for c in classes) or len({c.lower() for c in classes}) != len(classes)):
        raise ValueError(
            "dataset format 'folder': option classes must list at least two folder names that differ "
            f"(without regard to case), got {classes!r}"
        )
    folders = {cls: child_dir(root, cls) for cls in classes}
    missing = [cls for cls, folder in folders.items() if folder is None]
    if missing:
        raise LayoutError(
            f"{root}: class folder(s) {', '.join(missing)} listed in the option classes not found "
            f"(folders there: {', '.join(d.name for d in found) or 'none'}). Expected layout: {FOLDER_LAYOUT}."
        )
    for folder in found:
        if folder not in folders.values():
            rejected.append({"path": str(folder), "reason": f"folder is not one of the classes {list(classes)}"})
    return list(folders.items())


@READERS.register("folder", layout=FOLDER_LAYOUT, options=FOLDER_OPTIONS)
def folder_candidates(root: Path, rejected: list[dict], options: dict | None = None) -> Reading:
    """A lab's own images, one folder per class (subfolders inside a class folder are searched too).

    Options:
        classes: the class folders in label order (``[name0, name1, ...]``); without it every
            folder is a class and labels follow alphabetical order. With it, a folder not listed
            is rejected and a listed one that is missing or empty is an error; folders are
            matched to the names without regard to case.
        patient_pattern: a regex with a named group ``patient``, searched in each file name; its
            match is the ``patient_id`` (a file it does not match is rejected). Without it
            ``patient_id`` is empty and splits cannot be subject-disjoint.
    """
    options = _check_options("folder", options, FOLDER_OPTIONS)
    pattern = _folder_pattern(options.get("patient_pattern"))
    classes = _folder_classes(root, options.get("classes"), rejected)
    candidates = []
    for label, (cls, class_dir) in enumerate(classes):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file())
        if not any(_has_image_suffix(p) for p in files):
            raise LayoutError(
                f"{class_dir}: class folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))}). "
                f"Expected layout: {FOLDER_LAYOUT}."
            )
        for path in files:
            if not _has_image_suffix(path):
                rejected.append({"path": str(path), "class_name": cls,
                                 "reason": f"not an image file name (suffix '{path.suffix}')"})
                continue
            patient = ""
            if pattern is not None:
                match = pattern.search(path.name)
                if match is None or not match["patient"]:
                    reason = f"patient_pattern {pattern.pattern} finds no patient in the name"
                    rejected.append({"path": str(path), "class_name": cls, "reason": reason})
                    continue
                patient = match["patient"]
            candidates.append(Candidate(
                path=path, image_id=_relative_id(path, root), label=label, class_name=cls,
                patient_id=patient, fold="", subset="training",
            ))
    return tuple(cls for cls, _ in classes), candidates


def _inspect(candidate: Candidate, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict:
    """Hash and decode one file; the status says why it cannot be used, or 'ok'."""
    image, problem, content_hash = open_image(candidate.path, with_hash=True, max_pixels=max_pixels)
    row = {
        "image_id": candidate.image_id, "path": str(candidate.path), "label": candidate.label,
        "class_name": candidate.class_name, "patient_id": candidate.patient_id, "fold": candidate.fold,
        "subset": candidate.subset, "content_hash": content_hash, "width": 0, "height": 0,
    }
    if image is None:
        return row | {"status": problem}
    return row | {"width": int(image.shape[1]), "height": int(image.shape[0]), "status": "ok"}


def _inspect_all(
    candidates: Iterable[Candidate], threads: int, max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> pd.DataFrame:
    rows = thread_map(lambda candidate: _inspect(candidate, max_pixels), candidates, threads)
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS)


def read_dataset(
    fmt: str, root: str | os.PathLike, threads: int = 1, options: dict | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a dataset folder into ``(manifest, rejected)``.

    Args:
        fmt: the dataset's ``format`` in config (a name in ``READERS``).
        root: the dataset folder.
        threads: files decoded in parallel.
        options: the reader's options (``aria``: ``images``, ``classes``; ``folder``:
            ``classes``, ``patient_pattern``); the other formats take none.
        max_pixels: images above this many pixels are rejected, their size read from the
            header without decoding them (config ``ingest.max_pixels``; None: no limit).
            Every file is judged and decoded by :func:`open_image`.

    Returns:
        The manifest (only readable images, status 'ok') and the rejected files with reasons.
    """
    entry = READERS.entry(fmt)  # ValueError: unknown dataset format '<fmt>'; known formats: ...
    reader, layout, takes_options = entry.item, entry.attributes["layout"], bool(entry.attributes["options"])
    if options and not takes_options:
        raise ValueError(f"dataset format '{fmt}' takes no options, got {sorted(options)}")
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"dataset folder {root} does not exist or is not a folder")
    rejected: list[dict] = []
    classes, found = reader(root, rejected, options=options) if takes_options else reader(root, rejected)
    named = [c for c in found if is_text(str(c.path))]
    rejected.extend({"path": str(c.path), "class_name": c.class_name, "reason": NOT_UTF8}
                    for c in found if not is_text(str(c.path)))
    inspected = _inspect_all(named, threads, max_pixels)
    if inspected.empty and not rejected:
        raise LayoutError(f"{root}: no images found. Expected layout: {layout}.")
    bad = inspected["status"] != "ok"
    rejected.extend({"path": p, "class_name": c, "reason": s}
                    for p, c, s in inspected.loc[bad, ["path", "class_name", "status"]].itertuples(index=False))
    manifest = inspected.loc[~bad].reset_index(drop=True)
    manifest = _without_copies_under_two_classes(manifest, rejected)
    check_classes(classes, manifest, rejected, root, layout)
    table = pd.DataFrame([{"path": printable(r["path"]), "reason": r["reason"]} for r in rejected],
                         columns=REJECTED_COLUMNS)
    return manifest, table


def _without_copies_under_two_classes(manifest: pd.DataFrame, rejected: list[dict]) -> pd.DataFrame:
    """The manifest less every copy of an image whose bytes lie under two or more classes (each
    rejected, naming the other copies): one image cannot be two classes, and kept, it would teach
    the model both or test it on a truth it cannot meet."""
    hashed = manifest["content_hash"].ne("")
    classes = manifest[hashed].groupby("content_hash")["class_name"].transform("nunique")
    conflicted = pd.Series(False, index=manifest.index)
    conflicted[classes.index] = classes > 1
    for _, copies in manifest[conflicted].groupby("content_hash", sort=False):
        for row in copies.itertuples(index=False):
            others = copies[copies["path"] != row.path]
            named = ", ".join(f"{printable(p)} ({c})" for p, c in others[["path", "class_name"]].itertuples(index=False))
            rejected.append({"path": row.path, "class_name": row.class_name,
                             "reason": f"the same bytes as {named}: one image cannot be two classes, so every copy is "
                                       "left out; keep it under its one right class"})
    return manifest.loc[~conflicted].reset_index(drop=True)


def check_classes(classes: tuple[str, ...], manifest: pd.DataFrame, rejected: list[dict], root: Path,
                  layout: str) -> None:
    """:class:`MissingClassError` when a class the reader declares has no readable training image.

    The labels are the classes' places in the reader's list, so they never depend on which files
    could be read; a class left empty would leave a model with a head for classes it never saw
    (or a one-class dataset), so the run stops here, before any split, saying what became of
    the class's files.
    """
    training = manifest.loc[manifest["subset"] == "training", "class_name"]
    empty = [cls for cls in classes if not (training == cls).any()]
    if not empty:
        return
    lines = []
    for cls in empty:
        files = [r for r in rejected if r.get("class_name") == cls]
        if not files:
            lines.append(f"class '{cls}': no file of it was found (expected layout: {layout})")
            continue
        reasons = pd.Series([r["reason"] for r in files]).value_counts()
        shown = "; ".join(f"{n} x {reason}" for reason, n in reasons.items())
        folders = sorted({printable(Path(r["path"]).parent) for r in files})
        lines.append(f"class '{cls}': all {len(files)} file(s) in {', '.join(folders[:3])}"
                     f"{' ...' if len(folders) > 3 else ''} were rejected ({shown}), e.g. "
                     + ", ".join(printable(r["path"]) for r in files[:3]))
    raise MissingClassError(
        f"{root}: {len(empty)} of the dataset's classes ({', '.join(classes)}) have no readable image, so "
        "the labels cannot be kept:\n  - " + "\n  - ".join(lines)
        + "\nReplace or convert those files, or leave the class out (a folder dataset's options.classes)."
    )


NOT_UTF8 = ("file name is not valid UTF-8 (shown with \\x escapes): rename it to UTF-8, e.g. "
            "convmv -f latin1 -t utf8 --notest -r <folder>")
