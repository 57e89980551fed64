"""What ``leukobench predict`` reads: the image files it is given or finds in folders, each checked
before it is opened, and prepared as the trial's store was (:mod:`leukobench.apply.predict` says
what each case does)."""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from leukobench.data.images import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES
from leukobench.data.store import Preparation, prepared_image


class NoImagesError(ValueError):
    """The inputs hold no image file."""


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def file_kind(mode: int) -> str:
    """What a file that is neither a regular file nor a folder is, in words."""
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device")):
        if test(mode):
            return name
    return "special file"


def unstattable(path: Path, error: OSError) -> str:
    """Why ``os.stat`` (following links) failed on ``path``, in words."""
    if isinstance(error, FileNotFoundError) and os.path.islink(path):
        return "dangling link"
    if error.errno == errno.ELOOP:
        return "symbolic link loop"
    return f"unreadable ({error.strerror or error})"


# key of a file in the identities that find_images collects: (device, inode) of a file that exists,
# ("missing", resolved path) of one that does not
Identity = tuple


def identity(path: Path, info: os.stat_result | None = None) -> Identity:
    if info is None:
        try:
            info = os.stat(path)
        except OSError:
            return ("missing", os.path.realpath(path))
    return (info.st_dev, info.st_ino)


def _search(folder: Path, identities: dict | None) -> tuple[list[Path], Counter]:
    """The image files below ``folder``, sorted, and what was skipped, counted by kind.

    Each entry is looked at with one ``os.stat`` and never opened, so a FIFO or device cannot block
    the search; ``rglob`` does not descend into links to folders, so a link loop cannot make it endless.
    """
    images, skipped = [], Counter()
    for entry in folder.rglob("*"):
        if _hidden(entry, folder):
            if not entry.is_dir() or entry.is_symlink():
                skipped["hidden"] += 1
            continue
        try:
            info = entry.stat()
        except OSError as error:
            if isinstance(error, FileNotFoundError) and not os.path.islink(entry):
                continue  # removed since the folder was listed
            skipped[unstattable(entry, error)] += 1
            continue
        image_suffix = entry.suffix.lower() in IMAGE_SUFFIXES
        if stat.S_ISDIR(info.st_mode):
            if entry.is_symlink():
                skipped["link to a folder (not searched)"] += 1
            elif image_suffix:
                skipped["folder named like an image (its contents are searched)"] += 1
        elif not stat.S_ISREG(info.st_mode):
            skipped[f"not a regular file ({file_kind(info.st_mode)})"] += 1
        elif not image_suffix:
            skipped["without an image suffix"] += 1
        else:
            images.append(entry)
            if identities is not None:
                identities[identity(entry, info)] = entry
    return sorted(images), skipped


def _skipped_note(folder: Path, skipped: Counter) -> str:
    total = sum(skipped.values())
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items(), key=lambda item: (-item[1], item[0])))
    note = f"{folder}: {total} {'entry' if total == 1 else 'entries'} skipped: {kinds}"
    if skipped["without an image suffix"]:
        note += f" ({', '.join(sorted(IMAGE_SUFFIXES))} are read)"
    return note


def find_images(inputs: Iterable[str | os.PathLike], notes: list[str] | None = None,
                identities: dict | None = None) -> list[Path]:
    """The files to classify: files as given (even missing ones: they get an error row), folders
    expanded recursively to their image files (regular files with an image suffix), sorted.

    ``notes`` collects what was skipped, counted by kind; ``identities`` (for :class:`OutputGuard`)
    maps each file's identity (device and inode, or the resolved path of a file that does not
    exist) to the file.
    """
    inputs = list(inputs)
    files: list[Path] = []
    for given in map(Path, inputs):
        if not given.is_dir():
            files.append(given)
            if identities is not None:
                identities.setdefault(identity(given), given)
            continue
        images, skipped = _search(given, identities)
        files.extend(images)
        if notes is not None and skipped:
            notes.append(_skipped_note(given, skipped))
        if notes is not None and not images:
            notes.append(f"{given}: no images in this folder")
    if not files:
        shown = ", ".join(map(str, inputs))
        raise NoImagesError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {shown}")
    return files


def not_an_image_file(path: str | os.PathLike) -> str:
    """Why ``path`` must not be opened as an image ("" for a regular file, or a missing one: the
    reader names that): a FIFO, socket or device (opening a FIFO waits for a writer, possibly
    forever), a folder, a dangling link or a link loop. One ``os.stat``, following links.

    (A race-free check would open with ``O_NONBLOCK`` and ``fstat``; the shared reader
    :func:`leukobench.data.images.open_image` opens by path, so the check comes just before it.)
    """
    try:
        info = os.stat(path)
    except OSError as error:
        if isinstance(error, FileNotFoundError) and not os.path.islink(path):
            return ""
        why = unstattable(Path(path), error)
        if why == "dangling link":
            try:
                why = f"dangling symbolic link (to {os.readlink(path)})"
            except OSError:
                why = "dangling symbolic link"
        elif why == "symbolic link loop":
            why = "symbolic link loop (too many levels of symbolic links)"
        return why
    if stat.S_ISDIR(info.st_mode):
        return "a folder, not an image file"
    if not stat.S_ISREG(info.st_mode):
        return f"not a regular file (a {file_kind(info.st_mode)}): only regular files are read as images"
    return ""


def _prepare_or_reason(path: str | os.PathLike, prep: Preparation) -> tuple[np.ndarray | None, str]:
    """One file as the model's input, prepared as the store prepares it
    (:func:`leukobench.data.store.prepared_image`, with the default pixel limit), or None and a
    reason fit for the ``error`` column. Only a regular file is opened (:func:`not_an_image_file`)."""
    problem = not_an_image_file(path)
    if problem:
        return None, problem
    return prepared_image(path, prep, DEFAULT_MAX_PIXELS)


def prepare_image(path: str | os.PathLike, prep: Preparation) -> np.ndarray:
    """One file as the model's input, or ``ValueError`` with the reason (see :func:`_prepare_or_reason`)."""
    image, problem = _prepare_or_reason(path, prep)
    if image is None:
        raise ValueError(problem)
    return image


def prepared_chunks(files: list[Path], prep: Preparation, batch_size: int,
                    threads: int | None = None) -> Iterator[list[tuple[Path, np.ndarray | None, str]]]:
    """Chunks of ``(path, image or None, reason)``; the next chunk decodes while the caller works on this one."""
    threads = max(1, threads or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque = deque()
        for start in range(0, len(files), batch_size):
            chunk = files[start:start + batch_size]
            pending.append((chunk, [pool.submit(_prepare_or_reason, p, prep) for p in chunk]))
            if len(pending) > 1:
                chunk, futures = pending.popleft()
                yield [(p, *f.result()) for p, f in zip(chunk, futures)]
        while pending:
            chunk, futures = pending.popleft()
            yield [(p, *f.result()) for p, f in zip(chunk, futures)]
