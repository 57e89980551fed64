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
import struct
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
import tifffile
import xxhash
from PIL import Image

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
IMAGE_SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
THREAD_CHUNK = 16  # images per task handed to a thread (see thread_map)
DEFAULT_MAX_PIXELS = 50_000_000  # ingest.max_pixels: see open_image
# Pillow only reads headers here (image_size); the pixel limit is max_pixels, checked by us. Pillow's
# own guard (a warning above 89 Mpx, an error above 179 Mpx) would hide the size of such a file.
Image.MAX_IMAGE_PIXELS = None


class LayoutError(ValueError):
    """A dataset folder is not in the layout its reader expects."""


class MissingClassError(LayoutError):
    """A class the dataset declares has no readable image: its labels would shift or vanish."""


Reading = tuple[tuple[str, ...], list["Candidate"]]  # what a reader returns: its classes in label order, its files


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


def cnmc_candidates(root: Path, rejected: list[dict]) -> Reading:
    """All labelled images of a C-NMC 2019 tree (TCIA or Kaggle layout)."""
    return CNMC_CLASSES, _cnmc_training_candidates(root, rejected) + _cnmc_prelim_candidates(root, rejected)


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


READERS: dict[str, Callable[..., Reading]] = {
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


def _takes_options(reader: Callable[..., Reading]) -> bool:
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
    """Decode image bytes with OpenCV, as it gives them (any sample type, 1 to 4 channels); None
    when OpenCV cannot read them (or refuses to). :func:`open_image` adds the checks and the rule
    that make an image of any type what the store prepares."""
    if not len(data):
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. a header declaring an image too large to allocate
        return None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # little / big endian, classic / BigTIFF


def _bmp_size(head: bytes) -> tuple[int, int]:
    if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sides
        return struct.unpack("<HH", head[18:22])
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # a negative height: rows stored top-down


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(width, height)`` read from the file's header without decoding its pixels; None when the
    header is not one read here (OpenCV's decode then decides). PNG and BMP sizes sit at fixed
    offsets of their first bytes, read here for speed (Pillow's parsing adds a fifth to the
    decoding time of a 450 x 450 BMP cell, this 7 %); TIFF's first directory is read by tifffile
    (Pillow has no mode for 16-bit, signed or float RGB, common in microscopy); other formats by
    Pillow, which reads the header only.
    Raises OSError when the file cannot be opened.
    """
    with open(path, "rb") as handle:
        try:
            head = handle.read(32)
            if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":  # IHDR is the first chunk
                return struct.unpack(">II", head[16:24])
            if head[:2] == b"BM" and len(head) >= 26:
                return _bmp_size(head)
            handle.seek(0)
            if head[:4] in TIFF_SIGNATURES:
                with tifffile.TiffFile(handle) as tiff:
                    page = tiff.pages.first
                    return page.imagewidth, page.imagelength
            with Image.open(handle) as image:
                return image.size
        except Exception:  # not an image, truncated, a format Pillow lacks: OpenCV decides
            return None


def _megapixels(pixels: int) -> str:
    megapixels = pixels / 1e6
    return f"{megapixels:,.0f}" if megapixels >= 1000 else f"{megapixels:.4g}"


def pixel_limit_problem(width: int, height: int, max_pixels: int | None) -> str:
    """Why an image of this size is refused; empty when it is within ``max_pixels`` (None: no limit)."""
    if max_pixels is None or width * height <= max_pixels:
        return ""
    return (f"image is {width} x {height} px = {_megapixels(width * height)} Mpx, above the limit of "
            f"{_megapixels(max_pixels)} Mpx (ingest.max_pixels); crop it or raise the limit")


def to_8bit(image: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The one rule from a decoded image (any sample type, 1 to 4 channels) to what the store
    prepares: ``(image, "")`` with the image uint8, 2-D (gray) or 3 channels in OpenCV's BGR
    order, or ``(None, why it is refused)``.

    Channels: gray and BGR as they are; BGRA and gray + alpha lose the alpha channel (the colours
    as stored, not composited on a background); any other count is refused.
    Sample types, judged on the colour channels (the same mapping for every image of a type, so
    no image is brightened or darkened by its own content):

    * uint8: as it is.
    * uint16: times 255/65535, rounded (the type's full range; a 12-bit camera's 0..4095 stays dark).
    * other integer types (int8, int16, int32, uint32, int64): values within [0, 255] as they are
      (8-bit values stored in a wider type); any value outside is refused, naming the type and the
      range: no fixed range fits such data, and stretching each image to its own min and max would
      change brightness from image to image.
    * float16/32/64: values within [0, 1] times 255, rounded; NaN, infinity or any value outside
      [0, 1] is refused.
    """
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if channels not in (1, 2, 3, 4):
        return None, f"{channels or image.ndim} channels: convert to gray, RGB or RGBA images"
    if channels == 1 and image.ndim == 3:
        image = image[:, :, 0]
    elif channels == 2:  # gray + alpha: the gray
        image = np.ascontiguousarray(image[:, :, 0])
    elif channels == 4:  # BGRA: BGR
        supported = image.dtype in (np.uint8, np.uint16, np.float32)
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) if supported else np.ascontiguousarray(image[:, :, :3])
    dtype = image.dtype
    if dtype == np.uint8:
        return image, ""
    if dtype == np.uint16:
        return cv2.convertScaleAbs(image, alpha=255 / 65535), ""
    if dtype.kind in "iu":
        low, high = int(image.min()), int(image.max())
        if low < 0 or high > 255:
            return None, (f"sample type {dtype.name} with values outside [0, 255] (min {low}, max {high}): "
                          "convert to 8- or 16-bit unsigned integer images")
        return image.astype(np.uint8), ""
    if dtype.kind == "f":
        if not np.isfinite(image).all():
            return None, f"sample type {dtype.name} with NaN or infinite values: convert to 8- or 16-bit integer images"
        low, high = float(image.min()), float(image.max())
        if low < 0 or high > 1:
            return None, (f"sample type {dtype.name} with values outside [0, 1] (min {low:g}, max {high:g}): "
                          "convert to 8- or 16-bit integer images")
        samples = image.astype(np.float32) if dtype.itemsize < 4 else image
        return np.rint(samples * 255).astype(np.uint8), ""
    return None, f"sample type {dtype.name}: convert to 8- or 16-bit integer images"


def open_image(
    path: str | os.PathLike, with_hash: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray | None, str, str]:
    """Read, check and decode one file: the one way ingest, the store and predict judge and decode images.

    Returns ``(image, problem, content_hash)``: the image as the store prepares it (uint8, 2-D
    gray or BGR in OpenCV's order: :func:`to_8bit` is the rule for every sample type and channel
    count) and an empty problem, or None and why the file cannot be used (missing, unreadable,
    empty, not decodable, above ``max_pixels``, a sample type or channel count the rule refuses).

    ``max_pixels`` (None: no limit): the size is read from the header first (:func:`image_size`),
    so an image above the limit is refused without decoding it (a 20,000 x 20,000 PNG takes
    1.2 GB decoded); a file whose header only OpenCV reads is checked once decoded. The default,
    50 Mpx, is far above any microscope image (a C-NMC cell is 0.2 Mpx, an ALL-IDB1 field 5 Mpx,
    a full camera frame 20 to 25 Mpx), and an image at the limit decodes to 150 MB as 8-bit BGR
    (400 MB as 16-bit BGRA), so a few decoding threads stay within ingest's memory.

    ``content_hash`` (with ``with_hash``) is XXH3-128 of the bytes: it only has to find
    byte-identical copies, so not SHA-256 (0.02 ms for a 600 kB BMP against 0.34 ms); an
    accidental collision among n files has a chance of about n^2 / 2^129. It is empty for a file
    refused by its header's size.
    """
    try:
        size = image_size(path) if max_pixels is not None else None
        if size is not None and (too_large := pixel_limit_problem(*size, max_pixels)):
            return None, too_large, ""
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
    problem = pixel_limit_problem(image.shape[1], image.shape[0], max_pixels)
    if problem:
        return None, problem, content_hash
    image, problem = to_8bit(image)
    return image, problem, content_hash


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
        fmt: the dataset's ``format`` in config (a key of ``READERS``).
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
    if fmt not in READERS:
        raise ValueError(f"unknown dataset format '{fmt}'; known formats: {', '.join(sorted(READERS))}")
    reader = READERS[fmt]
    if options and not _takes_options(reader):
        raise ValueError(f"dataset format '{fmt}' takes no options, got {sorted(options)}")
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f"dataset folder {root} does not exist or is not a folder")
    rejected: list[dict] = []
    classes, found = reader(root, rejected, options=options) if _takes_options(reader) else reader(root, rejected)
    named = [c for c in found if is_text(str(c.path))]
    rejected.extend({"path": str(c.path), "class_name": c.class_name, "reason": NOT_UTF8}
                    for c in found if not is_text(str(c.path)))
    inspected = _inspect_all(named, threads, max_pixels)
    if inspected.empty and not rejected:
        raise LayoutError(f"{root}: no images found. Expected layout: {LAYOUTS.get(fmt, CNMC_LAYOUT)}.")
    bad = inspected["status"] != "ok"
    rejected.extend({"path": p, "class_name": c, "reason": s}
                    for p, c, s in inspected.loc[bad, ["path", "class_name", "status"]].itertuples(index=False))
    manifest = inspected.loc[~bad].reset_index(drop=True)
    check_classes(classes, manifest, rejected, root, LAYOUTS.get(fmt, CNMC_LAYOUT))
    table = pd.DataFrame([{"path": printable(r["path"]), "reason": r["reason"]} for r in rejected],
                         columns=REJECTED_COLUMNS)
    return manifest, table


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


def is_text(name: str) -> bool:
    """Whether a name (as Python decodes file names: undecodable bytes as surrogates) is valid UTF-8."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(path: str | os.PathLike) -> str:
    """A path as text that can be written anywhere: bytes that are not UTF-8 as ``\\xNN``, as ``ls -b`` shows them."""
    try:
        return os.fsencode(path).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name gives
        return os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")
