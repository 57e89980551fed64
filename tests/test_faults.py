"""Faults as a user meets them: a training killed mid-way, a trial that fails, a rerun with the same seed."""

from __future__ import annotations

import copy
import os
import re
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forked_snakemake import run_snakemake
from test_workflow import SNAKEFILE, SNAKEMAKE_MODULE, TINY, planned_jobs, snakemake

pytestmark = pytest.mark.workflow
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+):", flags=re.M)
TIMING_COLUMNS = ["train_seconds", "predict_seconds", "images_per_second"]


def epochs_logged(log: Path) -> list[int]:
    return [int(m[1]) for m in EPOCH_LINE.finditer(log.read_text())] if log.exists() else []


def full_run(workdir: Path) -> list[str]:
    """snakemake's arguments for the full run of the workflow in ``workdir`` on its config.yaml."""
    return [*SNAKEFILE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
            "--cores", "2", "--resources", "gpu=1"]


def kill_a_training_mid_way(tmp_path: Path, config: dict) -> tuple[list[str], Path]:
    """Start the workflow and SIGKILL it once 3 epochs are logged; returns its arguments and the training log."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    arguments = full_run(tmp_path)
    run = subprocess.Popen([*SNAKEMAKE_MODULE, *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)  # a process group of its own, killed whole
    logs = tmp_path / "results/logs/train"
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline and run.poll() is None:
            log = next(logs.rglob("*.log"), None) if logs.exists() else None
            if log is not None and len(epochs_logged(log)) >= 3:
                break
            time.sleep(0.05)
        assert run.poll() is None, "the run ended before the training could be killed"
        os.killpg(run.pid, signal.SIGKILL)  # snakemake and the training script it started, no clean-up
    finally:
        run.wait(timeout=60)
    finished_before = epochs_logged(log)
    assert finished_before and max(finished_before) < config["grid"]["epochs"][0]
    assert not list(tmp_path.glob("results/trials/**/model.keras"))
    return arguments, log


def trial_of(log: Path, workdir: Path) -> Path:
    """The trial folder (relative to ``workdir``) of a training's log."""
    return Path("results/trials") / log.relative_to(workdir / "results/logs/train").with_suffix("")


def rerun_incomplete(arguments: list[str], *targets: str) -> None:
    """What a user does after a crash: release snakemake's lock, then rerun what was left incomplete."""
    assert run_snakemake([*arguments, "--unlock"], timeout=120).returncode == 0
    result = run_snakemake([*arguments, "--rerun-incomplete", *targets])
    assert result.returncode == 0, result.stderr[-3000:]


KILLED_EPOCHS = 10  # the killed training's length: room for the kill after 3 epochs, and for the resumed ones


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """The tiny workflow with one 10-epoch abed_cnn trial, SIGKILLed mid-training: each test resumes a copy."""
    workdir = tmp_path_factory.mktemp("killed_run")
    config = copy.deepcopy(TINY)
    config["grid"].update(model=["abed_cnn"], epochs=[KILLED_EPOCHS])
    _, log = kill_a_training_mid_way(workdir, config)
    return workdir, config, log.relative_to(workdir)


def copy_of(killed_run, tmp_path: Path) -> tuple[list[str], Path, dict]:
    """A copy of the killed run in ``tmp_path`` (times kept, .snakemake too): its snakemake arguments, its
    training log and its config."""
    workdir, config, log = killed_run
    shutil.copytree(workdir, tmp_path, symlinks=True, dirs_exist_ok=True)
    return full_run(tmp_path), tmp_path / log, copy.deepcopy(config)


def test_a_training_killed_with_sigkill_resumes_from_its_last_finished_epoch(killed_run, tmp_path):
    arguments, log, _ = copy_of(killed_run, tmp_path)
    finished_before = epochs_logged(log)
    trial = trial_of(log, tmp_path)
    rerun_incomplete(arguments, str(trial / "history.csv"))  # the training only: evaluation and report add nothing here
    resumed = epochs_logged(log)
    # Keras backs an epoch up after it is logged: a kill in between repeats that one epoch, no more
    assert max(finished_before) <= resumed[0] <= max(finished_before) + 1, (finished_before, resumed)
    assert resumed[-1] == KILLED_EPOCHS
    history = pd.read_csv(tmp_path / trial / "history.csv")
    assert history["epoch"].tolist() == list(range(KILLED_EPOCHS))


def test_a_killed_training_rerun_on_another_split_starts_at_epoch_1(killed_run, tmp_path):
    arguments, log, config = copy_of(killed_run, tmp_path)
    config["split"]["seed"] = 1  # the same trial folder, a store with other images in each split
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    trial = trial_of(log, tmp_path)
    rerun_incomplete(arguments, str(trial / "history.csv"))  # the training only: evaluation and report add nothing here
    assert epochs_logged(log) == list(range(1, KILLED_EPOCHS + 1))  # nothing of the backup, trained on the old split, was used
    set_aside = [line for line in log.read_text().splitlines() if "set aside" in line]
    assert len(set_aside) == 1 and "store content" in set_aside[0], set_aside
    assert len(list((tmp_path / trial).glob(".train_backup.discarded-*"))) == 1
    history = pd.read_csv(tmp_path / trial / "history.csv")
    assert history["epoch"].tolist() == list(range(KILLED_EPOCHS))


def test_a_failing_trial_does_not_stop_the_others_and_a_rerun_runs_only_it(tmp_path):
    config = copy.deepcopy(TINY)
    config["grid"].update(model=["abed_cnn"], size=[32, 48])  # one trial per size: one that fails, one that does not
    stores = ["results/synthetic/store/subject/balanced/32px.parquet", "results/synthetic/store/subject/balanced/48px.parquet"]
    built = snakemake(tmp_path, config, "--cores", "2", *stores)  # options first: --configfile takes several values
    assert built.returncode == 0, built.stderr[-3000:]
    corrupt = tmp_path / stores[1]
    stamp = corrupt.stat()
    corrupt.write_bytes(b"not a parquet file")
    os.utime(corrupt, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # looks finished to snakemake, fails when read

    failed = snakemake(tmp_path, config, "--cores", "2", "--resources", "gpu=1", "--keep-going")
    assert failed.returncode != 0
    evaluated = sorted(p.parent.name for p in tmp_path.glob("results/trials/**/metrics.json"))
    assert len(evaluated) == 1 and all("size~32" in str(p) for p in tmp_path.glob("results/trials/**/metrics.json"))
    assert "Error in rule train" in failed.stderr and "size~48" in failed.stderr

    corrupt.unlink()  # what a user does once the cause is found: remove the bad file
    plan = planned_jobs(snakemake(tmp_path, config, "-n"))
    assert plan["store"] == 1 and plan["train"] == 1 and plan["evaluate"] == 1  # the 48 px trial only
    assert plan["aggregate"] == 1


def test_the_same_seed_on_one_core_and_on_two_gives_identical_splits_and_metrics(tmp_path):
    config = copy.deepcopy(TINY)
    config["grid"].update(model=["abed_cnn"])
    config["evaluation"] = {**config["evaluation"], "saliency": "none"}  # the seeded steps, not a second TensorFlow job
    config["classical"] = {"dataset": ["synthetic"], "variant": ["balanced"], "size": [32], "features": ["hog_pca"],
                           "classifier": ["rf"], "seed": [0]}
    runs = [tmp_path / "first", tmp_path / "second"]
    with ThreadPoolExecutor(max_workers=2) as pool:  # side by side, on one core and on two: the same numbers
        for workdir in runs:
            workdir.mkdir()
        results = list(pool.map(lambda run: snakemake(run[0], config, "--resources", "gpu=1", "--cores", run[1],
                                                      "results/report/metrics.csv"), zip(runs, ("1", "2"))))
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    first, second = (pd.read_parquet(w / "results/synthetic/splits/subject.parquet") for w in runs)
    pd.testing.assert_frame_equal(first, second)
    first, second = (pd.read_csv(w / "results/report/metrics.csv").drop(columns=[*TIMING_COLUMNS, "trial"]) for w in runs)
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    for outputs in ("results/trials/**/predictions.parquet", "results/classical/**/predictions.parquet"):
        pd.testing.assert_frame_equal(*(pd.read_parquet(next(w.glob(outputs))) for w in runs), check_exact=True)
