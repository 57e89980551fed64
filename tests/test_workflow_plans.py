"""The workflow planned, not run: the config check before any job, every preset and profile, the
real data's layouts, and the rules' own hygiene (lint, config only through params). A file of its
own, so that `make test`'s workers run it beside test_workflow.py's finished runs."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from forked_snakemake import run_snakemake
from test_workflow import (CLASSICAL, IMPORT_PROBE, REPO, SMOKE_SCALE, SNAKEFILE, SNAKEMAKE, TINY, keras_trainings,
                           planned_jobs, snakemake, with_import_probe)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["grid"].update(model=["resnet9000"]), r"grid\.model: 'resnet9000' is not one of"),
    (lambda c: c["grid"].update(epochs=[-5]), r"-5 is less than the minimum of 1[\s\S]*epochs"),
    (lambda c: c["split"].update(ratios={"train": 0.7, "val": 0.2, "test": 0.2}), r"split\.ratios: .*sum to 1"),
    (lambda c: c["datasets"].update(cnmc={"format": "cnmc", "path": "/no/such/C-NMC"}), r"datasets\.cnmc\.path: '/no/such/C-NMC' does not exist"),
])
def test_a_bad_config_stops_before_any_job(tmp_path, edit, message):
    config = copy.deepcopy(TINY)
    edit(config)
    result = snakemake(tmp_path, config, "--cores", "1")
    assert result.returncode != 0
    assert re.search(message, result.stderr), result.stderr[-3000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_predict_names_a_missing_model_or_image(tmp_path):
    result = subprocess.run([sys.executable, "-m", "leukobench.cli", "predict", str(tmp_path / "model.keras"), "x.bmp"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "model.keras: no such model file" in result.stderr




@pytest.mark.parametrize("sections, drawn", [
    ({}, False),
    ({"grid": {**TINY["grid"], "seed": [0, 1]}}, True),  # seeds listed, no repeats
    ({"grid": {**TINY["grid"], "repeats": 2}}, True),
    ({"classical": {**CLASSICAL, "repeats": 3}}, True),
    ({"classical": {**CLASSICAL, "classifier": [], "repeats": 3}}, False),  # repeats of no trial (a preset's empty classical)
])
def test_the_seeds_figure_is_drawn_when_a_planned_configuration_has_several_seeds(tmp_path, sections, drawn):
    """Not when a `repeats` key is set somewhere: the reference preset kept the default's classical
    repeats with no classical trial, and its run failed at the last step, with nothing to draw."""
    assert ("seeds" in planned_jobs(snakemake(tmp_path, {**TINY, **sections}, "-n"))) == drawn


PRESETS = sorted((REPO / "presets").glob("*.yaml"))


def test_split_methods_and_folds_multiply_the_stores_and_trials(tmp_path):
    config = copy.deepcopy(TINY)
    config["split"].update(method=["subject", "random"], folds=3)
    jobs = planned_jobs(snakemake(tmp_path, config, "-n"))
    assert (jobs["split"], jobs["store"], jobs["train"], jobs["evaluate"]) == (2, 2 * 3, 2 * 3 * 2, 2 * 3 * 2)


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_plans(preset, tmp_path):
    """As a user runs it, in the checkout: the preset on top of the default config.yaml. Planning it imports
    no learning or plotting library (a dry run of the Varol preset waits for none of them)."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = subprocess.run([*SNAKEMAKE, "--directory", str(tmp_path), "--configfile", str(preset), "-n"],
                            capture_output=True, text=True, timeout=300, env=with_import_probe(tmp_path))
    jobs = planned_jobs(result)
    assert not (tmp_path / IMPORT_PROBE).exists(), (tmp_path / IMPORT_PROBE).read_text()
    assert keras_trainings(jobs) >= 1 and jobs["aggregate"] == 1
    # only the study's own data: none of the default config's trials (its synthetic dataset) comes along
    assert "synthetic" not in re.findall(r"wildcards: dataset=(\w+)", result.stdout)
    if preset.stem == "varol2024":  # the trials of the four hybrid models write their conv features as they train
        assert jobs["train"] == 324 // 6 * 2 and jobs["train_with_features"] == 324 * 4 // 6
        assert jobs["fit_hybrid"] == jobs["evaluate_hybrid"] == 324 * 4 // 6 * 3
    # its smoke run trains every model of it, whatever `exclude` ties to which model (the reference's optimizers)
    smoke = run_snakemake([*SNAKEFILE, "--directory", tmp_path, "--configfile", preset, "--config", f"scale={SMOKE_SCALE}", "-n"])
    assert trained_models(smoke.stdout) == trained_models(result.stdout)


def trained_models(output: str) -> set[str]:
    """The models of the Keras trainings a dry run plans."""
    return set(re.findall(r"^rule train(?:_with_features)?:\n.*?\bmodel=(\w+)", output, flags=re.M | re.S))


def gpu_slots_by_model(output: str) -> dict[str, set[int]]:
    """The `gpu` each Keras training of a dry run holds, by model."""
    slots = {}
    for block in re.findall(r"^rule train(?:_with_features)?:\n(.*?)\n\n", output, flags=re.M | re.S):
        model = re.search(r"model=(\w+)", block)[1]
        slots.setdefault(model, set()).add(int(re.search(r"resources: .*\bgpu=(\d+)", block)[1]))
    return slots


@pytest.mark.parametrize("profile, transfer_slots", [("gpu-workstation", 4), ("slurm", 1)])
def test_the_profiles_gpu_slots_reach_the_keras_jobs(tmp_path, profile, transfer_slots):
    """The workstation's one GPU has 4 slots: a small CNN holds one, a transfer model all; on SLURM every
    training asks for one GPU of its own (--gpus=1), transfer models too."""
    result = run_snakemake([*SNAKEFILE, "--directory", tmp_path, "--configfile", REPO / "presets" / "varol2024.yaml",
                            "--config", f"scale={SMOKE_SCALE}", "--profile", REPO / "profiles" / profile, "-n"])
    assert result.returncode == 0, result.stderr[-3000:]
    slots = gpu_slots_by_model(result.stdout)
    assert set(slots) == {"varol_cnn1", "varol_cnn2", "varol_cnn3", "varol_cnn4", "vgg16", "resnet50"}
    assert {model: slots[model] for model in ("vgg16", "resnet50")} == {"vgg16": {transfer_slots}, "resnet50": {transfer_slots}}
    assert all(slots[model] == {1} for model in slots if model.startswith("varol_cnn"))


@pytest.mark.parametrize("preset_file", PRESETS, ids=lambda path: path.stem)
def test_a_preset_reads_the_real_data_once_its_one_path_is_set(tmp_path, preset_file):
    """Every preset runs on its synthetic stand-in as shipped; the one commented `path:` line, set,
    makes the same grid read the real data instead (Zhang's: both image sets of its data). Planned at the
    smoke run's scale: the grid thinned, every dataset and variant kept (test_every_preset_plans plans it whole)."""
    text = preset_file.read_text()
    preset = yaml.safe_load(text)
    stand_ins = [name for name, dataset in preset["datasets"].items() if "synthetic" in dataset and "path" not in dataset]
    (line,) = re.finditer(r"^(?P<indent>[ \t]*)# path: \S+", text, flags=re.M)  # one path to set
    as_shipped = planned_jobs(snakemake(tmp_path, {**preset, "scale": SMOKE_SCALE}, "-n"))
    assert as_shipped["synthesize"] == len(stand_ins) >= 1
    (tmp_path / "data").mkdir()
    preset = yaml.safe_load(text[:line.start()] + f"{line['indent']}path: {tmp_path / 'data'}" + text[line.end():])
    result = snakemake(tmp_path, {**preset, "scale": SMOKE_SCALE}, "-n")
    assert "synthesize" not in planned_jobs(result) and planned_jobs(result)["ingest"] == len(stand_ins)
    assert "input: " + str(tmp_path / "data") in result.stdout


ARIA_CLASSES = {"Benign": 6, "Early": 9, "Pre": 8, "Pro": 7}


def test_the_reference_preset_on_the_aria_data_keeps_four_classes_and_its_duplicates_in_one_part(tmp_path):
    """Its path set to Aria's layout (no patients, byte-identical copies), the reference preset's store
    holds the 4 classes, each split undersampled to its smallest class, no copy in two splits."""
    import cv2

    rng = np.random.default_rng(0)
    for cls, n in ARIA_CLASSES.items():
        (tmp_path / "leukemia" / "Original" / cls).mkdir(parents=True)
        for i in range(1, n + 1):
            name = f"WBC-Benign-{i:03d}.jpg" if cls == "Benign" else f"WBC-Malignant-{cls}-{i:03d}.jpg"
            cv2.imwrite(str(tmp_path / "leukemia" / "Original" / cls / name), rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    copies = {cls: tmp_path / "leukemia" / "Original" / cls / f"WBC-Malignant-{cls}-{ARIA_CLASSES[cls] + 1:03d}.jpg"
              for cls in ("Early", "Pre")}
    for cls, copy_path in copies.items():  # Kaggle's copies: the same bytes under a second name
        shutil.copy(copy_path.with_name(f"WBC-Malignant-{cls}-001.jpg"), copy_path)
    preset = yaml.safe_load((REPO / "presets" / "reference.yaml").read_text())
    preset["datasets"]["aria"]["path"] = str(tmp_path / "leukemia")
    store = re.search(r"results/aria/store/\S+/64px\.parquet", snakemake(tmp_path, preset, "-n").stdout)[0]
    result = snakemake(tmp_path, preset, "--cores", "1", store)
    assert result.returncode == 0, result.stderr[-3000:]
    from leukobench.data.store import load_store

    frame = load_store(tmp_path / store).frame
    assert set(frame["label"]) == {0, 1, 2, 3}
    counts = frame.groupby(["split", "label"]).size().unstack()
    assert set(counts.index) == {"train", "val", "test"} and (counts.nunique(axis=1) == 1).all()  # balanced per split
    for cls, copy_path in copies.items():
        both = {f"Original/{cls}/WBC-Malignant-{cls}-001.jpg", f"Original/{cls}/{copy_path.name}"}
        splits = pd.read_parquet(tmp_path / "results" / "aria" / "splits" / "subject.parquet")
        assert splits.loc[splits["image_id"].isin(both), "split"].nunique() == 1


def test_scale_shrinks_a_preset_for_a_smoke_run(tmp_path):
    preset = REPO / "presets" / "varol2024.yaml"
    result = run_snakemake([*SNAKEFILE, "--directory", tmp_path, "--configfile", preset, "--config", f"scale={SMOKE_SCALE}", "-n"])
    jobs = planned_jobs(result)
    assert keras_trainings(jobs) == 3 * 6  # every variant and model; the first value of the other lists (size 32, adam, 25 -> 1 epoch)
    assert "epochs~100" not in result.stdout and "size~48" not in result.stdout and "optimizer~sgd" not in result.stdout


RULE_SECTION = re.compile(r"^    (\w+):", flags=re.M)


def test_config_reaches_scripts_only_through_params():
    """A config value read anywhere but `params:` (or the input functions that name files) would not rerun jobs."""
    for rules in (REPO / "workflow/rules").glob("*.smk"):
        for block in re.split(r"(?m)^(?=rule )", rules.read_text())[1:]:
            sections = RULE_SECTION.split(block)
            for name, body in zip(sections[1::2], sections[2::2]):
                if name not in ("params", "input"):
                    assert not re.search(r"\bconfig\b", body), f"{rules.name}: {block.splitlines()[0]} reads config in `{name}:`"
    for script in (REPO / "workflow/scripts").glob("*.py"):
        assert "snakemake.config" not in script.read_text(), f"{script.name} reads snakemake.config; pass it through params"


@pytest.mark.parametrize("config", [{}, {"grid": {"model": ["resnet9000"]}}])
def test_a_forked_snakemake_plans_and_fails_as_a_fresh_process(tmp_path, config):
    """tests/forked_snakemake, which most workflow tests run: the same output (its times and ids aside) and exit
    code as `python -m snakemake`, for a plan and for a config that stops it."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**TINY, **config}))
    args = ["--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "-n"]
    fresh = subprocess.run([*SNAKEMAKE, *args], capture_output=True, text=True, timeout=300)
    forked = run_snakemake([*SNAKEFILE, *args])
    def timeless(result):  # its lines, and each line's items, as sets: Snakemake's order follows the process's hash seed
        text = re.sub(r"(?m)^(\[\w{3} .*\d{4}\]|  (Date|Workflow ID|Command): .*)$", "", result.stdout + result.stderr)
        return sorted(sorted(re.split(r"[,;:] ", line)) for line in text.splitlines())

    assert forked.returncode == fresh.returncode == (1 if config else 0)
    assert timeless(forked) == timeless(fresh)
    assert ("resnet9000" in fresh.stdout + fresh.stderr) == bool(config)


def test_the_workflow_passes_snakemakes_lint():
    result = run_snakemake([*SNAKEFILE, "--lint"], cwd=REPO)
    assert "Congratulations, your workflow is in a good condition" in result.stdout + result.stderr, result.stdout[-3000:]


def test_the_pixel_limit_reaches_ingest_from_the_config(tmp_path):
    import cv2
    import numpy as np

    raw = tmp_path / "lab"
    for grey, cls in ((100, "blast"), (150, "normal")):  # each class its own images (copies under two classes are quarantined)
        (raw / cls).mkdir(parents=True)
        for name, side in (("small.png", 10), ("big.png", 30)):
            assert cv2.imwrite(str(raw / cls / name), np.full((side, side, 3), grey, np.uint8))
    config = {**copy.deepcopy(TINY), "ingest": {"max_pixels": 500}}
    config["datasets"]["lab"] = {"format": "folder", "path": str(raw)}
    result = snakemake(tmp_path, config, "--cores", "1", "results/lab/manifest.parquet")
    assert result.returncode == 0, result.stderr[-3000:]
    rejected = pd.read_csv(tmp_path / "results/lab/rejected.tsv", sep="\t")
    assert rejected["reason"].tolist() == ["image is 30 x 30 px = 0.0009 Mpx, above the limit of 0.0005 Mpx "
                                           "(ingest.max_pixels); crop it or raise the limit"] * 2
    assert len(pd.read_parquet(tmp_path / "results/lab/manifest.parquet")) == 2
