"""ImageNet weights fetched once, as Keras does, by the workflow's local rule imagenet_weights.

The fetch runs against a real HTTP server on 127.0.0.1 (tests/test_download.py's) serving made-up
weights files under Keras' names; the file hashes are those of the served bytes (md5 as most of
Keras' applications publish them, sha256 as the newer ones do). Keras' own hashes, names and URLs are
checked against what the installed Keras would fetch. The workflow is planned (dry runs), not run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

import leukobench.models as models
import leukobench.models.weights as weights
from leukobench.data.download import ChecksumError, DownloadError
from leukobench.models.weights_fetch import fetch_imagenet_weights, fetch_weights
from test_download import LOCALHOST, PROXY_VARIABLES, TIMEOUT_S, server  # noqa: F401 (server: the fixture)
from forked_snakemake import run_snakemake
from test_workflow import SNAKEFILE, SNAKEMAKE, TINY, planned_jobs

VGG16 = models.MODELS.attribute("vgg16", "application")
FNAME = VGG16.weights_file
PAYLOAD = os.urandom(50_000) + b"not really VGG16's weights"


def digest(data: bytes, algorithm: str) -> str:
    return hashlib.new(algorithm, data).hexdigest()


@pytest.fixture
def served(server):  # noqa: F811 (the fixture imported from test_download above)
    """The server, holding a weights file at Keras' place: <base>/vgg16/<file>."""
    (server.www / VGG16.url_folder).mkdir()
    (server.www / VGG16.url_folder / FNAME).write_bytes(PAYLOAD)
    server.base = server.url("")  # what training.weights_url would be
    server.file_url = weights.weights_url(VGG16.url_folder, FNAME, server.base)
    return server


@pytest.fixture
def offline_url(monkeypatch):
    """The URL of the file on a port nobody listens on: no network."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        port = probe.getsockname()[1]
    return weights.weights_url(VGG16.url_folder, FNAME, f"http://{LOCALHOST}:{port}/")


@pytest.fixture
def no_weights_env(monkeypatch, tmp_path):
    """Keras' cache in tmp_path, no folder named by the environment, no /tmp fallback."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv(weights.WEIGHTS_DIR_ENV, "")  # empty: unset; and undone after the test, as use_fetched sets it
    monkeypatch.setattr(weights, "KERAS_FALLBACK_DIR", tmp_path / "no_fallback")
    return tmp_path / "keras_home" / "models"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_fetched_once_then_a_cache_hit_without_a_request(served, tmp_path, algorithm):
    folder = tmp_path / "weights"
    path, fetched = fetch_weights(FNAME, served.file_url, digest(PAYLOAD, algorithm), folder, timeout=TIMEOUT_S)
    assert (path, fetched) == (folder / FNAME, True)
    assert path.read_bytes() == PAYLOAD and files_in(folder) == [FNAME]
    assert served.requests == [f"/{VGG16.url_folder}/{FNAME}"]
    again, fetched = fetch_weights(FNAME, served.file_url, digest(PAYLOAD, algorithm), folder, timeout=TIMEOUT_S)
    assert (again, fetched) == (path, False) and len(served.requests) == 1


def test_the_default_folder_is_keras_cache(served, no_weights_env):
    path, _ = fetch_weights(FNAME, served.file_url, digest(PAYLOAD, "md5"), timeout=TIMEOUT_S)
    assert path == no_weights_env / FNAME == weights.weights_folder() / models.MODELS.attribute("vgg16", "application").weights_file


def test_a_wrong_hash_names_both_and_leaves_nothing(served, tmp_path):
    folder = tmp_path / "weights"
    expected = "0" * 32
    with pytest.raises(ChecksumError) as caught:
        fetch_weights(FNAME, served.file_url, expected, folder, timeout=TIMEOUT_S)
    message = str(caught.value)
    assert expected in message and digest(PAYLOAD, "md5") in message
    assert FNAME in message and served.file_url in message
    assert files_in(folder) == []  # not the file, not its partial download


def test_a_cached_copy_with_another_hash_is_fetched_again(served, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / FNAME).write_bytes(PAYLOAD[:1000])  # a broken download of another tool
    path, fetched = fetch_weights(FNAME, served.file_url, digest(PAYLOAD, "md5"), folder, timeout=TIMEOUT_S)
    assert fetched and path.read_bytes() == PAYLOAD and len(served.requests) == 1


@pytest.mark.parametrize("cached", [False, True], ids=["downloaded", "cache-hit"])
def test_partial_downloads_a_killed_fetch_left_are_removed_at_the_next_start(served, tmp_path, cached):
    folder = tmp_path / "weights"
    folder.mkdir()
    partials = [folder / f".{FNAME}.k1ll3d{n}.h5" for n in range(2)]  # what atomic_path names them, cut by a kill
    for path in partials:
        path.write_bytes(PAYLOAD[:1000])
    (folder / "other.h5").write_bytes(b"not ours")  # and files of other names stay
    (folder / f".{FNAME}.notes").write_bytes(b"not a partial of ours: another suffix")
    if cached:
        (folder / FNAME).write_bytes(PAYLOAD)
    fetch_weights(FNAME, served.file_url, digest(PAYLOAD, "md5"), folder, timeout=TIMEOUT_S)
    assert files_in(folder) == sorted([FNAME, "other.h5", f".{FNAME}.notes"])
    assert len(served.requests) == (0 if cached else 1)


def test_offline_with_the_file_cached_works(offline_url, tmp_path):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / FNAME).write_bytes(PAYLOAD)
    receipt = tmp_path / "receipt.json"
    assert fetch_imagenet_weights(FNAME, offline_url, digest(PAYLOAD, "sha256"), folder, receipt,
                                  timeout=TIMEOUT_S) == folder / FNAME
    assert receipt.is_file()


def test_offline_without_the_file_names_file_folder_and_url(offline_url, tmp_path):
    folder = tmp_path / "weights"
    receipt = tmp_path / "receipt.json"
    with pytest.raises(DownloadError) as caught:
        fetch_imagenet_weights(FNAME, offline_url, digest(PAYLOAD, "md5"), folder, receipt, timeout=TIMEOUT_S)
    message = str(caught.value)
    assert FNAME in message and str(folder) in message and offline_url in message
    assert "by hand" in message and "network" in message  # what to do
    assert files_in(folder) == [] and not receipt.exists()


def test_a_training_reads_the_fetched_file_and_never_downloads(served, tmp_path, no_weights_env, monkeypatch):
    """Keras' cache is empty: the training finds the file in the folder the receipt names; without a
    receipt it raises, naming the file, the folder and the URL, and asks Keras for no download."""
    monkeypatch.setenv("LEUKOBENCH_ALLOW_DOWNLOAD", "1")  # the in-job download this replaced stays off
    with pytest.raises(FileNotFoundError) as caught:
        models.resolve_weights("vgg16", "imagenet")
    message = str(caught.value)
    assert FNAME in message and str(no_weights_env) in message
    assert weights.weights_url(VGG16.url_folder, FNAME) in message and "by hand" in message
    folder, receipt = tmp_path / "configured", tmp_path / "receipt.json"
    fetch_imagenet_weights(FNAME, served.file_url, digest(PAYLOAD, "md5"), folder, receipt, timeout=TIMEOUT_S)
    assert weights.use_fetched(receipt) == folder / FNAME
    assert models.resolve_weights("vgg16", "imagenet") == str(folder / FNAME)
    (folder / FNAME).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(receipt))):
        weights.use_fetched(receipt)


@pytest.mark.parametrize("name", models.transfer_models())
def test_file_name_url_and_hash_are_those_keras_fetches(name, monkeypatch):
    """What the installed Keras passes to get_file for the model's base with ImageNet weights (the
    call is caught before any download)."""
    import keras
    from keras.src.utils import file_utils

    class Caught(Exception):
        pass

    calls = []

    def get_file(fname=None, origin=None, file_hash=None, **kwargs):
        calls.append((fname, origin, file_hash))
        raise Caught

    monkeypatch.setattr(file_utils, "get_file", get_file)
    application = models.MODELS.attribute(name, "application")
    with pytest.raises(Caught):
        getattr(keras.applications, application.cls)(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    assert calls == [(application.weights_file, weights.weights_url(application.url_folder, application.weights_file),
                      weights.keras_file_hash(application.weights_file))]


# --------------------------------------------------------------------------- the workflow's plan


def plan(workdir: Path, training: dict, *models_: str, seeds=(0,)) -> tuple[dict[str, int], str]:
    config = copy.deepcopy(TINY)
    config["grid"].update(model=list(models_), seed=list(seeds))
    config["training"] = training
    config.pop("published")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake([*SNAKEFILE, "--directory", workdir, "--configfile", workdir / "config.yaml", "-n"])
    return planned_jobs(result), result.stdout


def jobs_of(output: str, rule: str) -> list[str]:
    """The dry run's blocks of ``rule``'s jobs, in the order they are listed (the order they run)."""
    return [block for block in re.split(r"\n(?=(?:local)?rule \w+:)", output) if re.match(rf"(?:local)?rule {rule}:", block)]


@pytest.mark.slow
def test_imagenet_weights_are_fetched_by_a_local_rule_before_the_trainings(tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    jobs, output = plan(workdir, {"weights": "imagenet", "weights_folder": str(tmp_path / "w")},
                        "abed_cnn", "vgg16", seeds=(0, 1))
    assert jobs["imagenet_weights"] == 1 and jobs["train"] == 4  # two vgg16 trials, one file: fetched once
    receipt = f"resources/imagenet/{FNAME}.json"
    (fetch,) = jobs_of(output, "imagenet_weights")
    assert f"output: {receipt}" in fetch
    trains = jobs_of(output, "train")
    assert sum(receipt in block.split("\n    output:")[0] for block in trains) == 2  # the vgg16 trials' input
    assert all((receipt in block) == ("model=vgg16" in block) for block in trains)
    assert output.index(fetch) < min(output.index(block) for block in trains if receipt in block)
    assert not (tmp_path / "w").exists()  # planning fetches nothing
    # the rule runs on the machine that runs snakemake (a SLURM login node), not in a cluster job
    rules = (Path(SNAKEMAKE[-1]).parent / "workflow/rules/train.smk").read_text()
    block = re.search(r"^rule imagenet_weights:\n(.*?)\n\n", rules, flags=re.M | re.S)[1]
    assert "localrule: True" in block


@pytest.mark.slow
def test_no_fetch_without_imagenet_weights(tmp_path):
    jobs, output = plan(tmp_path, {"weights": None}, "abed_cnn", "vgg16")
    assert "imagenet_weights" not in jobs and jobs["train"] == 2 and "resources/imagenet" not in output
    jobs, output = plan(tmp_path, {"weights": "imagenet"}, "abed_cnn", "varol_cnn1")  # no transfer model
    assert "imagenet_weights" not in jobs and "resources/imagenet" not in output


def run_config(tmp_path: Path, served, payload: bytes) -> tuple[Path, Path, list[str], dict]:
    """A run of the tiny grid with vgg16, ImageNet weights fetched from the local server into a
    configured folder; Keras' hash of the file replaced by the served file's (tests/keras_hashes);
    Keras' own cache empty. Returns the run's folder, the weights folder, the command and its env."""
    workdir, folder = tmp_path / "run", tmp_path / "configured"
    workdir.mkdir()
    config = copy.deepcopy(TINY)
    config["grid"]["model"] = ["vgg16"]
    config["training"] = {"weights": "imagenet", "weights_url": served.base, "weights_folder": str(folder)}
    config.pop("published")
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "LEUKOBENCH_TEST_KERAS_HASHES": json.dumps({FNAME: digest(payload, "md5")}),
           "KERAS_HOME": str(tmp_path / "empty_keras_home"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent / "keras_hashes"),
                                                       os.environ.get("PYTHONPATH")]))}
    env.pop(weights.WEIGHTS_DIR_ENV, None)
    command = [*SNAKEMAKE, "--directory", str(workdir), "--cores", "2", "--resources", "gpu=1",
               "--configfile", str(workdir / "config.yaml")]
    return workdir, folder, command, env


@pytest.mark.slow
def test_a_real_run_fetches_the_file_once_and_then_reads_the_cache(served, tmp_path):
    """The rule itself, run by snakemake against the local server: fetched into the configured
    folder, checked, a receipt naming it; run again (receipt deleted), nothing is requested."""
    workdir, folder, command, env = run_config(tmp_path, served, PAYLOAD)
    receipt = workdir / "resources" / "imagenet" / f"{FNAME}.json"
    for run in (1, 2):
        result = subprocess.run([*command, "--until", "imagenet_weights"], capture_output=True, text=True,
                                timeout=300, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert (folder / FNAME).read_bytes() == PAYLOAD and files_in(folder) == [FNAME]
        assert json.loads(receipt.read_text())["file"] == str(folder / FNAME)
        assert served.requests == [f"/{VGG16.url_folder}/{FNAME}"]  # the second run requested nothing
        receipt.unlink()
    log = (workdir / "results" / "logs" / "imagenet_weights" / f"{FNAME}.log").read_text()
    assert "nothing to download" in log


@pytest.mark.workflow
def test_a_transfer_trial_trains_on_the_fetched_weights(served, tmp_path):
    """A real run up to the training: the file fetched into the configured folder (Keras' own cache
    stays empty) is the one the training job loads: its frozen base holds the served weights."""
    import h5py
    import keras
    import numpy as np
    from keras.src.legacy.saving import legacy_h5_format  # Keras' own format of the notop files

    donor = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    served_file = served.www / VGG16.url_folder / FNAME
    with h5py.File(served_file, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, donor)
    workdir, folder, command, env = run_config(tmp_path, served, served_file.read_bytes())
    result = subprocess.run([*command, "--until", "train"], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert files_in(folder) == [FNAME] and not (tmp_path / "empty_keras_home" / "models").exists()
    assert len(served.requests) == 1
    (model_file,) = (workdir / "results" / "trials").rglob("model.keras")
    assert "model~vgg16" in str(model_file)
    base = keras.saving.load_model(model_file).get_layer("base")
    for loaded, fetched in zip(base.get_weights(), donor.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, fetched)
    (log,) = (workdir / "results" / "logs" / "train").rglob("*.log")
    assert f"ImageNet weights: {folder / FNAME}" in log.read_text()
