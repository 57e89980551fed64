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
``..`` components and links that point outside the archive are refused, naming the member.

Only the standard library is used, so that fetching works before any heavy dependency is set up.
"""

from __future__ import annotations

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
# OSError without errno, while real I/O failures carry one: _install_archive tells them apart.)
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
) -> Path:
    """Put the dataset at ``source`` into the folder ``dest``, which must not exist yet.

    Args:
        source: an http(s) URL of an archive, a local archive file, or a local folder.
        dest: the folder to create (its parent is created if needed); an existing one is refused.
        sha256: the expected sha256 of the archive (URL or local archive); checked when given.
        timeout: seconds to wait for the server to connect or to send the next bytes.
        link: for a local folder only: make ``dest`` a symlink to it instead of a copy.

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
    if _is_url(origin):
        if link:
            raise ValueError(f"link=True applies to a local folder, not to the URL {origin}")
        _fetch_url(origin, dest, expected, timeout)
    else:
        _fetch_local(Path(origin), dest, expected, link)
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


def _fetch_url(url: str, dest: Path, expected: str | None, timeout: float) -> None:
    """Download the archive at ``url`` into ``dest``, check it, unpack it there, then delete it."""
    dest.mkdir()
    archive = dest / DOWNLOAD_NAME
    _verify_sha256(url, expected, _download(url, archive, timeout), what="URL")
    _install_archive(archive, dest, url)
    archive.unlink()  # on success; after a failure Snakemake removes dest, the archive with it


def download_file(url: str, target: str | os.PathLike, *, algorithm: str = "sha256",
                  timeout: float = DEFAULT_TIMEOUT_S) -> str:
    """Stream ``url`` into the file ``target`` and return its hex digest by ``algorithm`` (a
    :mod:`hashlib` name: "sha256", or "md5" for Keras' older file hashes). An HTTP error, a failed
    connection or a truncated transfer raises DownloadError naming the URL; ``target`` is then
    partial, and the caller removes it (write it aside, e.g. with :func:`leukobench.io.atomic_path`)."""
    return _download(url, Path(target), timeout, algorithm)


def _download(url: str, target: Path, timeout: float, algorithm: str = "sha256") -> str:
    """Stream ``url`` into ``target`` in chunks, hashing while writing; return the digest (sha256 by default)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            announced = _content_length(response)
            digest, received = _copy_stream(url, response, target, announced, algorithm)
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
                 algorithm: str = "sha256") -> tuple[str, int]:
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


def _fetch_local(source: Path, dest: Path, expected: str | None, link: bool) -> None:
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
    _install_archive(source, dest, str(source))


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


def _install_archive(archive: Path, dest: Path, label: str) -> None:
    """Unpack ``archive`` into the folder ``dest``; a corrupt or unsafe archive is an ArchiveError."""
    extract = _extractor(archive, label)
    try:
        extract(archive, dest, label)
    except CORRUPT_ARCHIVE_ERRORS as error:
        raise _corrupt(label, archive, error) from error
    except NotImplementedError as error:
        raise ArchiveError(
            f"{label}: {error}; unpack the archive with another tool and point the dataset's "
            "path: at the folder"
        ) from error
    except OSError as error:
        if error.errno is not None:
            raise
        raise _corrupt(label, archive, error) from error


def _corrupt(label: str, archive: Path, error: BaseException) -> ArchiveError:
    """The error for an archive that cannot be read to the end."""
    return ArchiveError(f"archive {label} is corrupt: {error}. Fetch it again or check the source.")


def _extractor(archive: Path, label: str) -> Callable[[Path, Path, str], None]:
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
        raise ArchiveError(f"{label}: unsafe member {name!r} has an absolute path; refusing to unpack")
    if ".." in parts:
        raise ArchiveError(f"{label}: unsafe member {name!r} points outside the archive (..); refusing to unpack")
    return PurePosixPath(*[part for part in parts if part not in ("", ".")])


def _check_link_target(member: str, target: str, label: str) -> None:
    """Refuse a link whose target is absolute or climbs out of the archive root."""
    if target.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", target):
        raise ArchiveError(f"{label}: unsafe link member {member!r} -> {target!r} is absolute; refusing to unpack")
    resolved = os.path.normpath(os.path.join(os.path.dirname(member), target))
    if resolved == ".." or resolved.startswith(("../", "..\\")):
        raise ArchiveError(f"{label}: unsafe link member {member!r} -> {target!r} points outside; refusing to unpack")


def _check_inside(path: Path, root: Path, member: str, label: str) -> None:
    """Refuse a member whose real location (after links already unpacked) is outside ``root``."""
    if not path.resolve().is_relative_to(root.resolve()):
        raise ArchiveError(
            f"{label}: unsafe member {member!r} would be written outside the archive; refusing to unpack"
        )


def _extract_zip(archive: Path, target: Path, label: str) -> None:
    """Unpack a zip after checking every member's name; symlinks inside the archive stay links."""
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for info in members:
            _check_member_name(info.filename, label)
        progress = _Progress(f"unpack {label}", unit="members")
        for info in members:
            path = target / _check_member_name(info.filename, label)
            _check_inside(path.parent, target, info.filename, label)
            if stat.S_ISLNK(info.external_attr >> 16):
                _extract_zip_link(zf, info, path, target, label)
            else:
                zf.extract(info, target)
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
        raise ArchiveError(f"{label}: link member {info.filename!r} collides with another member") from error


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


def _extract_tar(archive: Path, target: Path, label: str) -> None:
    """Unpack a tar (any compression) in one pass, each member checked, then tarfile's "data" filter.

    The rest of the stream is read after the last member so that gzip/bz2/xz verify their checksums.
    """
    progress = _Progress(f"unpack {label}", unit="members")

    def check(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        """Refuse unsafe names, then apply tarfile.data_filter (links, devices, modes)."""
        _check_member_name(member.name, label)
        if member.issym():
            _check_link_target(member.name, member.linkname, label)
        try:
            filtered = tarfile.data_filter(member, path)
        except tarfile.FilterError as error:
            raise ArchiveError(f"{label}: unsafe member {member.name!r}: {error}; refusing to unpack") from error
        progress.add(1)
        return filtered

    with tarfile.open(archive, "r:*", tarinfo=_StrictTarInfo) as tar:
        tar.extractall(target, filter=check)
        while tar.fileobj.read(CHUNK_BYTES):
            pass
    progress.finish()
