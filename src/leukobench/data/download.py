"""Fetch a raw dataset into ``resources/raw/<dataset>/``: from a URL, a local archive or a folder.

``fetch_dataset(source, dest, sha256)`` is the one entry point, called by the workflow's
``download`` rule with ``dest`` its ``directory()`` output. What Snakemake does is not repeated
here: it runs the rule only when ``dest`` is missing or out of date (the URL and sha256 are params),
removes ``dest`` before the job and after a failed one, and a killed job's ``dest`` is marked
incomplete and removed by ``--rerun-incomplete``. So ``dest`` is written in place, and a fetch that
fails part-way leaves its partial output to Snakemake.

Archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz; recognised by their content, not their
name) are unpacked as they are, keeping their top-level folder: the readers look for
``C-NMC_Leukemia/`` and the like below the root themselves. Unpacking is safe: absolute paths,
``..`` components and links that point outside the archive are refused, naming the member, on
the members' resolved paths; the unpacked size and the number of members are capped
(:class:`UnpackLimits`, config section ``download``) as members are written, and an archive
refused part-way leaves nothing in ``dest``. What a killed fetch left of our own naming
(``.leukobench-download``, ``.leukobench-unpack``) is removed at the next start.

Only the standard library is used, so that fetching works before any heavy dependency is set up.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import lzma
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from leukobench import __version__

# Inside dest, so that a killed download is removed with dest by Snakemake's --rerun-incomplete.
DOWNLOAD_NAME = ".leukobench-download"
DEFAULT_TIMEOUT_S = 60.0
CHUNK_BYTES = 1 << 20
PROGRESS_INTERVAL_S = 5.0
MEGABYTE = 1e6
URL_SCHEMES = ("http", "https")
USER_AGENT = f"leukobench/{__version__} (python-urllib)"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
HTML_SNIFF_BYTES = 512
# Errors that mean an archive cannot be read to its end. (bz2 reports a corrupt stream as a plain
# OSError without errno, while real I/O failures carry one: unpack_archive tells them apart.)
CORRUPT_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    gzip.BadGzipFile,
)


class FetchError(Exception):
    """A dataset could not be fetched; the message says which source, why, and what to do."""


class DownloadError(FetchError):
    """An HTTP error, a failed connection or a truncated transfer."""


class ChecksumError(FetchError, ValueError):
    """The fetched file's sha256 differs from the one in the config."""


class ArchiveError(FetchError, ValueError):
    """An archive is corrupt, of an unknown format, or holds a member that would land outside."""


# --------------------------------------------------------------------------- public API


def fetch_dataset(
    source: str | os.PathLike,
    dest: str | os.PathLike,
    sha256: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    link: bool = False,
    limits: UnpackLimits | None = None,
) -> Path:
    """Put the dataset at ``source`` into the folder ``dest``, which must not exist yet.

    Args:
        source: an http(s) URL of an archive, a local archive file, or a local folder.
        dest: the folder to create (its parent is created if needed); an existing one is refused.
        sha256: the expected sha256 of the archive (URL or local archive); checked when given.
        timeout: seconds to wait for the server to connect or to send the next bytes.
        link: for a local folder only: make ``dest`` a symlink to it instead of a copy.
        limits: the caps on what an archive unpacks to (default :class:`UnpackLimits`).

    Returns:
        ``dest`` as a Path.

    A local folder is copied by default, not linked: the workflow owns ``dest`` (Snakemake
    deletes an output before rerunning its rule, and later steps may write beside the data), so a
    copy guarantees the user's data is never changed, and the result stays valid if the original
    moves. ``link=True`` saves the disk space when the user accepts that trade.
    """
    dest = Path(dest)
    expected = _normalise_sha256(sha256)
    origin = _normalise_source(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_partial_dest(dest)
    if _is_url(origin):
        if link:
            raise ValueError(f"link=True applies to a local folder, not to the URL {origin}")
        _fetch_url(origin, dest, expected, timeout, limits)
    else:
        _fetch_local(Path(origin), dest, expected, link, limits)
    print(f"fetch {origin}: complete at {dest}", flush=True)
    return dest


# --------------------------------------------------------------------------- arguments


def _normalise_sha256(sha256: str | None) -> str | None:
    """Lower-case hex digest, or None; a malformed value fails before any work is done."""
    if sha256 is None:
        return None
    value = str(sha256).strip().lower()
    if not SHA256_PATTERN.fullmatch(value):
        raise ValueError(f"sha256 must be 64 hexadecimal characters, got {sha256!r}; fix it in config.yaml")
    return value


def _is_url(source: str) -> bool:
    """True for an http(s) URL."""
    return urllib.parse.urlsplit(source).scheme.lower() in URL_SCHEMES


def _normalise_source(source: str | os.PathLike) -> str:
    """The URL as given, or the local path made absolute (messages name one place)."""
    text = os.fspath(source)
    if _is_url(text):
        return text
    return str(Path(text).expanduser().resolve())


# --------------------------------------------------------------------------- progress


class _Progress:
    """Prints a progress line at most every ``PROGRESS_INTERVAL_S`` seconds, and a summary."""

    def __init__(self, label: str, total: int | None = None, unit: str = "bytes") -> None:
        """``total`` is the announced size (None if unknown); ``unit`` is "bytes" or "members"."""
        self.label, self.total, self.unit = label, total, unit
        self.done = 0
        self.start = self.last = time.monotonic()

    def add(self, amount: int) -> None:
        """Count ``amount`` more; print when the interval has passed."""
        self.done += amount
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            print(f"{self.label}: {self._amount()}, {self._rate(now)}", flush=True)

    def finish(self) -> None:
        """Print the final count, time and rate."""
        now = time.monotonic()
        print(f"{self.label}: {self._amount()} in {now - self.start:.1f} s, {self._rate(now)}", flush=True)

    def _amount(self) -> str:
        """e.g. "12.3 MB of 45.6 MB (27%)" or "120 members"."""
        if self.unit != "bytes":
            return f"{self.done} {self.unit}"
        text = f"{self.done / MEGABYTE:.1f} MB"
        if self.total:
            text += f" of {self.total / MEGABYTE:.1f} MB ({100 * self.done / self.total:.0f}%)"
        return text

    def _rate(self, now: float) -> str:
        """e.g. "4.2 MB/s"."""
        seconds = max(now - self.start, 1e-9)
        if self.unit != "bytes":
            return f"{self.done / seconds:.0f} {self.unit}/s"
        return f"{self.done / MEGABYTE / seconds:.1f} MB/s"


# --------------------------------------------------------------------------- URL


def _remove_partial_dest(dest: Path) -> None:
    """A ``dest`` that holds only what a killed fetch left (:func:`remove_partial_files`) is removed,
    so the fetch starts afresh; any other ``dest`` is left for the fetch to refuse."""
    if dest.is_dir() and not dest.is_symlink() and {p.name for p in dest.iterdir()} <= {DOWNLOAD_NAME, UNPACK_STAGING}:
        remove_partial_files(dest)
        dest.rmdir()


def _fetch_url(url: str, dest: Path, expected: str | None, timeout: float, limits: UnpackLimits | None = None) -> None:
    """Download the archive at ``url`` into ``dest``, check it, unpack it there, then delete it."""
    dest.mkdir()
    archive = dest / DOWNLOAD_NAME
    max_bytes = (limits or UnpackLimits()).max_unpacked_bytes  # an archive is no larger than what it unpacks to
    _verify_sha256(url, expected, _download(url, archive, timeout, max_bytes=max_bytes), what="URL")
    _install_archive(archive, dest, url, limits)
    archive.unlink()  # on success; after a failure Snakemake removes dest, the archive with it


def download_file(url: str, target: str | os.PathLike, *, algorithm: str = "sha256",
                  timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """Stream ``url`` into the file ``target`` and return its hex digest by ``algorithm`` (a
    :mod:`hashlib` name: "sha256", or "md5" for Keras' older file hashes). An HTTP error, a failed
    connection or a truncated transfer raises DownloadError naming the URL; ``target`` is then
    partial, and the caller removes it (write it aside, e.g. with :func:`leukobench.io.atomic_path`)."""
    return _download(url, Path(target), timeout, algorithm)


def _download(url: str, target: Path, timeout: float, algorithm: str = "sha256", max_bytes: int | None = None) -> str:
    """Stream ``url`` into ``target`` in chunks, hashing while writing; return the digest (sha256 by default)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            announced = _content_length(response)
            if max_bytes is not None and announced is not None and announced > max_bytes:
                raise DownloadError(f"{url} announces {announced} bytes, more than an archive may unpack to "
                                    f"({max_bytes} bytes, download.max_unpacked_bytes); nothing was downloaded. "
                                    "If the archive is trusted, raise download.max_unpacked_bytes in config.yaml")
            digest, received = _copy_stream(url, response, target, announced, algorithm, max_bytes)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}; check the URL") from error
    except urllib.error.URLError as error:
        raise DownloadError(f"cannot download {url}: {error.reason}; check the URL and the network") from error
    except (http.client.HTTPException, TimeoutError, ConnectionError) as error:
        raise DownloadError(f"cannot download {url}: {error!r}; check the URL and the network") from error
    if announced is not None and received < announced:
        raise DownloadError(
            f"download of {url} was truncated: received {received} of the {announced} bytes announced; "
            "run again"
        )
    return digest


def _content_length(response: http.client.HTTPResponse) -> int | None:
    """The announced size in bytes, or None when the server does not say."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _copy_stream(url: str, response: Any, target: Path, announced: int | None,
                 algorithm: str = "sha256", max_bytes: int | None = None) -> tuple[str, int]:
    """Copy the response body into ``target``; return its digest (sha256 by default) and length."""
    digest = hashlib.new(algorithm)
    progress = _Progress(f"download {url}", announced)
    with open(target, "wb") as out:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except http.client.IncompleteRead as error:
                chunk = error.partial
                digest.update(chunk)
                out.write(chunk)
                progress.add(len(chunk))
                break
            if not chunk:
                break
            if max_bytes is not None and progress.done + len(chunk) > max_bytes:
                raise DownloadError(f"download of {url} passed {max_bytes} bytes, more than an archive may unpack "
                                    "to (download.max_unpacked_bytes); stopped. If the archive is trusted, raise "
                                    "download.max_unpacked_bytes in config.yaml")
            digest.update(chunk)
            out.write(chunk)
            progress.add(len(chunk))
    progress.finish()
    return digest.hexdigest(), progress.done


def _verify_sha256(source: str, expected: str | None, received: str, what: str) -> None:
    """Raise ChecksumError naming both hashes when they differ."""
    if expected is None or expected == received:
        return
    raise ChecksumError(
        f"checksum mismatch for {source}: expected sha256 {expected}, received sha256 {received}. "
        f"Check that the {what} points at the intended file; if the file changed on purpose, "
        f"update this dataset's sha256 in config.yaml to {received}."
    )


# --------------------------------------------------------------------------- local sources


def _fetch_local(source: Path, dest: Path, expected: str | None, link: bool,
                 limits: UnpackLimits | None = None) -> None:
    """Copy (or link) a local folder, or unpack a local archive, onto ``dest``."""
    if not source.exists():
        raise FileNotFoundError(f"dataset source {source} does not exist; fix the dataset's path in config.yaml")
    if source.is_dir():
        if expected is not None:
            raise ValueError(f"sha256 applies to an archive file, but {source} is a folder; remove sha256")
        _check_not_inside(source, dest)
        (_link_folder if link else _copy_folder)(source, dest)
        return
    if link:
        raise ValueError(f"link=True applies to a folder, but {source} is a file")
    if expected is not None:
        _verify_sha256(str(source), expected, _file_sha256(source), what="path")
    dest.mkdir()
    _install_archive(source, dest, str(source), limits)


def _check_not_inside(source: Path, dest: Path) -> None:
    """Refuse a dest inside the source folder (the copy would contain itself)."""
    parent = dest.parent.resolve()
    if parent == source or source in parent.parents:
        raise ValueError(f"cannot fetch {source} into {dest}: the destination lies inside the source folder")


def _copy_folder(source: Path, dest: Path) -> None:
    """Copy the folder, following links so that the copy stands alone."""
    print(f"fetch {source}: copying to {dest}", flush=True)
    shutil.copytree(source, dest)


def _link_folder(source: Path, dest: Path) -> None:
    """Make ``dest`` a symlink to the folder."""
    os.symlink(source, dest, target_is_directory=True)


def _file_sha256(path: Path) -> str:
    """sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- archives


@dataclass(frozen=True)
class UnpackLimits:
    """Caps on what one archive may unpack to, checked as its members are written (config section
    ``download``, keys of the same names). A real dataset stays far below them (C-NMC: about 12,000
    files and 8 GB; image archives compress a few times at most); a zip bomb meets one within
    seconds, and the unpacking stops there."""

    max_unpacked_bytes: int = 50 * 10**9  # 50 GB in all
    max_members: int = 1_000_000  # files, folders and links
    max_ratio: float = 250.0  # bytes unpacked per byte of the archive file

    def __post_init__(self) -> None:
        for name in ("max_unpacked_bytes", "max_members", "max_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"download.{name} must be > 0, got {getattr(self, name)!r}")


class _Budget:
    """What an archive has unpacked so far, against its :class:`UnpackLimits`."""

    def __init__(self, archive: Path, label: str, limits: UnpackLimits) -> None:
        self.label, self.limits = label, limits
        size = archive.stat().st_size
        self.max_bytes = min(limits.max_unpacked_bytes, int(limits.max_ratio * max(size, 1)))
        self.archive_size = size
        self.bytes = self.members = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ArchiveError(
                f"{self.label}: holds more than {self.limits.max_members} members (download.max_members), "
                f"stopped at {_shown(name)}; unpacking stopped and what it wrote removed. If the archive is "
                "trusted and really that large, raise download.max_members in config.yaml")

    def add(self, amount: int, name: str) -> None:
        self.bytes += amount
        if self.bytes <= self.max_bytes:
            return
        if self.max_bytes == self.limits.max_unpacked_bytes:
            cap = f"more than {self.limits.max_unpacked_bytes} bytes (download.max_unpacked_bytes)"
            key = "download.max_unpacked_bytes"
        else:
            cap = (f"more than {self.limits.max_ratio:g} times its own size of {self.archive_size} bytes "
                   "(download.max_ratio), as a zip bomb does")
            key = "download.max_ratio"
        raise ArchiveError(f"{self.label}: unpacks to {cap}, at member {_shown(name)}; unpacking stopped and "
                           f"what it wrote removed. If the archive is trusted, raise {key} in config.yaml")


def _shown(name: str, keep: int = 120) -> str:
    """A member name as messages show it: quoted, a very long one cut, with its length."""
    if len(name) <= keep:
        return repr(name)
    return f"{name[:keep]!r}... ({len(name)} characters)"


UNPACK_STAGING = ".leukobench-unpack"  # inside dest while an archive is unpacked; a kill leaves it, the next start removes it


def remove_partial_files(dest: Path) -> None:
    """Remove what a killed fetch into ``dest`` left of our own naming: the download and the
    unpacking folder. Nothing else in ``dest`` is touched."""
    for name in (DOWNLOAD_NAME, UNPACK_STAGING):
        path = dest / name
        if path.is_dir() and not path.is_symlink():
            print(f"removing {path}, left by a fetch that did not finish", flush=True)
            shutil.rmtree(path)
        elif os.path.lexists(path):
            print(f"removing {path}, left by a fetch that did not finish", flush=True)
            path.unlink()


def unpack_archive(archive: str | os.PathLike, dest: str | os.PathLike, label: str | None = None,
                   limits: UnpackLimits | None = None) -> None:
    """Unpack ``archive`` into the folder ``dest`` (made if missing): the one place an archive is
    checked, whatever its source (``label`` names it in messages; default its path). A corrupt or
    unsafe archive, or one beyond ``limits`` (default :class:`UnpackLimits`), is an ArchiveError, and
    nothing of it stays in ``dest``: members are unpacked into ``dest/.leukobench-unpack`` and moved
    up only once all are in; members are checked on their resolved paths as they are written."""
    limits = limits or UnpackLimits()
    archive, dest = Path(archive), Path(dest)
    label = str(archive) if label is None else label
    extract = _extractor(archive, label)
    staging = dest / UNPACK_STAGING
    if os.path.lexists(staging):  # left by a killed unpacking
        shutil.rmtree(staging) if staging.is_dir() and not staging.is_symlink() else staging.unlink()
    staging.mkdir(parents=True)
    try:
        try:
            extract(archive, staging, label, _Budget(archive, label, limits))
        except CORRUPT_ARCHIVE_ERRORS as error:
            raise _corrupt(label, archive, error) from error
        except NotImplementedError as error:
            raise ArchiveError(
                f"{label}: {error}; unpack the archive with another tool and point the dataset's "
                "path: at the folder"
            ) from error
        except OSError as error:
            if error.errno == errno.ENAMETOOLONG:
                raise ArchiveError(f"{label}: a member's name is too long for the file system "
                                   f"({error.strerror}: {_shown(str(error.filename or ''))}); refusing to unpack") from error
            if error.errno is not None:
                raise
            raise _corrupt(label, archive, error) from error
        for entry in staging.iterdir():
            if os.path.lexists(dest / entry.name):
                raise ArchiveError(f"{label}: member {entry.name!r} collides with {dest / entry.name}")
        for entry in staging.iterdir():
            os.replace(entry, dest / entry.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_install_archive = unpack_archive  # the name the fetches call it by


def _corrupt(label: str, archive: Path, error: BaseException) -> ArchiveError:
    """The error for an archive that cannot be read to the end."""
    return ArchiveError(f"archive {label} is corrupt: {error}. Fetch it again or check the source.")


def _extractor(archive: Path, label: str) -> Callable[[Path, Path, str, _Budget], None]:
    """The unpacking function for the archive's actual format (from its content, not its name)."""
    if zipfile.is_zipfile(archive):
        return _extract_zip
    if tarfile.is_tarfile(archive):
        return _extract_tar
    raise ArchiveError(
        f"{label} is not a readable zip or tar archive (.zip, .tar, .tar.gz, .tar.bz2, .tar.xz): it is "
        f"corrupt or of another format{_html_hint(archive)}. Check the source."
    )


def _html_hint(path: Path) -> str:
    """A hint when the file is an HTML page (a login or error page served instead of the data)."""
    with open(path, "rb") as handle:
        head = handle.read(HTML_SNIFF_BYTES).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return " (it is an HTML page: the server may require a login, or the link is not a direct download)"
    return ""


def _check_member_name(name: str, label: str) -> PurePosixPath:
    """Refuse absolute names and ``..`` components; return the name as a relative path."""
    parts = re.split(r"[/\\]", name)
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise ArchiveError(f"{label}: unsafe member {_shown(name)} has an absolute path; refusing to unpack")
    if ".." in parts:
        raise ArchiveError(f"{label}: unsafe member {_shown(name)} points outside the archive (..); refusing to unpack")
    return PurePosixPath(*[part for part in parts if part not in ("", ".")])


def _check_link_target(member: str, target: str, label: str) -> None:
    """Refuse a link whose target is absolute or climbs out of the archive root."""
    if target.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", target):
        raise ArchiveError(f"{label}: unsafe link member {_shown(member)} -> {_shown(target)} is absolute; refusing to unpack")
    resolved = os.path.normpath(os.path.join(os.path.dirname(member), target))
    if resolved == ".." or resolved.startswith(("../", "..\\")):
        raise ArchiveError(f"{label}: unsafe link member {_shown(member)} -> {_shown(target)} points outside; refusing to unpack")


def _check_length(path: Path, root: Path, member: str, label: str) -> None:
    """Refuse a member whose path the file system cannot hold (a name over NAME_MAX bytes, a path
    over PATH_MAX), before anything of it is written."""
    try:
        name_max, path_max = os.pathconf(root, "PC_NAME_MAX"), os.pathconf(root, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    parts = [os.fsencode(part) for part in path.relative_to(root).parts]
    if len(os.fsencode(path)) >= path_max or any(len(part) > name_max for part in parts):
        raise ArchiveError(f"{label}: member {_shown(member)} has a name too long for the file system "
                           f"({max(map(len, parts), default=0)} bytes in one component, at most {name_max}; "
                           f"{len(os.fsencode(path))} bytes in all, at most {path_max - 1}); refusing to unpack")


def _check_inside(path: Path, root: Path, member: str, label: str) -> None:
    """Refuse a member whose real location (``os.path.realpath``: after the links already unpacked,
    not by its text) is outside ``root``."""
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    if os.path.commonpath([real, real_root]) != real_root:
        raise ArchiveError(
            f"{label}: unsafe member {_shown(member)} would be written outside the archive; refusing to unpack"
        )


def _extract_zip(archive: Path, target: Path, label: str, budget: _Budget) -> None:
    """Unpack a zip after checking every member's name; each member is then checked on its resolved
    path and written in chunks against the budget; symlinks inside the archive stay links."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            _check_member_name(info.filename, label)
        progress = _Progress(f"unpack {label}", unit="members")
        for info in members:
            budget.member(info.filename)
            path = target / _check_member_name(info.filename, label)
            _check_length(path, target, info.filename, label)
            _check_inside(path, target, info.filename, label)
            if stat.S_ISLNK(info.external_attr >> 16):
                _extract_zip_link(zf, info, path, target, label)
            elif info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                _check_inside(path.parent, target, info.filename, label)  # the folders as created, links followed
                if os.path.lexists(path):
                    raise ArchiveError(f"{label}: member {_shown(info.filename)} collides with another member")
                with zf.open(info) as source, open(path, "xb") as out:
                    for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
                        budget.add(len(chunk), info.filename)
                        out.write(chunk)
            progress.add(1)
        progress.finish()


def _extract_zip_link(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, target: Path, label: str) -> None:
    """Recreate a symlink member at ``path`` (zipfile would write its target as a file) if it stays inside."""
    link_target = zf.read(info).decode("utf-8")
    _check_link_target(info.filename, link_target, label)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_inside(path.parent / link_target, target, f"{info.filename} -> {link_target}", label)
    try:
        os.symlink(link_target, path)
    except FileExistsError as error:
        raise ArchiveError(f"{label}: link member {_shown(info.filename)} collides with another member") from error


class _StrictTarInfo(tarfile.TarInfo):
    """A TarInfo whose reading fails on a damaged header after the first one.

    tarfile stops silently at such a header, as if the archive ended there: a corrupt archive
    would then pass as a complete, smaller dataset.
    """

    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        """Read the next header; raise ReadError if it is damaged rather than the end marker."""
        try:
            return super().fromtarfile(tarfile_)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as error:
            if tarfile_.offset == 0:
                raise
            raise tarfile.ReadError(f"damaged member header at byte {tarfile_.offset}: {error}") from error


def _extract_tar(archive: Path, target: Path, label: str, budget: _Budget) -> None:
    """Unpack a tar (any compression) in one pass, each member checked, then tarfile's "data" filter
    (which checks paths and link targets on their resolved paths), counted against the budget before
    it is written (a tar member's size is the number of bytes written).

    The rest of the stream is read after the last member so that gzip/bz2/xz verify their checksums.
    """
    progress = _Progress(f"unpack {label}", unit="members")

    def check(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        """Refuse unsafe names, then apply tarfile.data_filter (links, devices, modes), then the budget."""
        _check_member_name(member.name, label)
        if member.issym():
            _check_link_target(member.name, member.linkname, label)
        try:
            filtered = tarfile.data_filter(member, path)
        except tarfile.FilterError as error:
            raise ArchiveError(f"{label}: unsafe member {_shown(member.name)}: {error}; refusing to unpack") from error
        _check_length(Path(path) / _check_member_name(member.name, label), Path(path), member.name, label)
        _check_inside(Path(path) / member.name, Path(path), member.name, label)
        if member.islnk():
            _check_inside(Path(path) / member.linkname, Path(path), f"{member.name} -> {member.linkname}", label)
        budget.member(member.name)
        budget.add(member.size if member.isreg() else 0, member.name)
        progress.add(1)
        return filtered

    with tarfile.open(archive, "r:*", tarinfo=_StrictTarInfo) as tar:
        tar.extractall(target, filter=check)
        while tar.fileobj.read(CHUNK_BYTES):
            pass
    progress.finish()
