"""What ``leukobench predict`` writes, and the one check every output passes first
(:class:`OutputGuard`): the CSV to a file (aside, then renamed), through a link, to a device or
FIFO as it is, or to standard output; the subjects' CSV beside it; the Grad-CAM overlays' names
(:mod:`leukobench.apply.predict` says what each case does)."""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from leukobench.apply.inputs import file_kind, identity, unstattable
from leukobench.io import atomic_path, printable
from leukobench.learn.saved_model import model_record_path
from leukobench.scoring import SCORING_FILE


SUBJECTS_SUFFIX = "_subjects"  # the subjects' CSV: <output stem>_subjects<output suffix>


class OutputError(ValueError):
    """An output must not or cannot be written: an input image, a model file, a folder being read, ..."""


def trial_files(model_path: Path) -> list[tuple[str, Path]]:
    """The files of a trial that predict reads beside its ``model.keras``: never an output."""
    return [("the model file", model_path), ("the model's", model_record_path(model_path)),
            ("the trial's", model_path.parent / SCORING_FILE)]


class OutputGuard:
    """The one check every file predict writes goes through, before the model is loaded or an image read.

    A file to write (:meth:`file`) is refused (:class:`OutputError`, naming the option, the path and
    why) when it is one of the command's own files: an input image (given by name or found in a
    folder) or a file of the trial (:func:`trial_files`), compared by device and inode, which a
    symbolic link, hard link, relative path or ``..`` cannot hide (a path that does not exist yet
    by resolved path); another output of the same run; a folder, or a path that cannot be looked
    up; or a file that would land inside a folder being read (resolved, so a link cannot hide it).
    A folder to write into (:meth:`folder`, ``--saliency``) must not be a file nor lie inside (or
    be) a folder being read. Devices, FIFOs and sockets are written through as they are, so only
    the identity check applies to them.
    """

    def __init__(self, model_path: Path, identities: dict, inputs: Iterable[str | os.PathLike]):
        self.own = {}
        for what, path in trial_files(model_path):
            if path.exists():  # a missing model.json is named by load_trial
                self.own[identity(path)] = f"{what} {path}"
        for key, path in identities.items():
            self.own.setdefault(key, f"the input image {path}")
        self.read_folders = [Path(os.path.realpath(p)) for p in map(Path, inputs) if p.is_dir()]
        self.claimed: dict = {}  # outputs accepted so far: identity -> the option that writes them

    def _inside_read_folder(self, path: str | os.PathLike) -> Path | None:
        real = os.path.realpath(path)
        return next((f for f in self.read_folders if os.path.commonpath([real, f]) == str(f)), None)

    def file(self, path: str | os.PathLike, option: str) -> None:
        """Refuse (:class:`OutputError`) ``path`` as the file ``option`` writes, or accept it."""
        shown = f"{option} {printable(path)}"
        try:
            info = os.stat(path)
        except FileNotFoundError:
            info = None
        except OSError as error:
            raise OutputError(f"{shown}: cannot be written ({unstattable(Path(path), error)})") from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise OutputError(f"{shown}: is a folder; give the name of the file to write")
        key = identity(Path(path), info)
        if key in self.own:
            raise OutputError(f"{shown} is {printable(self.own[key])} (the same file); predict does not overwrite "
                              f"its own inputs: give another file")
        if key in self.claimed:
            raise OutputError(f"{shown} is also written by {self.claimed[key]}; give each output its own file")
        folder = self._inside_read_folder(path) if info is None or stat.S_ISREG(info.st_mode) else None
        if folder is not None:
            raise OutputError(f"{shown} lies inside {printable(folder)}, a folder predict reads images from; "
                              "write it elsewhere")
        self.claimed[key] = option

    def folder(self, path: str | os.PathLike, option: str) -> None:
        """Refuse (:class:`OutputError`) ``path`` as the folder ``option`` writes files into, or accept it."""
        shown = f"{option} {printable(path)}"
        if os.path.lexists(path) and not os.path.isdir(path):
            raise OutputError(f"{shown}: not a folder; give a folder for the files (it is made if missing)")
        folder = self._inside_read_folder(path)
        if folder is not None:
            raise OutputError(f"{shown} is or lies inside {printable(folder)}, a folder predict reads images from "
                              "(its files would be read as images next time); give another folder")


@contextmanager
def writing(path: str | os.PathLike, what: str):
    """Any failure to write in the block named as ``path``'s (:class:`OutputError`): the message names the
    file that failed, not another output. A closed pipe (``BrokenPipeError``) goes on as it is."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as error:
        raise OutputError(f"{printable(path)}: cannot write {what} ({error.strerror or error})") from None


def output_target(path: str | os.PathLike) -> tuple[Path, bool]:
    """Where the CSV is written and whether aside-then-renamed (True) or through (False).

    A regular file or a path that does not exist yet: written aside, renamed onto the path. A
    symbolic link to a regular file (or to nothing yet): the same onto its resolved target, so the
    link stays a link. Anything else (a device such as ``/dev/stdout`` or ``/dev/null``, a FIFO, a
    socket): opened and written as it is, never replaced.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        return path, False
    if path.is_symlink():
        return Path(os.path.realpath(path)), True
    return path, True


def open_csv(path: Path) -> TextIO:
    return open(path, "w", newline="", encoding="utf-8", errors="surrogateescape")


@contextmanager
def _escaping(stream: TextIO):
    """``stream`` writing a non-UTF-8 file name's surrogate escapes as its original bytes, for the block."""
    before = getattr(stream, "errors", None)
    if before in (None, "surrogateescape") or not hasattr(stream, "reconfigure"):
        yield stream
        return
    try:
        stream.reconfigure(errors="surrogateescape")
    except (OSError, ValueError):  # e.g. a closed stream: writing will say so
        yield stream
        return
    try:
        yield stream
    finally:
        try:
            stream.reconfigure(errors=before)
        except (OSError, ValueError):  # a closed pipe fails the flush that comes first
            pass


@contextmanager
def output_stream(path: str | os.PathLike | None, stdout: TextIO):
    """The CSV's stream: standard output, or ``path`` as :func:`output_target` says."""
    if path is None:
        with _escaping(stdout) as stream:
            yield stream
        return
    target, aside = output_target(path)
    if not aside:
        with open_csv(target) as stream:
            yield stream
        return
    with atomic_path(target) as tmp, open_csv(tmp) as stream:
        yield stream


def is_stream_file(path: str | os.PathLike, stream: TextIO) -> bool:
    """Whether ``path`` is the file that ``stream`` writes to (``/dev/stdout``, ``/proc/self/fd/1``, or
    the file standard output was redirected to): then the CSV goes to the stream itself, which neither
    truncates a file opened for appending (``>>``) nor replaces it."""
    try:
        given, ours = os.stat(path), os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return (given.st_dev, given.st_ino) == (ours.st_dev, ours.st_ino)


def discard_rest(stream: TextIO) -> None:
    """After a broken pipe: point the stream's descriptor at /dev/null, so that flushing what is left
    in its buffer at exit neither fails nor prints "Exception ignored ... BrokenPipeError"
    (the recipe of the Python docs' note on SIGPIPE)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (e.g. a StringIO): nothing to flush at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def csv_field(value) -> str:
    return repr(value) if isinstance(value, float) else ("" if value is None else str(value))


def write_csv(header: list[str], rows: Iterable[list], stream: TextIO) -> None:
    """Rows as CSV on ``stream``; floats with ``repr`` (read back exactly), None as empty."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_field(value) for value in row] for row in rows)


def saliency_file(folder: Path, position: int, path: Path) -> Path:
    """Where ``--saliency`` puts the overlay of the ``position``-th input image (numbered, so two
    inputs of one name in different folders never share one)."""
    return folder / f"{position:06d}_{path.stem}.png"


def subjects_output(output: str | os.PathLike | None, subjects_file: str | os.PathLike | None = None) -> Path:
    """Where ``--by-subject`` writes its CSV: ``subjects_file`` (``--subjects-output``) when given,
    else beside ``-o`` when that is a regular file or does not exist yet (``predictions.csv`` ->
    ``predictions_subjects.csv``). A name is never derived from a device, FIFO or socket
    (``-o /dev/null`` would give ``/dev/null_subjects.csv``) nor from standard output:
    :class:`OutputError` asks for ``--subjects-output`` then."""
    if subjects_file is not None:
        return Path(subjects_file)
    if output is None:
        raise OutputError("--by-subject needs -o FILE (the subjects' CSV is written beside it, as "
                          "<FILE stem>_subjects.csv) or --subjects-output FILE")
    try:
        info = os.stat(output)
    except OSError:
        info = None  # missing (the file -o makes), or unreadable (the output guard names -o)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise OutputError(f"-o {printable(output)} is not a regular file (a {file_kind(info.st_mode)}), so no name for "
                          "the subjects' CSV is derived from it; give --by-subject's file with --subjects-output FILE")
    output = Path(output)
    return output.with_name(f"{output.stem}{SUBJECTS_SUFFIX}{output.suffix or '.csv'}")
