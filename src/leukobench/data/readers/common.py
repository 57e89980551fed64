"""What every dataset reader shares: the reader registry, a found file (:class:`Candidate`), the
layout errors, small helpers of the layout modules, and :func:`read_dataset`, which runs one
reader and judges and decodes every file it found into the manifest and the rejected files.

The readers themselves lie in the modules beside this one, one per dataset layout; the package
(:mod:`leukobench.data.readers`) imports them all, so ``READERS`` is complete wherever it is used.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from leukobench.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, open_image, thread_map
from leukobench.io import is_text, printable
from leukobench.registry import Registry

MANIFEST_COLUMNS = [
    "image_id", "path", "label", "class_name", "patient_id", "fold", "subset",
    "content_hash", "width", "height", "status",
]
REJECTED_COLUMNS = ["path", "reason"]


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
