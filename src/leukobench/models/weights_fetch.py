"""Fetch Keras' ImageNet weights file of a transfer model once, as ``keras.utils.get_file`` would.

Called by the workflow's local rule ``imagenet_weights`` (one job per file, on the machine that runs
Snakemake, before any training job that needs the file). The file goes into a folder
(``training.weights_folder``; by default Keras' cache, where Keras itself would put it), under
Keras' own name, and is checked against Keras' own hash (md5 or sha256,
:func:`leukobench.models.weights.hash_algorithm`):

* already there with the right hash: nothing is requested (a cache hit; works offline);
* there with another hash (a broken or outdated copy, as Keras says): fetched again;
* fetched: written aside (:func:`leukobench.io.atomic_path`), checked, then renamed onto its name,
  so the folder never holds a half-written or unchecked file under Keras' name. A fetch holds a lock
  on the folder (``flock``) while it writes there, and first removes the partial downloads of its
  file that a killed fetch left (``.<file>.<random>.h5``): under the lock none of them can be
  another fetch's. A hash that differs raises
  ChecksumError naming both hashes, the file and the URL; a failed download (no network) raises
  DownloadError naming the file, the folder and the URL, and what to do.

The HTTP transfer is :func:`leukobench.data.download.download_file`'s (the datasets' download).
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
from pathlib import Path

from leukobench.data.download import DEFAULT_TIMEOUT_S, ChecksumError, DownloadError, download_file
from leukobench.io import atomic_path
from leukobench.models.weights import (
    KERAS_WEIGHTS_URL,
    file_digest,
    hash_algorithm,
    missing_message,
    weights_folder,
)


def fetch_weights(file_name: str, url: str, file_hash: str, folder: str | os.PathLike | None = None, *,
                  timeout: float = DEFAULT_TIMEOUT_S) -> tuple[Path, bool]:
    """Put the weights file ``file_name`` from ``url`` into ``folder`` (default: Keras' cache, see
    :func:`leukobench.models.weights.weights_folder`) unless it is there with Keras' ``file_hash``.

    Returns:
        The file's path, and whether it was downloaded (False: a cache hit, nothing requested).

    Raises:
        ChecksumError: the download's hash is not ``file_hash`` (both named; nothing is kept).
        DownloadError: the file is not in the folder and cannot be downloaded (the message names
            the file, the folder and the URL, and what to do).
    """
    folder = weights_folder(folder)
    target = folder / file_name
    algorithm = hash_algorithm(file_hash)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = os.open(folder, os.O_RDONLY)
    except OSError:  # a folder that cannot be made: a download below says so and what to do
        return _fetch_locked(file_name, url, file_hash, folder, target, algorithm, timeout)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one fetch in the folder at a time, across processes; released at exit
        try:
            remove_partial_downloads(folder, file_name)
        except OSError:  # a read-only folder (a shared cache): nothing to remove, a cache hit still works
            pass
        return _fetch_locked(file_name, url, file_hash, folder, target, algorithm, timeout)
    finally:
        os.close(lock)


def partial_downloads(folder: Path, file_name: str) -> list[Path]:
    """The partial downloads of ``file_name`` in ``folder``: the temporary files of
    :func:`leukobench.io.atomic_path` (``.<file_name>.<random><suffix>``), never trusted."""
    suffix = Path(file_name).suffix
    return [path for path in folder.glob(f".{glob.escape(file_name)}.*")
            if path.name.endswith(suffix) and path.is_file()]


def remove_partial_downloads(folder: Path, file_name: str) -> None:
    """Remove what a killed download of ``file_name`` left in ``folder``; called under the folder's
    lock, so no other fetch is writing one."""
    for path in partial_downloads(folder, file_name):
        print(f"removing {path}, a partial download of {file_name} left by a fetch that did not finish", flush=True)
        path.unlink(missing_ok=True)


def _fetch_locked(file_name: str, url: str, file_hash: str, folder: Path, target: Path, algorithm: str,
                  timeout: float) -> tuple[Path, bool]:
    if target.is_file():
        found = file_digest(target, algorithm)
        if found == file_hash:
            print(f"{file_name}: already in {folder} with Keras' {algorithm} {file_hash}; nothing to download",
                  flush=True)
            return target, False
        print(f"{target}: {algorithm} {found} is not Keras' {file_hash} (an incomplete or outdated copy); "
              "downloading it again", flush=True)
    print(f"downloading {url} into {folder}", flush=True)
    try:
        with atomic_path(target) as partial:
            found = download_file(url, partial, algorithm=algorithm, timeout=timeout)
            if found != file_hash:
                raise ChecksumError(
                    f"checksum mismatch for the ImageNet weights file '{file_name}' downloaded from {url}: "
                    f"expected {algorithm} {file_hash} (Keras' file_hash), found {algorithm} {found}; "
                    f"nothing was written to {folder}. Check training.weights_url: it must serve Keras' "
                    f"published files (default {KERAS_WEIGHTS_URL})."
                )
    except DownloadError as error:
        raise DownloadError(f"{error}. {missing_message(file_name, folder, url)}") from error
    except OSError as error:  # the folder cannot be created or written
        raise OSError(f"cannot write the ImageNet weights file '{file_name}' into {folder}: {error}; "
                      "set training.weights_folder to a folder you can write") from error
    print(f"{file_name}: downloaded into {folder}, {algorithm} {file_hash} as Keras publishes it", flush=True)
    return target, True


def fetch_imagenet_weights(file_name: str, url: str, file_hash: str, folder: str | os.PathLike | None,
                           receipt: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT_S) -> Path:
    """The workflow's ``imagenet_weights`` job: :func:`fetch_weights`, then a receipt (JSON: the
    file's absolute path, URL, hash and algorithm) that every training job needing the file reads
    (:func:`leukobench.models.weights.use_fetched`). Returns the weights file."""
    weights_file, _ = fetch_weights(file_name, url, file_hash, folder, timeout=timeout)
    record = {"file": str(weights_file.resolve()), "url": url, "file_hash": file_hash,
              "algorithm": hash_algorithm(file_hash)}
    with atomic_path(receipt) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return weights_file
