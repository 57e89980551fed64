"""Tests of leukobench.data.download against a real HTTP server on 127.0.0.1 and real archives."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import socket
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import write_image
from leukobench.data.download import (DOWNLOAD_NAME, UNPACK_STAGING, ArchiveError, ChecksumError, DownloadError,
                                       UnpackLimits, fetch_dataset, unpack_archive)

LOCALHOST = "127.0.0.1"
TAR_MODES = {"tar": "w", "tar.gz": "w:gz", "tgz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}
ARCHIVE_FORMATS = ("zip", *TAR_MODES)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.02  # how fast the server notices shutdown()


# --------------------------------------------------------------------------- building data


def make_tree(root: Path) -> Path:
    """A small dataset folder: BMP and PNG trials in the Kaggle C-NMC layout, plus a labels csv."""
    base = root / "C-NMC_Leukemia"
    write_image(base / "training_data" / "fold_0" / "all" / "UID_1_1_1_all.bmp", seed=1)
    write_image(base / "training_data" / "fold_0" / "hem" / "UID_H1_1_1_hem.bmp", seed=2)
    png = np.random.default_rng(3).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    (base / "validation_data").mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(base / "validation_data" / "trial.png"), png)
    (base / "validation_data" / "labels.csv").write_text("Patient_ID,new_names,labels\nH1,1.bmp,0\n")
    return root


def tree_files(root: Path) -> dict[str, bytes]:
    """Relative path -> content of every file below root."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_archive(tree: Path, out: Path, fmt: str) -> Path:
    """Pack the content of ``tree`` (keeping its top-level folders) as ``out`` in format ``fmt``."""
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    if fmt == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in files:
                zf.write(path, path.relative_to(tree).as_posix())
    else:
        with tarfile.open(out, TAR_MODES[fmt]) as tar:
            for path in files:
                tar.add(path, path.relative_to(tree).as_posix())
    return out


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def zip_with(members: dict[str, bytes], out: Path, links: dict[str, str] | None = None) -> Path:
    """A zip holding symlink members, then arbitrary (possibly unsafe) member names."""
    with zipfile.ZipFile(out, "w") as zf:
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return out


def tar_with(members: dict[str, bytes], out: Path, links: dict[str, str] | None = None) -> Path:
    """A tar.gz holding symlink members, then arbitrary (possibly unsafe) member names."""
    with tarfile.open(out, "w:gz") as tar:
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


# --------------------------------------------------------------------------- HTTP server


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, records each request; /truncated/<file> announces more bytes than it sends."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        """Record the request, then serve it."""
        self.server.requests.append(self.path)
        if self.path.startswith("/truncated/"):
            body = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(2 * len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keep the test output quiet."""


class Server:
    """A running ThreadingHTTPServer on 127.0.0.1 serving ``www``."""

    def __init__(self, www: Path) -> None:
        """Start serving in a background thread."""
        handler = functools.partial(CountingHandler, directory=str(www))
        self.httpd = http.server.ThreadingHTTPServer((LOCALHOST, 0), handler)
        self.httpd.requests = []
        self.www = www
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(POLL_INTERVAL_S,), daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list[str]:
        """Paths requested so far."""
        return self.httpd.requests

    def url(self, name: str) -> str:
        """The URL of a file served from www."""
        return f"http://{LOCALHOST}:{self.httpd.server_address[1]}/{name}"

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(TIMEOUT_S)


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A local HTTP server (no proxy in between) serving tmp_path/www."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    www = tmp_path / "www"
    www.mkdir()
    running = Server(www)
    yield running
    running.stop()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The dataset folder to pack and fetch."""
    return make_tree(tmp_path / "tree")


# --------------------------------------------------------------------------- URL sources


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_url_archive_is_unpacked(server: Server, tree: Path, tmp_path: Path, fmt: str) -> None:
    archive = make_archive(tree, server.www / f"data.{fmt}", fmt)
    dest = tmp_path / "raw" / "cnmc"
    result = fetch_dataset(server.url(archive.name), dest, sha256_of(archive), timeout=TIMEOUT_S)
    assert result == dest
    assert tree_files(dest) == tree_files(tree)  # and the downloaded archive is gone
    assert (dest / "C-NMC_Leukemia" / "training_data").is_dir()  # structure kept as in the archive


def test_checksum_mismatch_names_both_hashes_and_unpacks_nothing(server: Server, tree: Path, tmp_path: Path) -> None:
    archive = make_archive(tree, server.www / "data.zip", "zip")
    wrong = "0" * 64
    dest = tmp_path / "raw" / "cnmc"
    with pytest.raises(ChecksumError) as caught:
        fetch_dataset(server.url("data.zip"), dest, wrong, timeout=TIMEOUT_S)
    message = str(caught.value)
    assert wrong in message and sha256_of(archive) in message
    assert server.url("data.zip") in message and "sha256" in message and "config" in message
    assert isinstance(caught.value, ValueError)
    assert not (dest / "C-NMC_Leukemia").exists()


def test_malformed_sha256_fails_before_any_request(server: Server, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="64 hexadecimal"):
        fetch_dataset(server.url("data.zip"), tmp_path / "raw" / "x", "abc123", timeout=TIMEOUT_S)
    assert server.requests == []


def test_truncated_download_is_an_error(server: Server, tree: Path, tmp_path: Path) -> None:
    archive = make_archive(tree, server.www / "data.zip", "zip")
    dest = tmp_path / "raw" / "cnmc"
    url = server.url("truncated/data.zip")
    with pytest.raises(DownloadError) as caught:
        fetch_dataset(url, dest, timeout=TIMEOUT_S)
    message = str(caught.value)
    assert url in message and "truncated" in message
    assert str(archive.stat().st_size // 2) in message and str(2 * archive.stat().st_size) in message
    assert not (dest / "C-NMC_Leukemia").exists()


def test_http_404_is_a_download_error_naming_the_url(server: Server, tmp_path: Path) -> None:
    dest = tmp_path / "raw" / "cnmc"
    url = server.url("missing.zip")
    with pytest.raises(DownloadError, match="404") as caught:
        fetch_dataset(url, dest, timeout=TIMEOUT_S)
    assert url in str(caught.value)


def test_refused_connection_is_a_download_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as probe:  # a port that was free a moment ago, and nobody listens on
        probe.bind((LOCALHOST, 0))
        port = probe.getsockname()[1]
    url = f"http://{LOCALHOST}:{port}/data.zip"
    with pytest.raises(DownloadError, match=url):
        fetch_dataset(url, tmp_path / "raw" / "cnmc", timeout=TIMEOUT_S)


def test_corrupt_download_is_an_error(server: Server, tmp_path: Path) -> None:
    (server.www / "data.zip").write_bytes(b"PK\x03\x04 this is not really a zip" * 10)
    dest = tmp_path / "raw" / "cnmc"
    with pytest.raises(ArchiveError, match="data.zip"):
        fetch_dataset(server.url("data.zip"), dest, timeout=TIMEOUT_S)


def test_html_page_instead_of_archive_is_explained(server: Server, tmp_path: Path) -> None:
    (server.www / "data.zip").write_text("<!DOCTYPE html><html><body>Please sign in</body></html>")
    with pytest.raises(ArchiveError, match="HTML page"):
        fetch_dataset(server.url("data.zip"), tmp_path / "raw" / "cnmc", timeout=TIMEOUT_S)


# --------------------------------------------------------------------------- archive safety and corruption


@pytest.mark.parametrize("build", [zip_with, tar_with], ids=["zip", "tar.gz"])
@pytest.mark.parametrize("bad", ["../evil.txt", "/tmp/leukobench-abs-evil.txt", "ok/../../evil.txt"])
def test_member_outside_the_archive_is_refused(tmp_path: Path, build, bad: str) -> None:
    archive = build({"data/ok.txt": b"fine", bad: b"evil"}, tmp_path / "evil.archive")
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError) as caught:
        fetch_dataset(archive, dest)
    assert bad in str(caught.value)
    assert not list(tmp_path.rglob("evil.txt"))
    assert not Path("/tmp/leukobench-abs-evil.txt").exists()


@pytest.mark.parametrize("build", [zip_with, tar_with], ids=["zip", "tar.gz"])
@pytest.mark.parametrize("target", ["../../outside", "/etc"])
def test_link_pointing_outside_is_refused(tmp_path: Path, build, target: str) -> None:
    archive = build({"data/ok.txt": b"fine"}, tmp_path / "links.archive", links={"data/link": target})
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError, match="data/link"):
        fetch_dataset(archive, dest)
    assert not os.path.lexists(dest / "data" / "link")


def test_zip_link_chain_that_escapes_is_refused(tmp_path: Path) -> None:
    """Each link looks harmless by name; followed together they leave the archive."""
    archive = zip_with({"a/b/escape.txt": b"evil"}, tmp_path / "chain.zip", links={"a": ".", "a/b": ".."})
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError):
        fetch_dataset(archive, dest)
    assert not list(tmp_path.rglob("escape.txt"))


def test_links_inside_the_archive_are_kept(tmp_path: Path) -> None:
    archive = tar_with({"data/ok.txt": b"fine"}, tmp_path / "ok.tar.gz", links={"data/alias.txt": "ok.txt"})
    dest = fetch_dataset(archive, tmp_path / "raw" / "x")
    assert (dest / "data" / "alias.txt").is_symlink()
    assert (dest / "data" / "alias.txt").read_bytes() == b"fine"


def damage(path: Path, start: int, length: int = 64) -> None:
    """Flip bits of ``length`` bytes of the file from ``start`` on."""
    data = bytearray(path.read_bytes())
    data[start : start + length] = bytes(x ^ 0x5A for x in data[start : start + length])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.gz", "tar.bz2", "tar.xz"])
@pytest.mark.parametrize("where", [0.5, 0.9])
def test_corrupt_archive_is_an_error_naming_it(tree: Path, tmp_path: Path, fmt: str, where: float) -> None:
    archive = make_archive(tree, tmp_path / f"data.{fmt}", fmt)
    if fmt == "tar":  # no checksum over the data of a plain tar: damage a member's header instead
        with tarfile.open(archive) as tar:
            start = tar.getmembers()[int(where * 3)].offset
    else:
        start = int(archive.stat().st_size * where)
    damage(archive, start)
    dest = tmp_path / "raw" / "cnmc"
    with pytest.raises(ArchiveError) as caught:
        fetch_dataset(archive, dest)
    assert str(archive) in str(caught.value)


def test_file_that_is_no_archive_is_an_error(tmp_path: Path) -> None:
    source = tmp_path / "data.tar.gz"
    source.write_bytes(os.urandom(2048))
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError, match="not a readable zip or tar"):
        fetch_dataset(source, dest)


# --------------------------------------------------------------------------- local sources


@pytest.mark.parametrize("fmt", ARCHIVE_FORMATS)
def test_local_archive_is_unpacked(tree: Path, tmp_path: Path, fmt: str) -> None:
    archive = make_archive(tree, tmp_path / f"data.{fmt}", fmt)
    dest = fetch_dataset(archive, tmp_path / "raw" / "cnmc", sha256_of(archive))
    assert tree_files(dest) == tree_files(tree)
    assert archive.exists()  # the user's archive stays


def test_local_archive_checksum_mismatch(tree: Path, tmp_path: Path) -> None:
    archive = make_archive(tree, tmp_path / "data.zip", "zip")
    dest = tmp_path / "raw" / "cnmc"
    with pytest.raises(ChecksumError, match=sha256_of(archive)):
        fetch_dataset(archive, dest, "f" * 64)
    assert not dest.exists()


def test_local_folder_is_copied_and_left_unchanged(tree: Path, tmp_path: Path) -> None:
    before = tree_files(tree)
    dest = fetch_dataset(tree, tmp_path / "raw" / "cnmc")
    assert not dest.is_symlink()
    assert tree_files(dest) == before
    assert tree_files(tree) == before


def test_local_folder_can_be_linked(tree: Path, tmp_path: Path) -> None:
    dest = fetch_dataset(tree, tmp_path / "raw" / "cnmc", link=True)
    assert dest.is_symlink() and dest.resolve() == tree.resolve()


def test_missing_local_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        fetch_dataset(tmp_path / "nowhere", tmp_path / "raw" / "x")


def test_dest_inside_the_source_folder_is_refused(tree: Path) -> None:
    with pytest.raises(ValueError, match="inside the source"):
        fetch_dataset(tree, tree / "raw" / "x")


# --------------------------------------------------------------------------- bounds, resolved paths, partial files


def zip_of_zeros(out: Path, members: dict[str, int]) -> Path:
    """A zip whose members are runs of zeros of the given sizes: a zip bomb when they are large."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, size in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as member:
                for _ in range(size // (1 << 20)):
                    member.write(bytes(1 << 20))
                member.write(bytes(size % (1 << 20)))
    return out


def nothing_written(dest: Path) -> bool:
    """Nothing of a refused archive stays: no file, folder or link under ``dest`` (or no ``dest``)."""
    return not dest.exists() or not any(os.scandir(dest))


def test_a_zip_bomb_stops_early_naming_the_archive_the_cap_and_the_key(tmp_path: Path) -> None:
    # 200 MB of zeros in about 200 KB: each of its members alone is beyond 250 times the archive's size
    archive = zip_of_zeros(tmp_path / "bomb.zip", {"data/ok.txt": 10, **{f"data/zeros{i}.bin": 100_000_000 for i in range(2)}})
    assert archive.stat().st_size < 1_000_000
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError) as caught:
        fetch_dataset(archive, dest)
    message = str(caught.value)
    assert str(archive) in message and "download.max_ratio" in message and "250" in message
    assert "data/zeros0.bin" in message  # stopped at the first large member, not after it
    assert nothing_written(dest)


@pytest.mark.parametrize("build", [zip_with, tar_with], ids=["zip", "tar.gz"])
def test_the_unpacked_size_is_capped_as_members_are_written(tmp_path: Path, build) -> None:
    members = {f"data/{i}.bin": os.urandom(400_000) for i in range(5)}  # 2 MB that do not compress
    archive = build(members, tmp_path / "big.archive")
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError) as caught:
        fetch_dataset(archive, dest, limits=UnpackLimits(max_unpacked_bytes=1_000_000))
    message = str(caught.value)
    assert str(archive) in message and "1000000 bytes" in message and "download.max_unpacked_bytes" in message
    assert "data/2.bin" in message  # the member that crossed the cap: the third
    assert nothing_written(dest)
    assert tree_files(fetch_dataset(archive, tmp_path / "raw" / "y",
                                    limits=UnpackLimits(max_unpacked_bytes=2_000_000)))  # at the cap: unpacked


@pytest.mark.parametrize("build", [zip_with, tar_with], ids=["zip", "tar.gz"])
def test_the_number_of_members_is_capped(tmp_path: Path, build) -> None:
    archive = build({f"data/{i}.txt": b"x" for i in range(30)}, tmp_path / "many.archive")
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError) as caught:
        fetch_dataset(archive, dest, limits=UnpackLimits(max_members=10))
    assert str(archive) in str(caught.value) and "10 members" in str(caught.value)
    assert "download.max_members" in str(caught.value)
    assert nothing_written(dest)


def test_the_caps_reach_a_url_download(server: Server, tmp_path: Path) -> None:
    zip_with({f"data/{i}.txt": b"x" for i in range(30)}, server.www / "many.zip")
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError, match="download.max_members"):
        fetch_dataset(server.url("many.zip"), dest, timeout=TIMEOUT_S, limits=UnpackLimits(max_members=10))
    assert not dest.exists() or [p.name for p in dest.iterdir()] == [".leukobench-download"]  # Snakemake removes dest


LONG = 5000  # characters: beyond a file name's 255 bytes and a path's 4096


@pytest.mark.parametrize("build", [zip_with, tar_with], ids=["zip", "tar.gz"])
@pytest.mark.parametrize("name", [
    "data/" + "n" * LONG,  # one component too long for the file system
    "data/" + "d/" * (LONG // 2) + "f.txt",  # short components, a path too long
    "data/" + "d/" * (LONG // 2) + "../" * (LONG // 2 + 2) + "escape.txt",  # climbs out after a long descent
], ids=["long-component", "long-path", "long-escape"])
def test_very_long_member_names_are_refused_cleanly(tmp_path: Path, build, name: str) -> None:
    archive = build({"data/ok.txt": b"fine", name: b"long"}, tmp_path / "long.archive")
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError) as caught:
        fetch_dataset(archive, dest)
    message = str(caught.value)
    assert str(archive) in message and len(message) < 1000  # names the archive; the name is cut, not pasted whole
    assert nothing_written(dest) and not list(tmp_path.rglob("escape.txt"))


def tar_with_links(out: Path, members: dict[str, bytes], links: list[tuple[str, str, bytes]]) -> Path:
    """A tar.gz of files and links in the order given: (name, target, type) with type SYMTYPE or LNKTYPE."""
    with tarfile.open(out, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            tar.addfile(info)
    return out


@pytest.mark.parametrize("links", [
    [("data/hard", "../../outside.txt", tarfile.LNKTYPE)],  # a hard link to a file outside
    [("data/hard", "/etc/passwd", tarfile.LNKTYPE)],
    [("a", ".", tarfile.SYMTYPE), ("a/b", "..", tarfile.SYMTYPE), ("a/b/c", "../outside.txt", tarfile.LNKTYPE)],
    [("data/" + "d" * 200, "..", tarfile.SYMTYPE), ("data/" + "d" * 200 + "/x", "../outside.txt", tarfile.SYMTYPE)],
], ids=["hardlink-relative", "hardlink-absolute", "symlink-chain-then-hardlink", "symlink-long-name-chain"])
def test_links_that_resolve_outside_are_refused(tmp_path: Path, links) -> None:
    (tmp_path / "outside.txt").write_bytes(b"secret")
    archive = tar_with_links(tmp_path / "links.tar.gz", {"data/ok.txt": b"fine"}, links)
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError) as caught:
        fetch_dataset(archive, dest)
    assert str(archive) in str(caught.value)
    assert nothing_written(dest)
    assert (tmp_path / "outside.txt").read_bytes() == b"secret"


def test_links_that_stay_inside_are_kept(tmp_path: Path) -> None:
    archive = tar_with_links(tmp_path / "ok.tar.gz", {"data/ok.txt": b"fine"},
                             [("data/hard.txt", "data/ok.txt", tarfile.LNKTYPE), ("data/soft.txt", "ok.txt", tarfile.SYMTYPE)])
    dest = fetch_dataset(archive, tmp_path / "raw" / "x")
    assert (dest / "data" / "hard.txt").read_bytes() == b"fine" and (dest / "data" / "soft.txt").is_symlink()


def test_an_archive_refused_part_way_leaves_nothing_of_it(tmp_path: Path) -> None:
    """A tar is checked member by member as it is unpacked: the members before the bad one are removed."""
    archive = tar_with({"data/first.txt": b"written", "data/second.txt": b"written", "../evil.txt": b"evil"},
                       tmp_path / "late.tar.gz")
    dest = tmp_path / "raw" / "x"
    with pytest.raises(ArchiveError, match="evil"):
        fetch_dataset(archive, dest)
    assert nothing_written(dest) and not list(tmp_path.rglob("first.txt"))


def test_what_a_killed_fetch_left_is_removed_at_the_next_start(server: Server, tree: Path, tmp_path: Path) -> None:
    archive = make_archive(tree, server.www / "data.zip", "zip")
    dest = tmp_path / "raw" / "cnmc"
    (dest / UNPACK_STAGING / "C-NMC_Leukemia").mkdir(parents=True)  # killed while unpacking a download
    (dest / UNPACK_STAGING / "C-NMC_Leukemia" / "half.bmp").write_bytes(b"BM")
    (dest / DOWNLOAD_NAME).write_bytes(archive.read_bytes()[:100])
    fetch_dataset(server.url("data.zip"), dest, sha256_of(archive), timeout=TIMEOUT_S)
    assert tree_files(dest) == tree_files(tree)


def test_a_dest_with_other_files_is_not_emptied(tree: Path, tmp_path: Path) -> None:
    archive = make_archive(tree, tmp_path / "data.zip", "zip")
    dest = tmp_path / "raw" / "cnmc"
    dest.mkdir(parents=True)
    (dest / "mine.txt").write_text("the user's")
    (dest / DOWNLOAD_NAME).write_bytes(b"partial")
    with pytest.raises(FileExistsError):
        fetch_dataset(archive, dest)
    assert (dest / "mine.txt").read_text() == "the user's"


def test_the_unpacking_is_usable_on_its_own(tree: Path, tmp_path: Path) -> None:
    """Any source (a URL, a local archive, a mirror's download) unpacks through the one checked function."""
    archive = make_archive(tree, tmp_path / "data.tar.xz", "tar.xz")
    dest = tmp_path / "unpacked"
    dest.mkdir()
    unpack_archive(archive, dest, str(archive))
    assert tree_files(dest) == tree_files(tree)
    with pytest.raises(ArchiveError, match="download.max_members"):
        unpack_archive(archive, tmp_path / "again", str(archive), UnpackLimits(max_members=2))


def test_a_download_larger_than_the_unpacked_cap_is_stopped(server: Server, tmp_path: Path) -> None:
    (server.www / "big.zip").write_bytes(os.urandom(300_000))
    dest = tmp_path / "raw" / "x"
    with pytest.raises(DownloadError) as caught:
        fetch_dataset(server.url("big.zip"), dest, timeout=TIMEOUT_S, limits=UnpackLimits(max_unpacked_bytes=100_000))
    assert server.url("big.zip") in str(caught.value) and "download.max_unpacked_bytes" in str(caught.value)
