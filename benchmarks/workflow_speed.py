"""Seconds Snakemake takes to plan the workflow, each figure beside its target, in one run.

  preset dry run   snakemake -n --configfile presets/varol2024.yaml: plans the Varol preset
                   (324 Keras trainings, 648 hybrid fits; about 1,500 jobs);
  no-op dry run    snakemake -n after a complete default run: nothing to do;
  no-op run        snakemake --cores all --resources gpu=1 after a complete default run: nothing to do.

    python benchmarks/workflow_speed.py [--workdir DIR]   # a checkout with a finished default run (default: this one)
    python benchmarks/workflow_speed.py --tiny            # first makes a finished run in a temporary copy
    python benchmarks/workflow_speed.py --make-run [--reuse-venv]   # first times `make run` in a fresh clone

--tiny copies this working tree (without .git, .venv, results, resources) into a temporary folder,
writes its config.yaml as the default one with smaller synthetic data (10 cells per subject,
64 px), one epoch and 100 bootstrap resamples, and runs it to the end: the same jobs as the
default run (same grid, hybrid and classical cells), in 4 to 6 minutes on 2 cores. The copy's
src/ comes first on PYTHONPATH, so edits made in this checkout meanwhile do not change what is
measured.
--make-run clones the repository (`git clone`: committed files only) into a temporary folder and
times `make run` there, set-up included (a new .venv and pip install) unless --reuse-venv links
this checkout's .venv (the clone's src/ then comes first on PYTHONPATH); the no-op figures are
then measured in the clone. With --workdir, the checkout's src/ comes first on PYTHONPATH.

Each figure is the median of --repeats runs (all runs are printed) of wall-clock seconds; the CPU
seconds (user + system) of the same runs show how much of the wall time was waiting for the CPU
when the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PRESET = Path("presets") / "varol2024.yaml"
TARGET_SECONDS = 10.0
NOTHING = "Nothing to be done"
NOT_COPIED = (".git", ".venv", "results", "resources", ".snakemake", "__pycache__", "*.egg-info", ".pytest_cache")


class Checkout:
    """Where snakemake runs: a folder with a Snakefile, and the python and environment to run it with."""

    def __init__(self, folder: Path, python: str = sys.executable, src: Path | None = None):
        self.folder, self.python, self.env = folder, python, dict(os.environ)
        if src is not None:  # this folder's package before the one installed in the (shared) .venv
            self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), self.env.get("PYTHONPATH")]))

    def snakemake(self, *args: str) -> tuple[float, float, str]:
        """Wall seconds, CPU seconds and output of one snakemake command; stops the benchmark if it fails."""
        command = [self.python, "-m", "snakemake", *args]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(command, cwd=self.folder, capture_output=True, text=True, env=self.env)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        output = result.stdout + result.stderr
        if result.returncode != 0:
            sys.exit(f"failed ({result.returncode}) in {self.folder}: {' '.join(command)}\n{output[-3000:]}")
        return seconds, cpu, output


def planned_jobs(output: str) -> dict[str, int]:
    """The job counts of a dry run's 'Job stats' table."""
    table = output.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in output else ""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def measure(checkout: Checkout, label: str, args: list[str], repeats: int, check=None, note: str = "") -> None:
    """Run one command ``repeats`` times and print the median wall time beside the target."""
    walls, cpus, output = [], [], ""
    for _ in range(repeats):
        wall, cpu, output = checkout.snakemake(*args)
        walls.append(wall)
        cpus.append(cpu)
        if check:
            check(output)
    median = statistics.median(walls)
    verdict = "ok" if median <= TARGET_SECONDS else "OVER"
    print(f"{label:<15} {median:6.2f} s  target <= {TARGET_SECONDS:.0f} s: {verdict:<4}  "
          f"runs {', '.join(f'{s:.2f}' for s in walls)} s, cpu {', '.join(f'{s:.2f}' for s in cpus)} s  "
          f"{note(output) if callable(note) else note}", flush=True)


def tiny_copy(scratch: Path) -> Checkout:
    """A copy of this working tree with a tiny default config, run to the end."""
    folder = scratch / "leukobench"
    shutil.copytree(REPO, folder, ignore=shutil.ignore_patterns(*NOT_COPIED))
    config = yaml.safe_load((folder / "config.yaml").read_text())
    for dataset in config["datasets"].values():
        if dataset.get("format") == "synthetic":
            dataset["synthetic"].update(cells_per_subject=10, image_size=64)
    config["grid"]["epochs"] = [1]
    config.setdefault("evaluation", {})["bootstrap"] = 100
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    checkout = Checkout(folder, src=folder / "src")
    seconds, _, output = checkout.snakemake("--cores", "all", "--resources", "gpu=1")
    jobs = re.findall(r"(\d+) of (\d+) steps \(100%\) done", output)
    print(f"tiny run        {seconds:6.1f} s  (set-up, not a target; {jobs[-1][1] if jobs else '?'} jobs) "
          f"in {folder}", flush=True)
    return checkout


def make_run(scratch: Path, reuse_venv: bool) -> Checkout:
    """A fresh clone of the repository, where `make run` is timed."""
    clone = scratch / "leukobench"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    checkout = Checkout(clone, python=str(clone / ".venv" / "bin" / "python"),
                        src=clone / "src" if reuse_venv else None)
    make = ["make", "run"]
    if reuse_venv:
        (clone / ".venv").symlink_to(REPO / ".venv")
        make += ["-o", ".venv/bin/snakemake"]  # the clone's pyproject.toml is newer: never pip install into this .venv
    started = time.perf_counter()
    result = subprocess.run(make, cwd=clone, capture_output=True, text=True, env=checkout.env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"make run failed ({result.returncode}) in {clone}\n{(result.stdout + result.stderr)[-3000:]}")
    what = "set-up skipped: .venv reused" if reuse_venv else "set-up included"
    print(f"make run        {seconds:6.1f} s  ({what}; README: 6 minutes on 2 cores) in {clone}", flush=True)
    return checkout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workdir", type=Path, default=REPO, help="a checkout holding a finished default run")
    where.add_argument("--tiny", action="store_true", help="first make a tiny finished run in a temporary copy")
    where.add_argument("--make-run", action="store_true", help="first time `make run` in a fresh clone")
    parser.add_argument("--reuse-venv", action="store_true", help="with --make-run: link this checkout's .venv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="workflow_speed_")) if args.tiny or args.make_run else None
    try:
        if args.tiny:
            checkout = tiny_copy(scratch)
        elif args.make_run:
            checkout = make_run(scratch, args.reuse_venv)
        else:
            folder = args.workdir.resolve()
            checkout = Checkout(folder, src=folder / "src" if (folder / "src").is_dir() else None)
        print(f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
              f"in {checkout.folder}", flush=True)

        def preset_jobs(output: str) -> str:
            jobs = planned_jobs(output)
            return (f"{jobs.get('total', '?')} jobs planned: {jobs.get('train', 0)} train, "
                    f"{jobs.get('fit_hybrid', 0)} fit_hybrid")

        measure(checkout, "preset dry run", ["-n", "--configfile", str(PRESET)], args.repeats, note=preset_jobs)

        def nothing_to_do(output: str) -> None:  # else the real run below would run these jobs: stop
            if NOTHING not in output:
                jobs = planned_jobs(output)
                sys.exit(f"{checkout.folder} holds no finished default run: snakemake plans {jobs.get('total', '?')} "
                         f"jobs ({', '.join(f'{k} {v}' for k, v in jobs.items() if k != 'total')}). "
                         "Finish it (`make run`) or use --tiny.")

        measure(checkout, "no-op dry run", ["-n"], args.repeats, check=nothing_to_do, note="snakemake -n")
        measure(checkout, "no-op run", ["--cores", "all", "--resources", "gpu=1"], args.repeats, check=nothing_to_do,
                note="snakemake --cores all --resources gpu=1")
    finally:
        if scratch is not None:
            if args.keep:
                print(f"kept {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
