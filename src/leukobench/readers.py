"""Readers: turn a raw dataset folder into the manifest, one row per image.

A reader walks a dataset in its published layout, decodes every image once (so a truncated or
unreadable file is caught here, not in the middle of training), and returns two tables:

* the manifest (``MANIFEST_COLUMNS``): path, label, class name, patient, fold, subset,
  content hash (XXH3-128 of the file's bytes: equal for byte-identical files), width, height,
  status;
* the rejected files: path and the reason, written by the workflow to ``rejected.tsv``.

The run goes on without the rejected files. A folder in none of the known layouts is an error
that names the folder and the layout that was expected.

Formats (``READERS``): ``cnmc`` and ``synthetic`` (C-NMC 2019), ``aria`` (Aria et al.),
``allidb`` (ALL-IDB2) and ``folder`` (a lab's own images, one folder per class). A reader is a
function ``(root, rejected) -> list[Candidate]``; one that takes options has a keyword
``options`` as well, and ``read_dataset(..., options=...)`` passes them on.
"""

from __future__ import annotations

import inspect
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import xxhash

MANIFEST_COLUMNS = [
    "image_id", "path", "label", "class_name", "patient_id", "fold", "subset",
    "content_hash", "width", "height", "status",
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
THREAD_CHUNK = 16  # images per task handed to a thread (see thread_map)


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
    if any((root / name).is_dir() for name in ARIA_IMAGE_DIRS.values()):
        folder = root / ARIA_IMAGE_DIRS[images or "original"]
        if not folder.is_dir():
            raise LayoutError(
                f"{root}: no {folder.name}/ folder (images: {images or 'original'}). Expected layout: {ARIA_LAYOUT}."
            )
        return folder
    if any((root / name).is_dir() for name in ARIA_CLASSES):
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


def aria_candidates(root: Path, rejected: list[dict], options: dict | None = None) -> list[Candidate]:
    """All images of the Aria et al. ALL dataset: benign cells and three malignant stages.

    Options:
        images: ``original`` (default) or ``segmented``: which image set to read when ``root``
            holds both ``Original/`` and ``Segmented/``.
        classes: ``4`` (default; Benign, Early, Pre, Pro = labels 0..3, class name = folder) or
            ``2`` (``benign`` = 0 vs ``malignant`` = 1: Early, Pre and Pro).

    The dataset names no patients, so ``patient_id`` is empty: splits of it cannot be
    subject-disjoint (only a cell-level, ``random`` split is possible, and it may put images of
    one patient, and the dataset's exact duplicate files, on both sides). A file whose name says
    another class than its folder is rejected.
    """
    options = _check_options("aria", options, ARIA_OPTIONS)
    images = options.get("images")
    if images is not None and images not in ARIA_OPTIONS["images"]:
        raise ValueError(f"dataset format 'aria': option images: {images!r} unknown; allowed: original, segmented")
    n_classes = options.get("classes", 4)
    if isinstance(n_classes, bool) or n_classes not in ARIA_OPTIONS["classes"]:
        raise ValueError(f"dataset format 'aria': option classes: {n_classes!r} unknown; allowed: 4, 2")

    parent = _aria_class_parent(root, images)
    for entry in sorted(parent.iterdir()):
        if entry.name not in ARIA_CLASSES:
            what = "folder" if entry.is_dir() else "file"
            reason = f"{what} outside the class folders {', '.join(ARIA_CLASSES)}"
            rejected.append({"path": str(entry), "reason": reason})
    candidates = []
    for label, cls in enumerate(ARIA_CLASSES):
        class_dir = parent / cls
        if not class_dir.is_dir():
            raise LayoutError(f"{parent}: class folder {cls}/ is missing. Expected layout: {ARIA_LAYOUT}.")
        entries = sorted(class_dir.iterdir())
        if not any(p.is_file() for p in entries):
            raise LayoutError(f"{class_dir}: class folder is empty. Expected layout: {ARIA_LAYOUT}.")
        for path in entries:
            if not path.is_file():
                rejected.append({"path": str(path), "reason": "unexpected folder inside a class folder"})
                continue
            match = ARIA_NAME.fullmatch(path.name)
            if match is None:
                rejected.append({"path": str(path), "reason": f"name does not match {ARIA_NAME.pattern}"})
                continue
            named = (match["stage"] or "Benign").capitalize()
            if named != cls:
                rejected.append({"path": str(path), "reason": f"name says '{named}' but the file is in {cls}/"})
                continue
            if n_classes == 2:
                binary = int(label > 0)
                label_out, name_out = binary, ARIA_BINARY_CLASSES[binary]
            else:
                label_out, name_out = label, cls
            candidates.append(Candidate(
                path=path, image_id=_relative_id(path, root), label=label_out, class_name=name_out,
                patient_id="", fold="", subset="training",
            ))
    return candidates


# --- ALL-IDB2 --------------------------------------------------------------------------------

ALLIDB_CLASSES = ("normal", "blast")  # index = label: suffix _0 normal, _1 blast
ALLIDB_NAME = re.compile(r"Im(?P<image>\d{3})_(?P<label>[01])\.tif")
ALLIDB_DIRS = ("ALL_IDB2/img", "img")
ALLIDB_LAYOUT = (
    "ALL-IDB2: <root>/ALL_IDB2/img/Im<nnn>_<0|1>.tif (_1 = blast, _0 = normal); <root> may also be "
    "ALL_IDB2/ (holding img/) or img/ itself"
)


def _allidb_image_dir(root: Path) -> Path:
    for name in ALLIDB_DIRS:
        if (root / name).is_dir():
            return root / name
    if any(p.is_file() and ALLIDB_NAME.fullmatch(p.name) for p in root.iterdir()):
        return root
    raise LayoutError(
        f"{root}: no ALL-IDB2 image folder found (looked for {', '.join(ALLIDB_DIRS)} and Im<nnn>_<0|1>.tif "
        f"files in the folder itself). Expected layout: {ALLIDB_LAYOUT}."
    )


def allidb_candidates(root: Path, rejected: list[dict]) -> list[Candidate]:
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
    return candidates


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


def _folder_classes(root: Path, classes: Any, rejected: list[dict]) -> list[str]:
    """The class names in label order; folders not used are rejected, hidden ones skipped."""
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            found.append(entry.name)
        else:
            rejected.append({"path": str(entry), "reason": "file outside the class folders"})
    if classes is None:
        if len(found) < 2:
            raise LayoutError(
                f"{root}: {len(found)} class folder(s) found ({', '.join(found) or 'none'}), need at least 2. "
                f"Expected layout: {FOLDER_LAYOUT}."
            )
        return found
    if (not isinstance(classes, (list, tuple)) or len(classes) < 2
            or not all(isinstance(c, str) and c for c in classes) or len(set(classes)) != len(classes)):
        raise ValueError(
            f"dataset format 'folder': option classes must list at least two distinct folder names, got {classes!r}"
        )
    missing = [c for c in classes if c not in found]
    if missing:
        raise LayoutError(
            f"{root}: class folder(s) {', '.join(missing)} listed in the option classes not found. "
            f"Expected layout: {FOLDER_LAYOUT}."
        )
    for name in found:
        if name not in classes:
            rejected.append({"path": str(root / name), "reason": f"folder is not one of the classes {list(classes)}"})
    return list(classes)


def folder_candidates(root: Path, rejected: list[dict], options: dict | None = None) -> list[Candidate]:
    """A lab's own images, one folder per class (subfolders inside a class folder are searched too).

    Options:
        classes: the class folders in label order (``[name0, name1, ...]``); without it every
            folder is a class and labels follow alphabetical order. With it, a folder not listed
            is rejected and a listed one that is missing or empty is an error.
        patient_pattern: a regex with a named group ``patient``, searched in each file name; its
            match is the ``patient_id`` (a file it does not match is rejected). Without it
            ``patient_id`` is empty and splits cannot be subject-disjoint.
    """
    options = _check_options("folder", options, FOLDER_OPTIONS)
    pattern = _folder_pattern(options.get("patient_pattern"))
    classes = _folder_classes(root, options.get("classes"), rejected)
    candidates = []
    for label, cls in enumerate(classes):
        class_dir = root / cls
        files = sorted(p for p in class_dir.rglob("*") if p.is_file())
        if not any(_has_image_suffix(p) for p in files):
            raise LayoutError(
                f"{class_dir}: class folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))}). "
                f"Expected layout: {FOLDER_LAYOUT}."
            )
        for path in files:
            if not _has_image_suffix(path):
                rejected.append({"path": str(path), "reason": f"not an image file name (suffix '{path.suffix}')"})
                continue
            patient = ""
            if pattern is not None:
                match = pattern.search(path.name)
                if match is None or not match["patient"]:
                    reason = f"patient_pattern {pattern.pattern} finds no patient in the name"
                    rejected.append({"path": str(path), "reason": reason})
                    continue
                patient = match["patient"]
            candidates.append(Candidate(
                path=path, image_id=_relative_id(path, root), label=label, class_name=cls,
                patient_id=patient, fold="", subset="training",
            ))
    return candidates


READERS: dict[str, Callable[..., list[Candidate]]] = {
    "cnmc": cnmc_candidates,
    "synthetic": cnmc_candidates,  # the embedded generator writes the C-NMC Kaggle layout
    "aria": aria_candidates,
    "allidb": allidb_candidates,
    "folder": folder_candidates,
}
LAYOUTS = {
    "cnmc": CNMC_LAYOUT, "synthetic": CNMC_LAYOUT, "aria": ARIA_LAYOUT, "allidb": ALLIDB_LAYOUT,
    "folder": FOLDER_LAYOUT,
}


def _takes_options(reader: Callable[..., list[Candidate]]) -> bool:
    return "options" in inspect.signature(reader).parameters


_READ_BUFFERS = threading.local()


@contextmanager
def file_bytes(path: str | os.PathLike) -> Iterator[memoryview]:
    """A file's bytes, read into a buffer that each thread reuses: valid inside the ``with`` only.

    A fresh 600 kB ``bytes`` per file (``Path.read_bytes``) costs more than hashing and decoding
    it together, because the allocator hands its pages back and faults them in again each time;
    the reused buffer keeps its pages. (A memory map would not copy, but a file truncated while
    it is mapped kills the process with SIGBUS instead of giving a short read.)
    """
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        buffer = getattr(_READ_BUFFERS, "buffer", None)
        if buffer is None or len(buffer) < size:
            buffer = _READ_BUFFERS.buffer = bytearray(size)
        with memoryview(buffer) as whole:
            read = 0
            while read < size:  # one read gives a regular file whole; some file systems give less
                got = handle.readinto(whole[read:size])
                if not got:  # the file shrank since fstat
                    break
                read += got
            with whole[:read] as data:
                yield data


def decode_image(data: bytes | memoryview) -> np.ndarray | None:
    """Decode image bytes with OpenCV; None when OpenCV cannot read them (or refuses to)."""
    if not len(data):
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. a header declaring an image too large to allocate
        return None


def open_image(path: str | os.PathLike, with_hash: bool = False) -> tuple[np.ndarray | None, str, str]:
    """Read and decode one file, judging it the one way ingest, the store and predict share.

    Returns ``(image, problem, content_hash)``: the image as OpenCV gives it (BGR, BGRA, gray;
    8 or 16 bit) and an empty problem, or None and why the file cannot be used (missing,
    unreadable, empty, not decodable). ``content_hash`` (with ``with_hash``) is XXH3-128 of the
    bytes: it only has to find byte-identical copies, so not SHA-256 (0.02 ms for a 600 kB BMP
    against 0.34 ms); an accidental collision among n files has a chance of about n^2 / 2^129.
    """
    try:
        with file_bytes(path) as data:
            content_hash = xxhash.xxh3_128_hexdigest(data) if with_hash else ""
            if not len(data):
                return None, "empty file (0 bytes)", content_hash
            image = decode_image(data)
    except FileNotFoundError:
        return None, "no such file or folder", ""
    except OSError as error:
        return None, f"unreadable: {error.strerror or error}", ""
    if image is None or image.size == 0:
        return None, "not a decodable image (truncated, corrupt or not an image)", content_hash
    return image, "", content_hash


def _inspect(candidate: Candidate) -> dict:
    """Hash and decode one file; the status says why it cannot be used, or 'ok'."""
    image, problem, content_hash = open_image(candidate.path, with_hash=True)
    row = {
        "image_id": candidate.image_id, "path": str(candidate.path), "label": candidate.label,
        "class_name": candidate.class_name, "patient_id": candidate.patient_id, "fold": candidate.fold,
        "subset": candidate.subset, "content_hash": content_hash, "width": 0, "height": 0,
    }
    if image is None:
        return row | {"status": problem}
    return row | {"width": int(image.shape[1]), "height": int(image.shape[0]), "status": "ok"}


def thread_map(fn: Callable[[Any], Any], items: Iterable[Any], threads: int) -> list[Any]:
    """``[fn(item) for item in items]`` on ``threads`` threads; the results keep the items' order.

    For work that releases the GIL (file reads, xxhash, OpenCV). The items go to the threads in
    chunks of consecutive items, so the pool's own cost per task, paid while holding the GIL, is
    paid once per chunk rather than once per image. An exception is raised as the loop would
    raise it: the first failing item's, in order.
    """
    items = list(items)
    threads = max(1, int(threads))
    if threads == 1 or len(items) < 2:
        return [fn(item) for item in items]
    size = max(1, min(THREAD_CHUNK, len(items) // (4 * threads)))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [result for chunk in pool.map(lambda part: [fn(item) for item in part], chunks) for result in chunk]


def _inspect_all(candidates: Iterable[Candidate], threads: int) -> pd.DataFrame:
    return pd.DataFrame(thread_map(_inspect, candidates, threads), columns=MANIFEST_COLUMNS)


def read_dataset(
    fmt: str, root: str | os.PathLike, threads: int = 1, options: dict | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a dataset folder into ``(manifest, rejected)``.

    Args:
        fmt: the dataset's ``format`` in config (a key of ``READERS``).
        root: the dataset folder.
        threads: files decoded in parallel.
        options: the reader's options (``aria``: ``images``, ``classes``; ``folder``:
            ``classes``, ``patient_pattern``); the other formats take none.

    Returns:
        The manifest (only readable images, status 'ok') and the rejected files with reasons.
    """
    if fmt not in READERS:
        raise ValueError(f"unknown dataset format '{fmt}'; known formats: {', '.join(sorted(READERS))}")
    reader = READERS[fmt]
    if options and not _takes_options(reader):
        raise ValueError(f"dataset format '{fmt}' takes no options, got {sorted(options)}")
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"dataset folder {root} does not exist or is not a folder")
    rejected: list[dict] = []
    found = reader(root, rejected, options=options) if _takes_options(reader) else reader(root, rejected)
    inspected = _inspect_all(found, threads)
    if inspected.empty:
        raise LayoutError(f"{root}: no images found. Expected layout: {LAYOUTS.get(fmt, CNMC_LAYOUT)}.")
    bad = inspected["status"] != "ok"
    rejected.extend({"path": p, "reason": s} for p, s in inspected.loc[bad, ["path", "status"]].itertuples(index=False))
    manifest = inspected.loc[~bad].reset_index(drop=True)
    return manifest, pd.DataFrame(rejected, columns=REJECTED_COLUMNS)
