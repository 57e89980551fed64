"""Fetch a Kaggle dataset (``datasets.<name>.kaggle: owner/dataset[/versions/N]``) through kagglehub.

``fetch_kaggle(handle, dest, receipt)`` is the one entry point, called by the workflow's local rule
``kaggle_fetch`` with ``dest`` and ``receipt`` its outputs. Every request to Kaggle goes through
Kaggle's own client (kagglehub and the kagglesdk under it, pinned in pyproject.toml): the same
credentials, endpoint, redirects and checksum (Kaggle's ``X-Goog-Hash`` MD5) as ``kagglehub``
itself. Only the unpacking is ours: the dataset's archive is unpacked with the checks of the ``url``
source (:func:`leukobench.data.download._install_archive`), not by kagglehub, and straight into
``dest``: no second copy in kagglehub's cache.

Credentials are read where Kaggle's tools read them (:func:`kagglehub.config.get_kaggle_credentials`):
``KAGGLE_API_TOKEN``, ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, or ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR``
(default ``~/.kaggle``). They are never written anywhere: not in the receipt, the log or a message.
The endpoint is kagglesdk's: ``KAGGLE_API_ENVIRONMENT`` (unset = api.kaggle.com; ``TEST`` =
``http://localhost:7777``, what the tests' stub serves).

The receipt (JSON) says what was fetched: the dataset, the version asked for (``latest`` or N) and
the version Kaggle served, the file count, bytes and a digest of the unpacked tree
(:func:`tree_digest`). It is written last: a fetch killed part-way leaves no receipt, and the
workflow never reads a tree without one. At every start the workflow compares each fetched tree's
file count and bytes with its receipt (:func:`receipt_problem`, offline).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from leukobench.data.download import DOWNLOAD_NAME, DownloadError, FetchError, _install_archive
from leukobench.io import atomic_path

HANDLE_PATTERN = r"[A-Za-z0-9_-]+/[A-Za-z0-9_.-]+(/versions/[1-9][0-9]*)?"  # the schema's, as kagglehub parses it
FOLDER = "resources/kaggle/{owner}/{slug}"  # one per Kaggle dataset, whichever config datasets read it
CREDENTIAL_WAYS = (
    "set the environment variables KAGGLE_USERNAME and KAGGLE_KEY, or put your kaggle.json in ~/.kaggle/ "
    "(or in the folder named by KAGGLE_CONFIG_DIR), or set KAGGLE_API_TOKEN; a token is made on kaggle.com "
    "under Settings > API > Create New Token. Or download the data yourself and set the dataset's path: instead"
)
HASH_CHUNK = 1 << 20
# Snakemake's marker in a directory() output, written after the job (so after the receipt): not the dataset's
SNAKEMAKE_MARKER = ".snakemake_timestamp"
HTTP_UNAUTHORIZED, HTTP_FORBIDDEN, HTTP_NOT_FOUND = 401, 403, 404
# Seconds to wait for Kaggle to connect, and for the next bytes of an answer (kagglehub's own bounds,
# kagglehub.clients.DEFAULT_CONNECT_TIMEOUT and DEFAULT_READ_TIMEOUT); a slow download that keeps sending is not cut.
KAGGLE_TIMEOUT_S = (5.0, 15.0)


class KaggleCredentialError(FetchError):
    """No Kaggle credentials were found, or Kaggle refused them."""


class KaggleNotFoundError(FetchError):
    """Kaggle has no such dataset or version."""


@dataclass(frozen=True)
class KaggleSource:
    """A Kaggle dataset as the config names it: ``owner/slug``, optionally ``/versions/N``."""

    owner: str
    slug: str
    version: int | None = None

    @classmethod
    def parse(cls, handle: str) -> KaggleSource:
        if not re.fullmatch(HANDLE_PATTERN, str(handle)):
            raise ValueError(f"{handle!r} is not a Kaggle dataset: write owner/dataset (e.g. mehradaria/leukemia), "
                             "optionally with /versions/N")
        owner, slug, *version = str(handle).split("/")
        return cls(owner, slug, int(version[1]) if version else None)

    @property
    def dataset(self) -> str:
        """``owner/slug``, without the version."""
        return f"{self.owner}/{self.slug}"

    @property
    def requested(self) -> str:
        """The version asked for: ``latest`` or the pinned number, as text (the fetch rule's param)."""
        return "latest" if self.version is None else str(self.version)

    @property
    def folder(self) -> str:
        """Where the workflow keeps it: :data:`FOLDER`."""
        return FOLDER.format(owner=self.owner, slug=self.slug)

    def __str__(self) -> str:
        return self.dataset if self.version is None else f"{self.dataset}/versions/{self.version}"


def version_param(handle: str, base: str | os.PathLike = ".") -> str:
    """The fetch rule's param, what reruns it when it changes: the version to fetch, ``latest`` or N.

    Read beside the receipt so that only another version reruns the fetch (and ingest and everything
    after it): a pin of the version already fetched keeps the param the fetch ran with, and an
    unpinned handle keeps the version fetched ("latest" is the current version at the first fetch,
    kept until a pin asks for another; :func:`current_versions` says when Kaggle has a newer one).
    Planning reads the receipt only: no network call."""
    source = KaggleSource.parse(handle)
    receipt = Path(base) / receipt_file(handle)
    if not receipt.exists():
        return source.requested
    content = json.loads(receipt.read_text())
    return content["requested"] if source.version in (None, content["version"]) else source.requested


def fetch_due(handle: str, base: str | os.PathLike = ".") -> bool:
    """Whether the fetch rule will ask Kaggle: nothing fetched yet (or the tree deleted since), or a pin
    of another version."""
    receipt = Path(base) / receipt_file(handle)
    if not (receipt.exists() and (Path(base) / files_folder(handle)).exists()):
        return True
    return version_param(handle, base) != json.loads(receipt.read_text())["requested"]


def handle_of(owner: str, slug: str, version: str) -> str:
    """The handle to fetch from the rule's wildcards and :func:`version_param`."""
    return f"{owner}/{slug}" if version == "latest" else f"{owner}/{slug}/versions/{version}"


def files_folder(handle: str) -> str:
    """The unpacked tree of the Kaggle dataset ``handle``: what the dataset's reader reads."""
    return f"{KaggleSource.parse(handle).folder}/files"


def receipt_file(handle: str) -> str:
    """The receipt of the Kaggle dataset ``handle``: written once its tree is complete."""
    return f"{KaggleSource.parse(handle).folder}/receipt.json"


# --------------------------------------------------------------------------- credentials


def _credentials():
    """Kaggle's credentials from where its tools read them, or None; a broken kaggle.json is a KaggleCredentialError."""
    from kagglehub.config import get_kaggle_credentials

    try:
        return get_kaggle_credentials()
    except ValueError as error:  # kagglehub names the file and what is wrong with it, never its content
        raise KaggleCredentialError(f"{error}; fix it, or {CREDENTIAL_WAYS}") from None


def credentials_problem(names: list[str], handle: str) -> str | None:
    """Why the Kaggle dataset ``handle`` of the config datasets ``names`` cannot be fetched for want of
    credentials (none found, or an unreadable kaggle.json), or None. Looks only: no network call."""
    where = ", ".join(f"datasets.{name}.kaggle" for name in names)
    try:
        found = _credentials()
    except KaggleCredentialError as error:
        return f"{where}: {handle} is to be fetched from Kaggle, but {error}"
    if found is None:
        return f"{where}: {handle} is to be fetched from Kaggle, but no Kaggle credentials were found: {CREDENTIAL_WAYS}"
    return None


@contextmanager
def _client(credentials):
    """kagglehub's client (:func:`kagglehub.clients.build_kaggle_client`), open, with two changes. Quiet:
    in kagglesdk's TEST environment that one prints every request's headers, the Authorization header
    among them. And every request bounded by KAGGLE_TIMEOUT_S: kagglesdk sends its requests without a
    timeout, so a connection that stalls (a dropped link, a proxy that holds it) would hold the fetch,
    and the workflow, forever; kagglehub's own requests use these bounds (its DEFAULT_CONNECT_TIMEOUT
    and DEFAULT_READ_TIMEOUT). A request that exceeds one fails as requests.Timeout or requests.ConnectionError."""
    from kagglehub.clients import get_response_processor, get_user_agent
    from kagglesdk.kaggle_client import KaggleClient
    from kagglesdk.kaggle_env import get_env
    from requests.adapters import HTTPAdapter

    class BoundedWaits(HTTPAdapter):
        def send(self, request, timeout=None, **kwargs):  # every send, redirects included: the session's
            return super().send(request, timeout=KAGGLE_TIMEOUT_S if timeout is None else timeout, **kwargs)

    with KaggleClient(env=get_env(), verbose=False, username=credentials.username, password=credentials.key,
                      api_token=credentials.api_key, user_agent=get_user_agent(),
                      response_processor=get_response_processor()) as client:
        session = client.http_client()._session  # kagglesdk's requests.Session, made on entering (pinned)
        for scheme in ("http://", "https://"):
            session.mount(scheme, BoundedWaits())
        yield client


# --------------------------------------------------------------------------- fetching


def fetch_kaggle(handle: str, dest: str | os.PathLike, receipt: str | os.PathLike, *,
                 names: list[str] | None = None) -> dict:
    """Download the Kaggle dataset ``handle`` (``owner/slug`` = its current version, or
    ``owner/slug/versions/N``), unpack it into the folder ``dest`` (which must not exist yet), and
    write ``receipt`` last. Returns the receipt. ``names``: the config datasets that read it, for messages.

    Raises KaggleCredentialError (none found, or refused: HTTP 401 / 403), KaggleNotFoundError
    (HTTP 404), DownloadError (a failed connection, a truncated or corrupt transfer) or ArchiveError;
    each names the dataset and what to do. After a failure ``dest`` may hold a partial download and no
    receipt: the workflow removes it (Snakemake deletes a failed job's outputs).
    """
    from kagglehub.exceptions import DataCorruptionError, KaggleApiHTTPError

    source = KaggleSource.parse(handle)
    label = f"Kaggle dataset {source}" + (f" (datasets.{', datasets.'.join(names)})" if names else "")
    dest, receipt = Path(dest), Path(receipt)
    if dest.exists():
        raise FileExistsError(f"{dest} exists: delete it (or run snakemake with --rerun-incomplete) and fetch again")
    credentials = _credentials()
    if credentials is None:
        raise KaggleCredentialError(f"{label}: no Kaggle credentials were found: {CREDENTIAL_WAYS}")
    version = source.version
    try:
        with _client(credentials) as client:
            if version is None:
                version = _current_version(client, source)
                print(f"{label}: its current version is {version}", flush=True)
            dest.mkdir(parents=True)
            archive = dest / DOWNLOAD_NAME
            _download(client, source, version, archive)
    except KaggleApiHTTPError as error:
        raise _http_error(label, source, version, error) from None
    except DataCorruptionError as error:
        raise DownloadError(f"{label}: the download is corrupt ({error.args[0].splitlines()[0]}); run again") from None
    except _network_errors() as error:
        raise DownloadError(f"{label}: the download failed ({type(error).__name__}: {error}); check the network "
                            "and run again") from None
    _install_archive(archive, dest, f"{label}, version {version}")
    archive.unlink()
    files, size, digest = tree_digest(dest)
    content = {"dataset": source.dataset, "requested": source.requested, "version": version, "files": files,
               "bytes": size, "sha256": digest, "fetched": datetime.now(UTC).isoformat(timespec="seconds")}
    with atomic_path(receipt) as tmp:
        Path(tmp).write_text(json.dumps(content, indent=2) + "\n")
    print(f"{label}: version {version}, {files} files ({size / 1e6:.1f} MB) in {dest}; receipt {receipt}", flush=True)
    return content


def current_versions(handles: list[str], base: str | os.PathLike = ".") -> list[str]:
    """One line per Kaggle dataset: the version fetched (its receipt) beside Kaggle's current one, and
    what to do when they differ. Asks Kaggle (credentials as for a fetch); changes nothing."""
    from kagglehub.exceptions import KaggleApiHTTPError

    credentials = _credentials()
    if credentials is None:
        raise KaggleCredentialError(f"no Kaggle credentials were found: {CREDENTIAL_WAYS}")
    lines = []
    with _client(credentials) as client:
        for handle in handles:
            source = KaggleSource.parse(handle)
            try:
                current = _current_version(client, source)
            except KaggleApiHTTPError as error:
                raise _http_error(f"Kaggle dataset {source.dataset}", source, None, error) from None
            except _network_errors() as error:
                raise DownloadError(f"Kaggle dataset {source.dataset}: Kaggle did not answer ({type(error).__name__}: "
                                    f"{error}); check the network and run again") from None
            receipt = Path(base) / receipt_file(handle)
            fetched = json.loads(receipt.read_text())["version"] if receipt.exists() else None
            if fetched is None:
                lines.append(f"{source.dataset}: not fetched yet; Kaggle's current version is {current}")
            elif fetched == current:
                lines.append(f"{source.dataset}: version {fetched} fetched, Kaggle's current one: up to date")
            else:
                lines.append(f"{source.dataset}: version {fetched} fetched, Kaggle's current one is {current}; to use "
                             f"it, write kaggle: {source.dataset}/versions/{current} (the fetch, ingest and "
                             "everything after them run again)")
    return lines


def _network_errors() -> tuple[type[Exception], ...]:
    """What requests raises for a connection that fails, stalls past KAGGLE_TIMEOUT_S or breaks off."""
    import requests

    return requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError


def _current_version(client, source: KaggleSource) -> int:
    """The dataset's current version number, as kagglehub asks for it (kagglehub.http_resolver._get_current_version)."""
    from kagglehub.exceptions import handle_call
    from kagglehub.handle import DatasetHandle
    from kagglesdk.datasets.types.dataset_api_service import ApiGetDatasetRequest

    request = ApiGetDatasetRequest()
    request.owner_slug, request.dataset_slug = source.owner, source.slug
    dataset = handle_call(lambda: client.datasets.dataset_api_client.get_dataset(request),
                          DatasetHandle(source.owner, source.slug))
    return int(dataset.current_version_number)


def _download(client, source: KaggleSource, version: int, archive: Path) -> None:
    """The dataset's archive of ``version`` into the file ``archive``, as kagglehub downloads it
    (kagglehub.http_resolver.DatasetHttpResolver: the whole bundle, checked against Kaggle's MD5 when
    it sends one); a body shorter than announced is a DownloadError."""
    from kagglehub.clients import download_file
    from kagglehub.exceptions import handle_call
    from kagglehub.handle import DatasetHandle
    from kagglesdk.datasets.types.dataset_api_service import ApiDownloadDatasetRequest

    handle = DatasetHandle(source.owner, source.slug, version)
    request = ApiDownloadDatasetRequest()
    request.owner_slug, request.dataset_slug, request.dataset_version_number = source.owner, source.slug, version
    response = handle_call(lambda: client.datasets.dataset_api_client.download_dataset(request), handle)
    with response:
        announced = response.headers.get("Content-Length")
        download_file(response, str(archive), handle)
    received = archive.stat().st_size
    if announced is not None and received != int(announced):
        raise DownloadError(f"Kaggle dataset {handle}: the download was truncated: {received} of the {announced} "
                            "bytes announced; run again")


def _http_error(label: str, source: KaggleSource, version: int | None, error) -> FetchError:
    """The error for an HTTP error Kaggle answered (kagglehub's KaggleApiHTTPError)."""
    status = error.response.status_code if error.response is not None else None
    if status in (HTTP_UNAUTHORIZED, HTTP_FORBIDDEN):
        return KaggleCredentialError(
            f"{label}: Kaggle refused the credentials (HTTP {status}). Check them, and that your account may "
            f"download this dataset (some ask you to accept their terms on kaggle.com/datasets/{source.dataset}): "
            f"{CREDENTIAL_WAYS}")
    if status == HTTP_NOT_FOUND:
        what = f"version {version} of {source.dataset}" if version is not None else source.dataset
        return KaggleNotFoundError(f"{label}: Kaggle has no {what} (HTTP 404); check the owner, name and version "
                                   f"at kaggle.com/datasets/{source.dataset}")
    return DownloadError(f"{label}: Kaggle answered HTTP {status}; run again later")


# --------------------------------------------------------------------------- receipt


def tree_digest(root: str | os.PathLike) -> tuple[int, int, str]:
    """The file count, bytes and sha256 of a tree: of each file's relative path, size and sha256, in
    path order (a renamed, changed, added or removed file changes it; the files' times do not)."""
    root = Path(root)
    digest, files, size = hashlib.sha256(), 0, 0
    for path in _tree_files(root):
        content = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
                content.update(chunk)
        length = path.stat().st_size
        digest.update(f"{path.relative_to(root).as_posix()}\0{length}\0{content.hexdigest()}\n".encode())
        files, size = files + 1, size + length
    return files, size, digest.hexdigest()


def _tree_files(root: Path) -> list[Path]:
    """The files of a fetched tree, in path order, without Snakemake's marker at its root."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p != root / SNAKEMAKE_MARKER)


def tree_size(root: str | os.PathLike) -> tuple[int, int]:
    """The file count and bytes of a tree, from the file system's metadata alone (quick: no file is read)."""
    sizes = [p.stat().st_size for p in _tree_files(Path(root))]
    return len(sizes), sum(sizes)


def receipt_problem(handle: str, base: str | os.PathLike = ".") -> str | None:
    """Why the fetched tree of ``handle`` (below ``base``) cannot be trusted, or None: a tree without a
    tree whose file count or bytes differ from its receipt's. Quick (metadata only), so the workflow
    asks it at every start. No receipt is no problem here: nothing was fetched, or a fetch did not
    finish, and the fetch rule runs (again) before anything reads the tree (Snakemake removes a partial
    tree first, or asks for --rerun-incomplete when the fetch was killed)."""
    files, receipt = Path(base) / files_folder(handle), Path(base) / receipt_file(handle)
    if not (receipt.exists() and files.exists()):
        return None
    content = json.loads(receipt.read_text())
    found = tree_size(files)
    if found != (content["files"], content["bytes"]):
        return (f"{files} is not the tree its receipt describes (Kaggle {content['dataset']} version "
                f"{content['version']}: {content['files']} files, {content['bytes']} bytes; found {found[0]} files, "
                f"{found[1]} bytes): a file was changed, added or removed since the fetch. Delete {files.parent} "
                "and run again to fetch it anew")
    return None
