"""The workflow on a real SLURM cluster, through profiles/slurm as shipped.

A single-node cluster (tests/slurm/cluster.py: Debian's packages, installed when missing, with
accounting and a fake GPU) runs a tiny config; the same config runs locally through
profiles/gpu-workstation at the same time. The SLURM run must finish, give the local run's results,
and have run every non-local job as a SLURM job, the trainings with a GPU. Select with `-m slurm`;
skipped (with the reason) where SLURM cannot be installed: not root, no apt-get, no packages.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/slurm/cluster.py, tests/test_workflow.py

from slurm.cluster import TASK_PROLOG_TAG, Cluster, Unavailable, ensure_packages  # noqa: E402
from test_workflow import REPO, SNAKEMAKE, TINY  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]  # `-m "not workflow"` leaves it out too

# The tiny config with one model: every kind of job (ingest, store, a GPU training, evaluate) once.
CONFIG = copy.deepcopy(TINY)
CONFIG["grid"]["model"] = ["abed_cnn"]
TARGET = "results/report/metrics.csv"
SLURM_RULES = {"ingest", "store", "train", "saliency_best", "evaluate"}  # the rest are `localrule`s: they run beside snakemake
GPU_RULES = {"train", "saliency_best"}  # the jobs that run a Keras model (the chosen trials' Grad-CAM: evaluation.saliency chosen)
TIMING_COLUMNS = {"train_seconds", "predict_seconds", "images_per_second"}
# Hard bound of each run: snakemake never returns when the plugin loses its jobs (see tests/slurm/cluster.py).
RUN_TIMEOUT = 420
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (?P<id>\d+) \(log: (?P<log>\S+)\)\.")


def slurm_arguments(cluster: Cluster) -> list[str]:
    """The profile's default resources with the test cluster's partition and account (a list given on the
    command line replaces the profile's whole list), plus the logs the checks read. Its status checks as shipped:
    the first 20 s after a submission finds most of this run's jobs (10-20 s each) finished, where a first check
    after 2 s finds them at the third, 36 s after (the plugin waits 10 s longer each time none has finished)."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    resources = {**profile["default-resources"], "slurm_partition": cluster.partition, "slurm_account": cluster.account}
    return ["--profile", str(REPO / "profiles" / "slurm"),
            "--default-resources", *(f"{key}={value}" for key, value in resources.items()),
            "--slurm-keep-successful-logs",  # the checks below read each job's SLURM log
            "--verbose"]  # prints each sbatch call


def start(workdir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    """snakemake on CONFIG in ``workdir``, bounded by timeout(1), output in ``workdir``/snakemake.out."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    with open(workdir / "snakemake.out", "w") as out:
        return subprocess.Popen(
            ["timeout", "-k", "10", str(RUN_TIMEOUT), *SNAKEMAKE, "--directory", str(workdir),
             "--configfile", str(workdir / "config.yaml"), *args, TARGET],
            stdout=out, stderr=subprocess.STDOUT, env=env)


def finish(processes: dict[str, subprocess.Popen]) -> dict[str, dict]:
    """Wait for every run; its return code, output and seconds (from now) by name."""
    started, results = time.monotonic(), {}
    try:
        while len(results) < len(processes):
            for name, process in processes.items():
                if name not in results and process.poll() is not None:
                    workdir = Path(process.args[process.args.index("--directory") + 1])
                    results[name] = {"rc": process.returncode, "seconds": time.monotonic() - started, "dir": workdir,
                                     "out": (workdir / "snakemake.out").read_text(errors="replace")}
            assert time.monotonic() - started < RUN_TIMEOUT + 30, "timeout(1) did not end a run"
            time.sleep(0.5)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    started = time.monotonic()
    try:
        ensure_packages()
    except Unavailable as reason:
        pytest.skip(f"no SLURM cluster here: {reason}")
    installed = time.monotonic()
    cluster = Cluster(tmp_path_factory.mktemp("slurm-cluster"))
    cluster.start()  # a ClusterError (with every daemon's log) fails the tests, it does not skip them
    cluster.timings = {"packages": installed - started, "start": time.monotonic() - installed}
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The SLURM run and the local run, side by side (the SLURM run mostly waits for its jobs)."""
    root = tmp_path_factory.mktemp("runs")
    threads = str(cluster.cpus)  # the same cores for both runs (their jobs compute with COMPUTE_THREADS either way)
    return finish({
        "local": start(root / "local", "--profile", str(REPO / "profiles" / "gpu-workstation"), "--cores", threads),
        "slurm": start(root / "slurm", *slurm_arguments(cluster), "--max-threads", threads, env=cluster.env),
    })


def slurm_logs(workdir: Path) -> str:
    return "\n".join(f"---- {log}\n{log.read_text(errors='replace')[-1500:]}"
                     for log in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log")))


def submitted_jobs(runs) -> dict[str, dict]:
    """SLURM job id -> rule, log path and sbatch call, from the SLURM run's output."""
    jobs = {}
    calls = [line for line in runs["slurm"]["out"].splitlines() if line.startswith("sbatch call:")]
    for match in SUBMITTED.finditer(runs["slurm"]["out"]):
        log = Path(match["log"])
        rule = log.relative_to(runs["slurm"]["dir"] / ".snakemake" / "slurm_logs").parts[0].removeprefix("rule_")
        call = next((c for c in calls if f"{log.parent}/%j.log" in c), "")
        jobs[match["id"]] = {"rule": rule, "log": log, "call": call}
    return jobs


def test_the_workflow_finishes_on_slurm(runs, cluster, record_property):
    record_property("terminal_summary", (
        f"test_slurm: packages {cluster.timings['packages']:.0f} s, cluster up in {cluster.timings['start']:.0f} s, "
        f"SLURM run {runs['slurm']['seconds']:.0f} s, local run (alongside) {runs['local']['seconds']:.0f} s"))
    assert runs["slurm"]["rc"] == 0, (f"snakemake --profile profiles/slurm exited {runs['slurm']['rc']} "
                                      f"(124/137: killed after {RUN_TIMEOUT} s)\n{runs['slurm']['out'][-6000:]}\n"
                                      f"{slurm_logs(runs['slurm']['dir'])}\n{cluster.logs()}")
    assert (runs["slurm"]["dir"] / TARGET).exists()


def test_slurm_gives_the_results_of_a_local_run(runs):
    assert runs["local"]["rc"] == 0, runs["local"]["out"][-6000:]
    assert runs["slurm"]["rc"] == 0, "the SLURM run failed (see test_the_workflow_finishes_on_slurm)"
    local, slurm = (pd.read_csv(runs[name]["dir"] / TARGET) for name in ("local", "slurm"))
    assert len(local) == len(slurm) == 4  # val and test of one trial, each for its images and for its subjects
    columns = [c for c in local.columns if c not in TIMING_COLUMNS]  # timings differ from run to run
    numeric = [c for c in columns if local[c].dtype.kind in "fi"]
    assert local[[c for c in columns if c not in numeric]].equals(slurm[[c for c in columns if c not in numeric]])
    np.testing.assert_allclose(slurm[numeric].to_numpy(float), local[numeric].to_numpy(float), rtol=0, atol=1e-9,
                               equal_nan=True, err_msg=str(numeric))
    # Same seed, same threads: the same weights, so the same score for every image.
    local_dir, slurm_dir = runs["local"]["dir"], runs["slurm"]["dir"]
    trials = sorted(p.relative_to(local_dir) for p in (local_dir / "results" / "trials").rglob("predictions.parquet"))
    assert trials
    for trial in trials:
        a, b = (pd.read_parquet(folder / trial).sort_values("image_id", ignore_index=True) for folder in (local_dir, slurm_dir))
        assert a.drop(columns="score").equals(b.drop(columns="score")), trial
        np.testing.assert_allclose(b["score"], a["score"], rtol=0, atol=1e-6, err_msg=str(trial))
        history = trial.parent / "history.csv"
        pd.testing.assert_frame_equal(pd.read_csv(slurm_dir / history), pd.read_csv(local_dir / history))


def test_every_job_ran_as_a_slurm_job(runs, cluster, record_property):
    jobs = submitted_jobs(runs)
    accounted = {job["JobID"]: job for job in cluster.jobs()}
    record_property("terminal_summary", "test_slurm: SLURM jobs " + (", ".join(
        f"{job_id} ({job['rule']}, {accounted.get(job_id, {}).get('State', '?')} in "
        f"{accounted.get(job_id, {}).get('Elapsed', '?')})" for job_id, job in jobs.items()) or "none"))
    assert runs["slurm"]["rc"] == 0, "the SLURM run failed (see test_the_workflow_finishes_on_slurm)"
    assert {job["rule"] for job in jobs.values()} == SLURM_RULES, runs["slurm"]["out"][-4000:]
    for job_id, job in jobs.items():
        assert job["log"].name == f"{job_id}.log" and job["log"].exists(), job
        assert f"{TASK_PROLOG_TAG} job={job_id} " in job["log"].read_text(), f"job {job_id} did not run on the node"
        record = accounted.get(job_id)
        assert record, f"sacct does not list job {job_id}: {accounted}"
        assert record["State"] == "COMPLETED" and record["ExitCode"] == "0:0", record
        assert (record["Partition"], record["Account"]) == (cluster.partition, cluster.account), record
        assert record["Comment"].startswith(f"rule_{job['rule']}"), record


def test_trainings_ran_with_a_gpu_and_nothing_else_did(runs):
    assert runs["slurm"]["rc"] == 0, "the SLURM run failed (see test_the_workflow_finishes_on_slurm)"
    jobs = submitted_jobs(runs)
    assert any(job["rule"] in GPU_RULES for job in jobs.values())
    for job_id, job in jobs.items():
        gpu = job["rule"] in GPU_RULES
        assert job["call"], f"no sbatch call printed for job {job_id}"
        assert ("--gpus=1" in job["call"]) == gpu, job["call"]
        # the rule runs in step 0 (the plugin's srun); the TaskProlog printed what that step saw
        step = re.search(rf"{TASK_PROLOG_TAG} job={job_id} step=0 CUDA_VISIBLE_DEVICES=(\S+)", job["log"].read_text())
        assert step, f"job {job_id}: no step 0 in {job['log']}"
        assert step[1] == ("0" if gpu else "unset"), f"job {job_id} ({job['rule']}) saw CUDA_VISIBLE_DEVICES={step[1]}"


def test_gpu_jobs_are_accounted_with_their_gpu(runs, cluster):
    assert runs["slurm"]["rc"] == 0, "the SLURM run failed (see test_the_workflow_finishes_on_slurm)"
    accounted = {job["JobID"]: job for job in cluster.jobs()}
    for job_id, job in submitted_jobs(runs).items():
        tres = accounted[job_id]["AllocTRES"]
        assert ("gres/gpu=1" in tres) == (job["rule"] in GPU_RULES), (job_id, job["rule"], tres)
