"""The workflow as a user runs it: a tiny config end to end, then what a change reruns."""

from __future__ import annotations

import ast
import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forked_snakemake import run_snakemake
from leukobench.plan.provenance import MEANINGS_FILE, code_meaning

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = ["--snakefile", str(REPO / "Snakefile")]
SNAKEMAKE_MODULE = [sys.executable, "-m", "snakemake"]
SNAKEMAKE = [*SNAKEMAKE_MODULE, *SNAKEFILE]  # a process of its own (forked_snakemake.run_snakemake says when one is needed)
METRIC_COLUMNS = ["n", "accuracy", "precision", "recall", "f1", "weighted_f1", "balanced_accuracy", "auc",
                  "sensitivity", "specificity", "train_seconds", "predict_seconds", "images_per_second"]
TINY = {
    "datasets": {"synthetic": {"format": "synthetic", "synthetic": {
        "subjects": 12, "cells_per_subject": 12, "image_size": 48, "seed": 0}}},
    "split": {"method": "subject", "ratios": {"train": 0.5, "val": 0.25, "test": 0.25}, "seed": 0},
    "variants": {"balanced": {"balance": "undersample", "color": "rgb"}},
    "grid": {"dataset": ["synthetic"], "variant": ["balanced"], "size": [32], "model": ["abed_cnn", "varol_cnn1"],
             "epochs": [1], "batch_size": [16]},
    "evaluation": {"bootstrap": 100, "min_interval_groups": 2},  # 3 subjects per split: intervals all the same
    "published": {"study": "A tiny study", "data": {"Cells": "synthetic"}, "results": [
        {"source": "Table 1", "data": "Cells", "trial": {"approach": "cnn", "model": "abed_cnn"}, "accuracy": 0.8, "auc": 0.85},
        {"source": "Table 2", "data": "Cells", "trial": {"model": "varol_cnn3"}, "accuracy": 0.9}]},
}
REPORT_JOBS = {"aggregate": 1, "comparison": 1, "tables": 1, "figures": 1, "best_trials": 1, "reproduction": 1, "all": 1}


def retrained(trials: int) -> dict[str, int]:
    """The jobs of Keras trials trained again: the training, its evaluation and figures, and the Grad-CAM of the
    dataset's chosen trials (evaluation.saliency: chosen, the default: one job, whose models changed, and its sheets)."""
    return {"train": trials, "evaluate": trials, "trial_figures": trials, "saliency_best": 1, "saliency_best_sheets": 1}


def snakemake(workdir: Path, config: dict, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return run_snakemake([*SNAKEFILE, "--directory", workdir, "--configfile", workdir / "config.yaml", *args], env=env)


def keras_trainings(jobs: dict[str, int]) -> int:
    """The Keras trials a plan trains: rule train, and train_with_features for the trials hybrid trials read."""
    return jobs.get("train", 0) + jobs.get("train_with_features", 0)


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The job counts of a dry run's 'Job stats' table."""
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.split("Job stats:")[1].split("total")[0] if "Job stats:" in result.stdout else ""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


SMOKE_SCALE = 0.05  # a preset's smoke run (`--config scale=0.05`, the presets' header comment)
IMPORT_PROBE = "heavy_imports.txt"  # which processes imported TensorFlow, scikit-learn or matplotlib (tests/import_probe)


def with_import_probe(workdir: Path) -> dict:
    """The environment of a snakemake whose processes each write to workdir/IMPORT_PROBE the heavy libraries
    they import."""
    return {**os.environ, "LEUKOBENCH_IMPORT_PROBE": str(workdir / IMPORT_PROBE),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests" / "import_probe"), os.environ.get("PYTHONPATH")]))}


def probed_imports(workdir: Path, library: str) -> list[str]:
    """The scripts of the processes that imported ``library`` (a job's ``.snakemake/scripts/tmpXXXX.<rule script>.py``;
    ``__main__.py`` for snakemake itself)."""
    probe = workdir / IMPORT_PROBE
    lines = probe.read_text().splitlines() if probe.exists() else []
    return [line.split(" ", 1)[1] for line in lines if line.split(" ", 1)[0] == library]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "config.yaml").write_text(yaml.safe_dump(TINY))
    result = subprocess.run([*SNAKEMAKE, "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
                             "--cores", "2", "--resources", "gpu=1"],  # a process of its own: the probe runs at its start
                            capture_output=True, text=True, timeout=900, env=with_import_probe(workdir))
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


@pytest.mark.workflow
def test_tiny_run_writes_every_contracted_output(finished_run):
    metrics = pd.read_csv(finished_run / "results/report/metrics.csv")
    assert set(metrics["split"]) == {"val", "test"} and len(metrics) == 8
    # each trial and split at the level of its images and of its subjects (3 per split: one verdict each)
    assert metrics.groupby("level").size().to_dict() == {"cell": 4, "subject": 4}
    subjects = metrics[metrics["level"] == "subject"]
    assert (subjects["n"] == 3).all() and (subjects["subject_aggregation"] == "mean").all()
    for column in METRIC_COLUMNS:
        assert column in metrics and f"{column}_low" in metrics or column in ("n", "train_seconds", "predict_seconds", "images_per_second")
    assert (~metrics["leaky"]).all()  # augmented copies stayed in the training split
    # whether each trial learned, one verdict per trial, said also by the last line of its training log
    assert metrics["learned"].isin([True, False]).all() and metrics["learned_note"].str.len().gt(0).all()
    assert (metrics.groupby("trial")[["learned", "learned_note"]].nunique() == 1).all().all()
    for trial, note in metrics.groupby("trial")["learned_note"].first().items():
        training_log = finished_run / "results/logs/train" / f"{Path(trial).relative_to('results/trials')}.log"
        assert training_log.read_text().strip().splitlines()[-1].endswith(note), training_log
    assert (metrics["accuracy_low"] <= metrics["accuracy"]).all() and (metrics["accuracy"] <= metrics["accuracy_high"]).all()
    for name in ("comparison.png", "best_configurations.html", "best_configurations.md", "hyperparameters.png",
                 "accuracy_vs_time.png", "roc_best_synthetic.png", "reliability_best_synthetic.png", "subjects_best_synthetic.png", "reproduction.html", "reproduction.md"):
        assert (finished_run / "results/report" / name).stat().st_size > 0, name
    reproduction = pd.read_csv(finished_run / "results/report/reproduction.csv")
    assert len(reproduction) == 3 and reproduction["ours"].notna().sum() == 2  # varol_cnn3 is not in the grid
    assert not (finished_run / "results/report/leakage.png").exists()  # one split method: no leakage figure
    assert (finished_run / "results/synthetic/rejected.tsv").exists()
    trials = list((finished_run / "results/trials").rglob("model.keras"))
    assert len(trials) == 2
    for trial in trials:
        for name in ("model.json", "history.csv", "predictions.parquet", "roc.png", "confusion.png", "training_curves.png", "train_benchmark.tsv"):
            assert (trial.parent / name).stat().st_size > 0, name
    splits = pd.read_parquet(finished_run / "results/synthetic/splits/subject.parquet")
    assert splits.groupby("patient_id")["split"].nunique().max() == 1
    log = next((finished_run / "results/logs/train").rglob("*.log")).read_text()
    assert re.search(r"epoch 1/1: .*val_accuracy=", log)
    # the job's share of the GPU reached it, and it says where TensorFlow ran (no GPU here)
    assert "GPU slots held (the workflow's gpu resource): 1" in log and "runs on the CPU (no GPU visible)" in log
    # Grad-CAM of the chosen trials (both: one configuration per model), beside metrics.csv and the tables
    sheets = sorted(p.name for p in (finished_run / "results/report/saliency_best_synthetic").glob("*.png"))
    assert sheets == ["abed_cnn_subject_balanced.png", "varol_cnn1_subject_balanced.png"]
    keras = metrics[metrics["approach"] == "cnn"]
    assert keras["saliency_on_cell"].between(0, 1).all() and keras["cell_area"].between(0, 1).all()
    assert keras["saliency_note"].isna().all()  # measured: no reason to give
    assert not list((finished_run / "results/trials").rglob("saliency.png"))  # no sheet in the trials' folders
    best = pd.read_csv(finished_run / "results/report/best_configurations.csv")
    assert best["saliency_on_cell"].notna().all()


@pytest.mark.workflow
def test_each_keras_trial_starts_tensorflow_once_and_nothing_else_does(finished_run):
    """Planning, the evaluations and the report never import TensorFlow; each trial's training job does,
    once, and so does the one job of the dataset that draws its chosen trials' Grad-CAM (evaluation.saliency:
    chosen, the default; tta is none): no other job per trial runs a model."""
    scripts = [script.rsplit(".", 2)[-2] for script in probed_imports(finished_run, "tensorflow")]
    assert sorted(scripts) == ["saliency_best", "train", "train"], scripts  # the tiny grid's two Keras trials


@pytest.mark.workflow
@pytest.mark.parametrize("cores", [[], ["--cores", "1"]])  # made on 2 cores: one core computes the same (test_faults)
def test_a_finished_run_has_nothing_to_do(finished_run, cores):
    result = snakemake(finished_run, TINY, "-n", *cores)
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.workflow
def test_a_model_deleted_from_a_finished_run_is_trained_again(finished_run, tmp_path):
    model = next((finished_run / "results/trials").rglob("model.keras"))
    kept = Path(shutil.move(model, tmp_path / "model.keras"))
    try:
        assert planned_jobs(snakemake(finished_run, TINY, "-n")) == {**retrained(1), **REPORT_JOBS}
    finally:
        shutil.move(kept, model)  # the same file, mtime kept: the finished run is as it was for the other tests
    after = snakemake(finished_run, TINY, "-n")
    assert "Nothing to be done" in after.stdout + after.stderr


@pytest.mark.workflow
def test_changing_epochs_reruns_training_evaluation_and_aggregation_only(finished_run):
    config = copy.deepcopy(TINY)
    config["grid"]["epochs"] = [2]
    assert planned_jobs(snakemake(finished_run, config, "-n")) == {**retrained(2), **REPORT_JOBS}


@pytest.mark.workflow
def test_changing_the_evaluation_reruns_the_evaluations_and_no_training(finished_run):
    config = copy.deepcopy(TINY)
    config["evaluation"] = {**config["evaluation"], "bootstrap": 200}
    assert planned_jobs(snakemake(finished_run, config, "-n")) == {"evaluate": 2, **REPORT_JOBS}


@pytest.mark.workflow
def test_transfer_model_options_retrain_nothing_on_a_grid_without_transfer_models(finished_run):
    """training.weights and trainable_layers reach only the trials of transfer models (common.smk keras_training);
    the options every Keras trial takes still retrain them all."""
    config = copy.deepcopy(TINY)
    config["training"] = {"weights": None, "trainable_layers": -1}
    assert planned_jobs(snakemake(finished_run, config, "-n")) == {}
    config["training"] = {"class_weight": True}
    assert planned_jobs(snakemake(finished_run, config, "-n")) == {**retrained(2), **REPORT_JOBS}


@pytest.mark.workflow
def test_adding_a_size_adds_only_its_store_and_its_trials(finished_run):
    config = copy.deepcopy(TINY)
    config["grid"]["size"] = [32, 40]
    assert planned_jobs(snakemake(finished_run, config, "-n")) == {"store": 1, "samples": 1, **retrained(2), **REPORT_JOBS}


@pytest.mark.workflow
def test_html_report_holds_the_figures_and_the_table(finished_run):
    result = snakemake(finished_run, TINY, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    html = (finished_run / "report.html").read_text(errors="replace")
    for name in ("comparison.png", "metrics.csv", "roc.png", "confusion.png", "training_curves.png", "samples.png",
                 "best_configurations.html", "reproduction.html", "hyperparameters.png", "roc_best_synthetic.png"):
        assert name in html, name
    assert "varol_cnn1_subject_balanced.png" in html  # the chosen trials' Grad-CAM sheets
    for category in ("Data", "Models", "Comparison", "Reproduction", "Saliency"):
        assert category in html, category


@pytest.mark.workflow
def test_predict_gives_the_scores_of_the_evaluation(finished_run, tmp_path):
    model = next((finished_run / "results/trials").rglob("model.keras"))
    evaluated = pd.read_parquet(model.parent / "predictions.parquet").query("split == 'test'").head(6)
    manifest = pd.read_parquet(finished_run / "results/synthetic/manifest.parquet").set_index("image_id")
    files = [str(finished_run / manifest.loc[i, "path"]) for i in evaluated["image_id"]]
    out = tmp_path / "new.csv"
    result = subprocess.run([sys.executable, "-m", "leukobench.cli", "predict", str(model), *files, "-o", str(out)],
                            capture_output=True, text=True, cwd=finished_run)
    assert result.returncode == 0, result.stderr[-3000:]
    predicted = pd.read_csv(out)
    assert predicted["score_all"].to_numpy() == pytest.approx(evaluated["score"].to_numpy(), abs=1e-5)
    assert (predicted["predicted_class"].to_numpy() == evaluated["class_name"].where(evaluated["pred"] == evaluated["label"],
            evaluated["class_name"].map({"all": "hem", "hem": "all"})).to_numpy()).all()


# --- each evaluation: setting reruns the jobs that use it, and no others --------------------------------

@pytest.mark.workflow
@pytest.mark.parametrize("saliency, planned", [
    ("none", {}),  # the chosen trials' Grad-CAM is dropped: metrics.csv again, without it
    ("all", {"inspect": 2, "saliency_sheet": 2}),  # each Keras trial's own Grad-CAM job and its sheet: no training, no evaluation
])
def test_the_saliency_setting_reruns_grad_cam_and_the_report_only(finished_run, saliency, planned):
    config = copy.deepcopy(TINY)
    config["evaluation"] = {**config["evaluation"], "saliency": saliency}
    assert planned_jobs(snakemake(finished_run, config, "-n")) == {**planned, **REPORT_JOBS}


# The tiny run with a second configuration of each Keras model (a chosen trial and one that is not), a
# hybrid trial on each abed_cnn trial and a classical trial: every kind of evaluation.
CLASSICAL = {"dataset": ["synthetic"], "variant": ["balanced"], "size": [32], "features": ["pixels"], "classifier": ["lr"]}


EVERY_APPROACH = {**TINY, "grid": {**TINY["grid"], "batch_size": [16, 32]},
                  "hybrid": {"models": ["abed_cnn"], "classifiers": ["nb"]}, "classical": CLASSICAL}
EVALUATIONS = {"evaluate": 4, "evaluate_hybrid": 2, "evaluate_classical": 1}


@pytest.fixture(scope="module")
def every_approach_run(finished_run, tmp_path_factory):
    """A copy of the finished tiny run, grown to EVERY_APPROACH and run to the end."""
    workdir = tmp_path_factory.mktemp("every_approach")
    shutil.copytree(finished_run, workdir, symlinks=True, dirs_exist_ok=True)  # mtimes and .snakemake kept
    result = snakemake(workdir, EVERY_APPROACH, "--cores", "2", "--resources", "gpu=1")
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


@pytest.mark.workflow
def test_grad_cam_is_drawn_for_the_chosen_trials_and_the_others_say_why_not(every_approach_run):
    metrics = pd.read_csv(every_approach_run / "results/report/metrics.csv")
    best = pd.read_csv(every_approach_run / "results/report/best_configurations.csv").query("approach == 'cnn'")
    keras = metrics[metrics["approach"] == "cnn"]
    measured = keras[keras["saliency_on_cell"].notna()]
    assert set(zip(measured["model"], measured["batch_size"])) == set(zip(best["model"], best["batch_size"]))
    assert measured["trial"].nunique() == 2 and keras["trial"].nunique() == 4  # the best of each model, of 4 Keras trials
    others = keras[keras["saliency_on_cell"].isna()]
    assert others["trial"].nunique() == 2 and others["saliency_note"].str.startswith("not a chosen trial").all()
    assert metrics.loc[metrics["approach"] != "cnn", ["saliency_on_cell", "saliency_note"]].isna().all().all()
    assert best["saliency_on_cell"].notna().all()


@pytest.mark.workflow
@pytest.mark.parametrize("evaluation, planned", [
    ({"tta": "rot8"}, {"tta": 4, "evaluate": 4}),  # the Keras trials' pass and their evaluations; hybrid and classical have none
    ({"tta": "flips", "saliency": "all"}, {"inspect": 4, "saliency_sheet": 4, "evaluate": 4}),  # both passes of a trial in one job
    ({"calibration": "temperature"}, EVALUATIONS),  # every evaluation, no model pass, no Grad-CAM
    ({"bootstrap": 200, "seed": 1}, EVALUATIONS),
    ({"min_interval_groups": 3}, EVALUATIONS),
])
def test_each_evaluation_setting_reruns_only_the_jobs_that_use_it(every_approach_run, evaluation, planned):
    config = copy.deepcopy(EVERY_APPROACH)
    config["evaluation"] = {**config["evaluation"], **evaluation}
    assert planned_jobs(snakemake(every_approach_run, config, "-n")) == {**planned, **REPORT_JOBS}


# A real one-line edit of a package module (a new name bound), and the jobs a finished tiny run then plans (the
# README's promises). A job that reruns rewrites its outputs, so what reads them reruns too: "evaluate" brings the report.
FIGURE_JOBS = {"samples": 1, "trial_figures": 2, "saliency_best_sheets": 1, "comparison": 1, "figures": 1, "best_trials": 1,
               "all": 1}
GRAD_CAM_JOBS = {"saliency_best": 1, "saliency_best_sheets": 1}  # evaluation.saliency: chosen, the default
EDITS = {
    # re-evaluates from the predictions (no TensorFlow job but the chosen trials' Grad-CAM: the choosing code is in its reach)
    "metrics.py": {"evaluate": 2, "trial_figures": 2, **GRAD_CAM_JOBS, **REPORT_JOBS},
    "learn/evaluate.py": {"evaluate": 2, **REPORT_JOBS},
    "scoring.py": {"evaluate": 2, **REPORT_JOBS},  # temperatures are fitted on the predictions: no retraining
    "learn/saliency.py": {**GRAD_CAM_JOBS, **REPORT_JOBS},  # Grad-CAM again, no training, no evaluation
    "report/selection.py": {**GRAD_CAM_JOBS, **REPORT_JOBS},  # the choice of the trials drawn, and the report
    "learn/saliency_sheet.py": {"saliency_best_sheets": 1, "all": 1},  # the sheets redrawn, Grad-CAM not run again
    "report/figures/trial.py": {"trial_figures": 2, "all": 1},  # a trial's figures are a rule of their own: no evaluation
    "data/samples.py": {"samples": 1, "all": 1},  # the sample sheet is a rule of its own: no store rebuilt
    "style.py": FIGURE_JOBS,  # the figures' look: every figure redrawn, nothing else
    "keys.py": {**GRAD_CAM_JOBS, **REPORT_JOBS},  # the names of a trial's keys: the report's columns and the choice of the
    # trials whose Grad-CAM is drawn (report.selection); no evaluation, no training
    "subjects.py": {"split": 1, "store": 1, "samples": 1, **retrained(2), **REPORT_JOBS},  # who is a subject: the splits
    "published.py": {"tables": 1, "reproduction": 1, "all": 1},  # the published numbers' names
    "plan/joblog.py": {},  # job logging: what a log says, in no digest
    "predictions.py": {**retrained(2), **REPORT_JOBS},  # the file every fit writes and the evaluation reads
    "learned.py": {**retrained(2), **REPORT_JOBS},  # the training's chance loss, the verdict of the evaluation
    "report/figures/common.py": {"comparison": 1, "figures": 1, "best_trials": 1, "all": 1},  # the grid figures only
    "report/figures/comparison.py": {"comparison": 1, "all": 1},  # one figure family: only the rule that draws it
    "report/figures/roc.py": {"best_trials": 1, "all": 1},
    "report/figures/leakage.py": {},  # its rule draws subject vs random pairs: this tiny run (one split method) has none
    "report/tables.py": {"tables": 1, "reproduction": 1, "all": 1},
    "data/readers/common.py": {"ingest": 1, "split": 1, "store": 1, "samples": 1, **retrained(2), **REPORT_JOBS},
    "data/readers/cnmc.py": {"ingest": 1, "split": 1, "store": 1, "samples": 1, **retrained(2), **REPORT_JOBS},
    "data/readers/aria.py": {},  # another layout's reader: the ingest of this (synthetic, C-NMC layout) dataset stays
    "data/splits.py": {"split": 1, "store": 1, "samples": 1, **retrained(2), **REPORT_JOBS},  # not the ingest
    "models/studies.py": {**retrained(2), **REPORT_JOBS},  # the tiny grid's models (abed_cnn, varol_cnn1) are the studies'
    "models/transfer.py": {},  # a training's digest covers its model's family of builders only (model_code_digest)
    "learn/classical.py": {},  # no Keras job (and this tiny grid has no classical trial to refit)
}


def copied_workflow(tmp_path: Path) -> Path:
    """A copy of the workflow and the package (files keep their times), to edit."""
    for part in ("Snakefile", "workflow", "src", "profiles", "envs"):
        source = REPO / part
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, tmp_path / part)
    return tmp_path


def plan_with(copy: Path, finished_run: Path) -> dict[str, int]:
    """The jobs the finished tiny run plans with the workflow and package of ``copy``, as a user runs it
    there (its default profile read by Snakemake itself)."""
    (finished_run / "config.yaml").write_text(yaml.safe_dump(TINY))
    result = run_snakemake(["--snakefile", copy / "Snakefile", "--directory", finished_run,
                            "--configfile", finished_run / "config.yaml", "-n"],
                           cwd=copy, env={**os.environ, "PYTHONPATH": str(copy / "src")})
    return planned_jobs(result)


@pytest.mark.workflow
@pytest.mark.parametrize("module", sorted(EDITS))
def test_a_code_edit_reruns_exactly_what_it_changes(finished_run, tmp_path, module):
    """The finished run planned again by a copy of the workflow and package with one module edited."""
    copy = copied_workflow(tmp_path)
    with open(copy / "src/leukobench" / module, "a") as edited:
        edited.write("\n_an_edit = 'an edit'\n")
    assert plan_with(copy, finished_run) == EDITS[module]


def with_words_added(source: str) -> str:
    """``source`` with a comment line and words in its module docstring and its first function's or class's
    docstring (a docstring added where the module has none): the same code, said otherwise."""
    tree, lines = ast.parse(source), source.splitlines(keepends=True)
    documented = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                  and ast.get_docstring(node, clean=False) is not None][:1]
    for node in sorted(documented + ([tree] if ast.get_docstring(tree, clean=False) is not None else []),
                       key=lambda node: -node.body[0].end_lineno):
        string = node.body[0]
        line = lines[string.end_lineno - 1]
        end = len(line.encode()[:string.end_col_offset].decode())  # the offset counts UTF-8 bytes
        quote = 3 if line[:end].endswith(('"""', "'''")) else 1
        lines[string.end_lineno - 1] = line[:end - quote] + " (said again, otherwise)" + line[end - quote:]
    edited = "".join(lines)
    if ast.get_docstring(tree, clean=False) is None:
        edited = '"""A docstring added."""\n' + edited
    return edited.rstrip("\n") + "\n\n\n# a comment added at the end\n"


@pytest.mark.workflow
def test_the_parsed_code_is_kept_in_the_checkout_for_every_working_directory(finished_run):
    """The finished run plans in a folder of its own (--directory): the meanings of the code digests are kept beside
    the Snakefile, where the next working directory finds them, not in the run's .snakemake/."""
    assert (REPO / ".snakemake" / MEANINGS_FILE).is_file()
    assert not (finished_run / ".snakemake" / MEANINGS_FILE).exists()


@pytest.mark.workflow
def test_comments_and_docstrings_rerun_nothing(finished_run, tmp_path):
    """Every module of the package, every workflow script, every rule file and the Snakefile edited in its
    comments and docstrings (new files, new times): the finished run plans nothing."""
    copy = copied_workflow(tmp_path)
    modules = sorted((copy / "src/leukobench").rglob("*.py"))
    assert len(modules) > 40
    for module in modules:
        before = module.read_text()
        module.write_text(with_words_added(before))
        assert module.read_text() != before and code_meaning(module.read_text()) == code_meaning(before), module
    for script in (copy / "workflow/scripts").glob("*.py"):
        script.write_text(with_words_added(script.read_text()))
    for rules in [copy / "Snakefile", *(copy / "workflow/rules").glob("*.smk")]:
        rules.write_text("# a comment added\n" + rules.read_text() + "\n# and one at the end\n")
    assert plan_with(copy, finished_run) == {}
    (copy / "src/leukobench/style.py").write_text((copy / "src/leukobench/style.py").read_text().replace("DPI = 130", "DPI = 131"))
    assert plan_with(copy, finished_run) == FIGURE_JOBS  # a real edit still reruns what it changes


