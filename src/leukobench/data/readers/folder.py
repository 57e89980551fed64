"""The reader of a lab's own images (``folder``): one folder per class, patients optionally read from
the file names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from leukobench.data.images import IMAGE_SUFFIXES
from leukobench.data.readers.common import (NOT_UTF8, READERS, Candidate, LayoutError, Reading, _check_options,
                                            _has_image_suffix, _relative_id, child_dir)
from leukobench.io import is_text

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
