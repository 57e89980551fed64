"""Where Keras' ImageNet weights files are, and what they must hash to; no download here.

A transfer model with ``weights="imagenet"`` loads Keras' published file of its base (no top), e.g.
``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``, from a folder: Keras' cache
(:func:`keras_cache_dir`: ``$KERAS_HOME/models``, else ``~/.keras/models``) unless
:data:`WEIGHTS_DIR_ENV` names another. A training never downloads it: the workflow's local rule
``imagenet_weights`` fetches it first, on the machine that runs Snakemake (a SLURM login node has the
network, its compute nodes may not), with :func:`leukobench.models.weights_fetch.fetch_weights`, and
leaves a receipt that names the file; the training job reads the receipt (:func:`use_fetched`).

:data:`KERAS_FILE_HASHES` are the ``file_hash`` values Keras' own ``keras.applications`` pass to
``keras.utils.get_file`` for these files (md5 for the older applications, 32 hex digits; sha256,
64 hex digits, as Keras tells them apart: :func:`hash_algorithm`). ``tests/test_weights.py`` checks
them, the file names and the URLs against what the installed Keras would fetch.

Only the standard library is used: the training imports this module, and checking a config does too.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

#: Where Keras downloads its application weights from: ``<url><url_folder>/<file>``.
KERAS_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

#: Keras' ``file_hash`` of each ImageNet weights file (no top) a registered transfer model may load,
#: from keras/src/applications/<module>.py.
KERAS_FILE_HASHES = {
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5": "6d6bbae143d832006294945121d1f1fc",
    "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5": "253f8cb515780f3b799900260a226db6",
    "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5": "4d473c1dd8becc155b73f8504c6f6626",
    "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5": "b8c4d4c20dd625c148057b9ff1c1176b",
    "efficientnetv2-b0_notop.h5": "893217f2bb855e2983157299931e43ff",
}

#: The folder a training looks for ImageNet weights in before Keras' cache; :func:`use_fetched` sets
#: it in a training job to the folder the workflow fetched them into (``training.weights_folder``).
WEIGHTS_DIR_ENV = "LEUKOBENCH_WEIGHTS_DIR"

# Keras falls back to /tmp/.keras when its home is not writable.
KERAS_FALLBACK_DIR = Path("/tmp/.keras/models")

CHUNK_BYTES = 1 << 20


def keras_cache_dir() -> Path:
    """The folder Keras keeps downloaded application weights in: ``$KERAS_HOME/models``, else
    ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home).expanduser() / "models"


def weights_folder(folder: str | os.PathLike | None = None) -> Path:
    """The folder of the ImageNet weights files: ``folder`` when given (``~`` and ``$VARIABLES``
    expanded), else ``$LEUKOBENCH_WEIGHTS_DIR``, else Keras' cache (:func:`keras_cache_dir`)."""
    if folder is None or str(folder) == "":
        folder = os.environ.get(WEIGHTS_DIR_ENV) or None
    if folder is None:
        return keras_cache_dir()
    return Path(os.path.expandvars(os.fspath(folder))).expanduser()


def weights_url(url_folder: str, file_name: str, base_url: str = KERAS_WEIGHTS_URL) -> str:
    """The URL of a weights file: ``base_url`` (Keras' by default; a trailing ``/`` is added if
    missing) + the application's folder + the file name, as keras.applications build it."""
    return f"{base_url.rstrip('/')}/{url_folder}/{file_name}"


def keras_file_hash(file_name: str) -> str:
    """Keras' ``file_hash`` of the weights file ``file_name`` (KeyError naming the file if unknown)."""
    try:
        return KERAS_FILE_HASHES[file_name]
    except KeyError:
        raise KeyError(
            f"no Keras file hash is known for the ImageNet weights file '{file_name}'; add the file_hash "
            "that its keras.applications module passes to keras.utils.get_file to "
            "leukobench.models.weights.KERAS_FILE_HASHES"
        ) from None


def hash_algorithm(file_hash: str) -> str:
    """The algorithm of a Keras file hash, as ``keras.utils.get_file(hash_algorithm="auto")`` picks
    it: sha256 for 64 hex digits, md5 otherwise."""
    return "sha256" if len(file_hash) == 64 else "md5"


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """The hex digest of a file by ``algorithm`` ("md5" or "sha256"), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_message(file_name: str, folder: Path, url: str, model: str | None = None) -> str:
    """What a user reads when a weights file is not there: the file, the folder, the URL, what to do."""
    who = f"model '{model}' with weights='imagenet' needs" if model else "ImageNet weights need"
    return (
        f"{who} Keras' file '{file_name}' in the folder '{folder}', and it is not there. Either run "
        f"snakemake where there is network (its local rule imagenet_weights fetches {url} into that folder "
        "before any training job: on a SLURM cluster, the login node you submit from), or download it "
        f"elsewhere from {url} and put it in that folder by hand (training.weights_folder names the folder; "
        "by default Keras' cache, $KERAS_HOME/models, else ~/.keras/models). Or set training.weights to "
        "the path of a local .h5 weights file, or to null to train from scratch."
    )


def find_weights(file_name: str, folder: str | os.PathLike | None = None) -> Path | None:
    """The weights file ``file_name`` in :func:`weights_folder` (or Keras' /tmp fallback), or None."""
    for place in (weights_folder(folder), KERAS_FALLBACK_DIR):
        if (place / file_name).is_file():
            return place / file_name
    return None


def use_fetched(receipt: str | os.PathLike) -> Path:
    """In a training job: look for ImageNet weights in the folder of the file the workflow fetched
    (``receipt``, the output of rule imagenet_weights) first, by setting :data:`WEIGHTS_DIR_ENV` for
    this process. Returns the file; FileNotFoundError if it has gone since it was fetched."""
    record = json.loads(Path(receipt).read_text())
    weights_file = Path(record["file"])
    if not weights_file.is_file():
        raise FileNotFoundError(
            f"{missing_message(weights_file.name, weights_file.parent, record['url'])} It was fetched "
            f"there before (receipt {receipt}); to fetch it again, delete {receipt} and run snakemake again."
        )
    os.environ[WEIGHTS_DIR_ENV] = str(weights_file.parent)
    print(f"ImageNet weights: {weights_file}", flush=True)
    return weights_file
