"""The reader of Aria et al.'s dataset (``aria``; Kaggle mehradaria/leukemia): benign cells and three
malignant stages, original or segmented images, 4 classes or 2."""

from __future__ import annotations

import re
from pathlib import Path

from leukobench.data.readers.common import (READERS, Candidate, LayoutError, Reading, _check_options, _relative_id,
                                            child_dir)

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
