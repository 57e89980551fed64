"""What users wait for, each figure beside its target, in one run.

Planning (seconds Snakemake takes to plan, target <= 10 s each):
  preset dry run   snakemake -n --configfile presets/varol2024.yaml: plans the Varol preset
                   (324 Keras trainings, 648 hybrid fits; about 2,000 jobs), and prints the
                   TensorFlow processes per trial it plans (the jobs of rules whose script reaches
                   keras or tensorflow, over the Keras trainings; target: a trial's training and at
                   most one inspection job of it, and one Grad-CAM job per dataset);
  no-op dry run    snakemake -n after a complete default run: nothing to do;
  no-op run        snakemake --cores all --resources gpu=1 after a complete default run: nothing to do.

    python benchmarks/workflow_speed.py [--workdir DIR]   # a checkout with a finished default run (default: this one)
    python benchmarks/workflow_speed.py --tiny            # first makes a finished run in a temporary copy
    python benchmarks/workflow_speed.py --make-run [--reuse-venv]   # first times `make run` in a fresh clone
    python benchmarks/workflow_speed.py --preset-only     # the preset dry run alone (no finished run needed)

Running (--runs): the wall time of the default run and of the Varol smoke run (`--configfile
presets/varol2024.yaml --config scale=0.05`), each from nothing in a temporary copy of the code,
with the job times of each rule (sum and mean, from Snakemake's log: whole seconds, so a mean of
many short jobs is good to about half a second) and the time spent inside Keras' `fit` (the
trials' model.json), so the overhead ratio (summed job time / time in fit) is one number; and the
start-up of each job kind (a fresh interpreter importing what the rule's script imports, and
TensorFlow with Keras, which a Keras job imports when it trains). With --against REV the same
runs are made with the code of that git revision first, and the two are printed side by side,
each wall time also as a share of the first's (the figure that holds across hours: this machine's
speed varies through the day; the Varol target was set beside 449 s at de9193e), with whether the
runs' metrics (timings left out), tables and reproduction tables are identical.
--gpu SLOTS runs with `--resources gpu=SLOTS` (default 1: one Keras training at a time); given
twice (`--gpu 1 --gpu 4`) it compares one training at a time with four sharing the GPU, which is
the figure to take on a GPU machine (on a CPU the trainings only compete for the cores).
Targets on 2 cores: Varol smoke run <= 400 s, default run <= 5 minutes, a light evaluation
job <= 3 s, at most one TensorFlow job per Keras trial besides its training.

    python benchmarks/workflow_speed.py --runs [--against eef280f] [--only varol] [--gpu 1 --gpu 4]

--tiny copies this working tree (without .git, .venv, results, resources) into a temporary folder,
writes its config.yaml as the default one with smaller synthetic data (10 cells per subject,
64 px), one epoch and 100 bootstrap resamples, and runs it to the end: the same jobs as the
default run (same grid, hybrid and classical trials), in 4 to 6 minutes on 2 cores. The copy's
src/ comes first on PYTHONPATH, so edits made in this checkout meanwhile do not change what is
measured.
--make-run clones the repository (`git clone`: committed files only) into a temporary folder and
times `make run` there, set-up included (a new .venv and pip install) unless --reuse-venv links
this checkout's .venv (the clone's src/ then comes first on PYTHONPATH); the no-op figures are
then measured in the clone. With --workdir, the checkout's src/ comes first on PYTHONPATH.

Each planning figure is the median of --repeats runs (all runs are printed) of wall-clock seconds;
the CPU seconds (user + system) of the same runs show how much of the wall time was waiting for
the CPU when the machine is shared.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
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


RULE = re.compile(r"^rule (\w+):")
USE_RULE = re.compile(r"^use rule (\w+) as (\w+)")
SCRIPT = re.compile(r"""^\s+["']\.\./scripts/(\w+)\.py["']""")


def rule_scripts(folder: Path) -> dict[str, str]:
    """The workflow script each rule runs, from workflow/rules/*.smk (`use rule A as B` runs A's)."""
    scripts, inherits = {}, {}
    for rules in sorted((folder / "workflow" / "rules").glob("*.smk")):
        rule, in_script = None, False
        for line in rules.read_text().splitlines():
            if match := RULE.match(line):
                rule, in_script = match[1], False
            elif match := USE_RULE.match(line):
                rule, in_script = match[2], False
                inherits[rule] = match[1]
            elif line.strip() == "script:":
                in_script = True
            elif in_script and (match := SCRIPT.match(line)):
                scripts[rule], in_script = match[1], False
    for rule, base in inherits.items():
        scripts.setdefault(rule, scripts.get(base))
    return {rule: script for rule, script in scripts.items() if script}


def imports_tensorflow(source: Path) -> bool:
    """Whether a Python file imports keras or tensorflow anywhere in it (inside functions too)."""
    for node in ast.walk(ast.parse(source.read_text())):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        if any(name.split(".")[0] in ("keras", "tensorflow") for name in names):
            return True
    return False


def tensorflow_rules(folder: Path) -> set[str]:
    """The rules whose job imports TensorFlow: their script reaches (leukobench.plan.provenance) a
    leukobench module that imports keras or tensorflow."""
    sys.path.insert(0, str(folder / "src"))
    try:
        from leukobench.plan.provenance import imported_modules
    finally:
        sys.path.pop(0)
    package = folder / "src" / "leukobench"
    reaching = set()
    for rule, script in rule_scripts(folder).items():
        path = folder / "workflow" / "scripts" / f"{script}.py"
        if any(map(imports_tensorflow, [path, *imported_modules(path, package)])):
            reaching.add(rule)
    return reaching


def tensorflow_per_trial(jobs: dict[str, int], folder: Path) -> str:
    """The TensorFlow processes a plan starts per Keras trial (training), which jobs they are, and the
    verdict: a trial's training, at most one inspection job of it, and one Grad-CAM job per dataset
    (evaluation.saliency: chosen; the datasets are the planned ingests)."""
    trials = jobs.get("train", 0) + jobs.get("train_with_features", 0)
    counted = {rule: jobs[rule] for rule in sorted(tensorflow_rules(folder)) if jobs.get(rule)}
    total, datasets = sum(counted.values()), jobs.get("ingest", 0)
    if not trials:
        return f"TensorFlow processes: {total}, no trial planned"
    target = 2 + datasets / trials
    return (f"TensorFlow processes per trial {total / trials:.3f} (target <= {target:.3f}, 2 per trial and 1 per "
            f"dataset: {'ok' if total / trials <= target else 'OVER'}; {total} jobs: "
            f"{', '.join(f'{rule} {count}' for rule, count in counted.items())}; {total - trials} besides the "
            f"{trials} trainings)")


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
    print(f"make run        {seconds:6.1f} s  ({what}; target <= {RUN_TARGETS['default']} s on 2 cores) in {clone}",
          flush=True)
    return checkout


# ----------------------------------------------------------------------------- what users wait for

RUNS = {"default": [], "varol": ["--configfile", "presets/varol2024.yaml", "--config", "scale=0.05"]}
# seconds on 2 cores (project issue 24; the Varol target set beside 449 s at de9193e: 0.89 of its time, one run with --against)
RUN_TARGETS = {"default": 5 * 60, "varol": 400}
LIGHT_JOB_TARGET = 3.0
TIMING_COLUMNS = ["train_seconds", "predict_seconds", "images_per_second"]
COMPARED = ["results/report/metrics.csv", "results/report/best_configurations.csv", "results/report/reproduction.csv"]
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
STARTED = re.compile(r"^(?:local)?rule (\w+):$")
JOB_ID = re.compile(r"^\s+jobid: (\d+)$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)$")


def job_seconds(log: str) -> dict[str, list[float]]:
    """Seconds of each job by rule, from a Snakemake log: from the stamp above `rule X:` to the one
    above `Finished jobid: N`."""
    stamp, rule, started, seconds = None, None, {}, defaultdict(list)
    for line in log.splitlines():
        if match := STAMP.match(line):
            stamp = datetime.strptime(" ".join(match[1].split()), "%a %b %d %H:%M:%S %Y")
        elif match := STARTED.match(line):
            rule = match[1]
        elif (match := JOB_ID.match(line)) and rule:
            started[match[1]] = (rule, stamp)
            rule = None
        elif (match := FINISHED.match(line)) and match[1] in started:
            name, began = started.pop(match[1])
            if name != "all":
                seconds[name].append((stamp - began).total_seconds())
    return dict(seconds)


def code_copy(scratch: Path, revision: str | None) -> Path:
    """This working tree (revision None) or a git revision, without results, as a folder to run in."""
    folder = scratch / (revision or "working-tree") / "leukobench"
    if revision is None:
        shutil.copytree(REPO, folder, ignore=shutil.ignore_patterns(*NOT_COPIED))
    else:
        folder.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def timed_run(code: Path, name: str, gpu: int) -> dict:
    """One workflow run from nothing in a fresh copy of ``code`` with ``gpu`` GPU slots: wall time,
    job times, time in fit."""
    folder = code.parent / f"run-{name}-gpu{gpu}"
    shutil.copytree(code, folder)
    checkout = Checkout(folder, src=folder / "src")
    wall, _, output = checkout.snakemake("--cores", "all", "--resources", f"gpu={gpu}", *RUNS[name])
    log = max((folder / ".snakemake" / "log").glob("*.snakemake.log")).read_text()
    # a trial's folder: results/trials/, or results/cells/ in a revision older than the rename
    fits = [json.loads(p.read_text())["train_seconds"]
            for name in ("trials", "cells") for p in (folder / "results" / name).rglob("model.json")]
    return {"wall": wall, "jobs": job_seconds(log), "fit": sum(fits), "trials": len(fits), "folder": folder}


def script_imports(script: Path) -> str:
    """The import statements of a workflow script (the lines a job runs before its work)."""
    tree = ast.parse(script.read_text())
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)))


def startup_seconds(code: Path, statements: str, repeats: int = 3) -> tuple[float, bool]:
    """Median seconds of a fresh interpreter running ``statements``, and whether it imported TensorFlow."""
    probe = statements + "\nimport sys\nprint('tensorflow' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(code / "src"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=code)
        runs.append(time.perf_counter() - started)
        if result.returncode != 0:
            sys.exit(f"{statements!r} failed:\n{result.stderr[-2000:]}")
    return statistics.median(runs), result.stdout.strip().endswith("True")


def print_startups(codes: dict[str, Path]) -> None:
    scripts = sorted({p.stem for code in codes.values() for p in (code / "workflow" / "scripts").glob("*.py")})
    print("\nstart-up per job kind: a fresh interpreter importing what the script imports (median of 3)", flush=True)
    print(f"  {'script':<16}" + "".join(f"{label:>24}" for label in codes), flush=True)
    rows = [(script, {label: code / "workflow" / "scripts" / f"{script}.py" for label, code in codes.items()})
            for script in scripts]
    rows.append(("tensorflow+keras", None))
    for script, paths in rows:
        columns = []
        for label, code in codes.items():
            if paths is None:
                seconds, _ = startup_seconds(code, "import tensorflow, keras")
                columns.append(f"{seconds:6.2f} s")
            elif paths[label].exists():
                seconds, tensorflow = startup_seconds(code, script_imports(paths[label]))
                columns.append(f"{seconds:6.2f} s{' (TensorFlow)' if tensorflow else ''}")
            else:
                columns.append("-")
        print(f"  {script:<16}" + "".join(f"{column:>24}" for column in columns), flush=True)
    print("  (a Keras job imports TensorFlow and Keras when it trains: the last row, once per Keras trial)", flush=True)


def print_run(name: str, runs: dict[str, dict]) -> None:
    """One run's figures, one column per code version."""
    labels = list(runs)
    target = RUN_TARGETS[name]
    print(f"\n{name} run: {' '.join(RUNS[name]) or 'config.yaml as shipped'}", flush=True)
    print(f"  {'':<22}" + "".join(f"{label:>28}" for label in labels), flush=True)
    print(f"  {'wall time':<22}" + "".join(
        f"{run['wall']:>10.0f} s (target {target} s: {'ok' if run['wall'] <= target else 'OVER'})".rjust(28)
        for run in runs.values()), flush=True)
    if len(runs) > 1:  # the figure that compares across hours: this machine's speed varies through the day
        first = next(iter(runs.values()))["wall"]
        print(f"  {'of the first':<22}" + "".join(f"{run['wall'] / first:>28.2f}" for run in runs.values()), flush=True)
    rules = sorted({rule for run in runs.values() for rule in run["jobs"]},
                   key=lambda rule: -max(sum(run["jobs"].get(rule, [])) for run in runs.values()))
    print(f"  {'rule: jobs, sum, mean':<22}" + "".join(f"{'':>28}" for _ in labels), flush=True)
    for rule in rules:
        trials = []
        for run in runs.values():
            times = run["jobs"].get(rule)
            trials.append(f"{len(times):>4} {sum(times):>7.0f} s {sum(times) / len(times):>6.1f} s" if times else "-")
        print(f"  {rule:<22}" + "".join(f"{trial:>28}" for trial in trials), flush=True)
    summed = {label: sum(map(sum, run["jobs"].values())) for label, run in runs.items()}
    print(f"  {'summed job time':<22}" + "".join(f"{summed[label]:>26.0f} s" for label in labels), flush=True)
    print(f"  {'time inside fit':<22}" + "".join(f"{run['fit']:>18.0f} s, {run['trials']:>3} trials" for run in runs.values()),
          flush=True)
    print(f"  {'overhead ratio':<22}" + "".join(
        f"{summed[label] / run['fit']:>28.2f}" if run["fit"] else f"{'-':>28}" for label, run in runs.items()), flush=True)
    for rule in ("evaluate", "evaluate_hybrid", "evaluate_classical"):
        for label, run in runs.items():
            times = run["jobs"].get(rule)
            if times:
                mean = sum(times) / len(times)
                print(f"  light job {rule} ({label}): mean {mean:.1f} s, target <= {LIGHT_JOB_TARGET:.0f} s: "
                      f"{'ok' if mean <= LIGHT_JOB_TARGET else 'OVER'}", flush=True)
    if len(runs) > 1:
        first, *others = runs.values()
        for label, run in list(runs.items())[1:]:
            print(f"  same results as {list(runs)[0]} ({label}): {same_results(first['folder'], run['folder'])}", flush=True)


def same_results(before: Path, after: Path) -> str:
    """Whether two runs wrote the same metrics, tables and reproduction tables (timings left out), as
    benchmarks/compare_results.py compares them: rows matched on their keys, renamed columns mapped."""
    from compare_results import UnmatchedRows, compare_runs  # benchmarks/compare_results.py, which imports this module

    try:
        comparisons = compare_runs(before, after)
    except UnmatchedRows as problem:  # the timings above stand; only this line cannot be given
        return f"not comparable: {problem}"
    verdicts = []
    for comparison in comparisons:
        if comparison.missing != "both":
            differences = comparison.unexplained()
            verdicts.append(f"{comparison.name} {f'DIFFERS ({differences} values or rows)' if differences else 'identical'}")
    return "; ".join(verdicts)


def measure_runs(against: str | None, only: list[str], gpus: list[int], keep: bool) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="workflow_runs_"))
    try:
        codes = {f"{against} (before)": code_copy(scratch, against)} if against else {}
        codes["working tree"] = code_copy(scratch, None)
        print(f"{os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, in {scratch}",
              flush=True)
        print_startups(codes)
        for name in only:
            runs = {}
            for label, code in codes.items():
                for gpu in gpus:
                    column = label if len(gpus) == 1 else f"{label}, gpu={gpu}"
                    print(f"  running {name} with {column} ...", flush=True)
                    runs[column] = timed_run(code, name, gpu)
            print_run(name, runs)
    finally:
        if keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workdir", type=Path, default=REPO, help="a checkout holding a finished default run")
    where.add_argument("--tiny", action="store_true", help="first make a tiny finished run in a temporary copy")
    where.add_argument("--make-run", action="store_true", help="first time `make run` in a fresh clone")
    where.add_argument("--runs", action="store_true", help="time the default and Varol smoke runs from nothing")
    where.add_argument("--preset-only", action="store_true",
                       help="the preset dry run alone, in this checkout (no finished run needed)")
    parser.add_argument("--against", metavar="REV", help="with --runs: the same runs with this git revision's code first")
    parser.add_argument("--only", choices=sorted(RUNS), action="append", help="with --runs: this run only (repeatable)")
    parser.add_argument("--gpu", type=int, action="append", metavar="SLOTS",
                        help="with --runs: --resources gpu=SLOTS (default 1; repeat to compare, e.g. --gpu 1 --gpu 4)")
    parser.add_argument("--reuse-venv", action="store_true", help="with --make-run: link this checkout's .venv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.runs:
        return measure_runs(args.against, args.only or list(RUNS), args.gpu or [1], args.keep)
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
                    f"{jobs.get('fit_hybrid', 0)} fit_hybrid; {tensorflow_per_trial(jobs, checkout.folder)}")

        measure(checkout, "preset dry run", ["-n", "--configfile", str(PRESET)], args.repeats, note=preset_jobs)
        if args.preset_only:
            return

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
