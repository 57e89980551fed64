"""The package's layers, and what each rule's code reaches (so what a code edit reruns).

``src/leukobench`` is a ground floor (``io``, ``keys``, ``subjects``, ``learned``, ``metrics``, ``scoring``,
``score_variants``, ``predictions``, ``published``, ``registry``, ``settings``, ``style``) under the layers:
``data/`` (raw files to image stores; ``data/readers/``, one module per dataset layout), ``models/`` (the
model registry, the builders by family, the transfer models' weights files) on data, ``learn/`` (training,
features, classifiers, evaluation, a trained trial applied to arrays) on models, and ``report/`` (tables of a
whole grid, and ``report/figures/``, one module per figure family, a trial's figures among them) on the ground
floor alone; ``plan/`` (config checks, code digests, job logging), used by the Snakefile and every script,
sits on the ground floor, data, models and learn, never on the report; ``apply/`` (the ``leukobench predict``
application: files, outputs, exit codes) on learn; ``cli.py`` on top. Imports only go downward. A rule reruns
when a module its script reaches changes (``leukobench.plan.provenance``), so the
reach of every script is stated here: a new import that widens it fails this test and has to be a decision.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leukobench.data.readers import READERS
from leukobench.plan.provenance import PACKAGE_ROOT, code_meaning, direct_imports, imported_modules, other_entries_modules

REPO = Path(__file__).resolve().parents[1]
GROUND = "ground"
LAYER_OF_FOLDER = {"data": "data", "models": "models", "learn": "learn", "report": "report", "plan": "plan",
                   "apply": "apply"}
# what each layer may import (besides itself); the command sits on top and may import anything
ALLOWED = {
    GROUND: {GROUND},
    "data": {GROUND, "data"},
    "models": {GROUND, "data", "models"},  # the weights' download is the datasets' (data/download)
    "learn": {GROUND, "data", "models", "learn"},
    "report": {GROUND, "report"},
    "plan": {GROUND, "data", "models", "learn", "plan"},  # the config checks know the registries, never the report
    "apply": {GROUND, "data", "learn", "apply"},  # the command's files over the library's trained trial
}


def layer(module: Path) -> str:
    relative = module.relative_to(PACKAGE_ROOT)
    if len(relative.parts) > 1:
        return LAYER_OF_FOLDER[relative.parts[0]]
    return "command" if relative.name == "cli.py" else GROUND


def name(module: Path) -> str:
    """``data/store``; a subpackage's ``__init__`` by the folder's name, the package's as ``__init__``."""
    return module.relative_to(PACKAGE_ROOT).with_suffix("").as_posix().removesuffix("/__init__")


MODULES = sorted(PACKAGE_ROOT.rglob("*.py"))


def test_the_tree_shows_the_layers():
    entries = {p.name for p in PACKAGE_ROOT.iterdir() if not p.name.startswith("__")}
    assert {"data", "models", "learn", "report", "plan", "apply"} <= entries
    assert {p.stem for p in (PACKAGE_ROOT / "data/readers").glob("*.py")} == {"__init__", "common", *READER_MODULES}
    assert {p.stem for p in (PACKAGE_ROOT / "report/figures").glob("*.py")} == {"__init__", "common", *FIGURE_FAMILIES}
    assert [p.relative_to(PACKAGE_ROOT).as_posix() for p in PACKAGE_ROOT.rglob("figures.py")] == [], \
        "figures are modules named by their family, in report/figures/"
    loose = {p.stem for p in PACKAGE_ROOT.glob("*.py")} - {"__init__"}
    assert loose == {"cli", "io", "keys", "learned", "metrics", "predictions", "published", "registry", "scoring",
                     "score_variants", "settings", "style", "subjects"}, \
        "only the ground floor and the command lie loose"


@pytest.mark.parametrize("module", MODULES, ids=lambda p: name(p) or "leukobench")
def test_imports_only_go_downward(module):
    own = layer(module)
    if own not in ALLOWED:
        return  # the command may use any layer
    upward = sorted(name(target) for target in direct_imports(module) if layer(target) not in ALLOWED[own])
    assert not upward, f"{name(module)} ({own}) imports {upward}; {own} may import only {sorted(ALLOWED[own])}"


READER_MODULES = {"cnmc", "aria", "allidb", "folder"}  # one per dataset layout, beside their shared part (common)
FIGURE_FAMILIES = {"trial", "comparison", "roc", "reliability", "subjects", "hyperparameters", "accuracy_vs_time",
                   "leakage", "seeds"}  # one module each, beside what the grid's figures share (common)


def test_the_figures_package_runs_no_code_of_its_own():
    """A script names the family module it draws with; Python also runs the packages above it, which
    no digest covers (leukobench.plan.provenance follows named imports), so they hold only their
    docstring: a family's reach is its own module and what it imports."""
    for package in ("report/figures", "report", "data", "learn", "plan"):
        assert code_meaning((PACKAGE_ROOT / package / "__init__.py").read_text()) == code_meaning(""), package


# Every module each workflow script reaches (leukobench.plan.provenance), package __init__ files left
# out. The rule reruns when one of them changes; nothing else reruns it. Job logging (plan/joblog),
# which every script calls first, is in no digest.
DATA_STORE = {"data/augment", "data/images", "data/store", "io"}
# the registry of score variants (leukobench.score_variants): what the evaluation, the tables and a model
# pass of test-time augmentation read; no training or fit reaches it
SCORE_VARIANTS = "score_variants"
READERS_SHARED = {"data/readers", "data/readers/common", "data/images", "io", "registry", "settings"}
REPORT = {"report/selection", "learned", "metrics", "subjects", "predictions", "keys", "io", SCORE_VARIANTS, "registry"}
FIGURE_LOOK = "style"
GRID_FIGURES = {"report/figures/common", FIGURE_LOOK}  # what every figure of the grid reaches besides its family
# the model registry with every family of builders, and the transfer models' weights files
MODELS = {"models", "models/registry", "models/layers", "models/studies", "models/reference", "models/transfer",
          "models/weights"}
REACH = {
    "synthesize": {"data/synthetic"},
    "download": {"data/download", "__init__", "settings", "io"},  # the package's version names the download's User-Agent
    "kaggle_fetch": {"data/kaggle", "data/download", "__init__", "io"},  # kagglehub downloads, download.py unpacks
    "kaggle_versions": {"data/kaggle", "data/download", "__init__", "io"},  # asks Kaggle, changes nothing
    # Keras' ImageNet weights file, fetched once (a local rule) with the datasets' HTTP code; no Keras, no model
    "imagenet_weights": {"models/weights_fetch", "models/weights", "data/download", "__init__", "io", "settings"},
    # free text of the config (reader options, published) reaches a job as a settings file, never as params;
    # the script reaches every reader, a job's digest only its format's (INGEST_OF_FORMAT below)
    "ingest": READERS_SHARED | {f"data/readers/{layout}" for layout in READER_MODULES},
    "split": {"data/splits", "io", "subjects"},
    "store": DATA_STORE | {"data/splits", "subjects"},
    "samples": DATA_STORE | {"data/samples", FIGURE_LOOK},  # the store's sample sheet, a rule of its own
    "store_features": DATA_STORE | {"learn/feature_extractors", "learn/feature_store", "predictions", "registry"},
    # a Keras trial's one TensorFlow job: training, its predictions and its conv features
    # (every family of builders: the one script builds any registered model; the rule's digest is taken per
    # model without the other families, leukobench.plan.provenance.model_code_digest, test_provenance)
    "train": DATA_STORE | MODELS | {"learn/train", "learn/backup", "learn/saved_model", "learn/devices",
                                    "learn/recipe", "learn/cnn_features", "learn/feature_store", "learned",
                                    "predictions", "registry", "settings"},
    # a Keras trial's one inspection job (evaluation.saliency: all): Grad-CAM on its test images (the sheet's
    # panels) and, with evaluation.tta, its scores again over views of each image, from one model load
    "inspect": DATA_STORE | {"learn/saliency", "learn/saliency_panels", "learn/saved_model", "learn/devices", "predictions",
                             SCORE_VARIANTS, "registry"},
    # the sheet drawn from those panels, running no model
    "saliency_sheet": {"learn/saliency_sheet", "learn/saliency_panels", "predictions", "io", FIGURE_LOOK},
    # a Keras trial's test-time augmentation alone (evaluation.tta without saliency all): no Grad-CAM code
    "tta": DATA_STORE | {"learn/saved_model", "learn/devices", "predictions", SCORE_VARIANTS, "registry"},
    # Grad-CAM of a dataset's chosen trials (evaluation.saliency: chosen): chosen from their predictions as
    # the tables choose, so the choosing code (selection, metrics) is in its reach; the sheets' panels only
    "saliency_best": DATA_STORE | {"learn/saliency", "learn/saliency_panels", "learn/saved_model", "learn/devices",
                                   "predictions", "metrics", "subjects", "learned", "report/selection", "keys",
                                   SCORE_VARIANTS, "registry"},
    # their sheets, drawn from the panels, running no model
    "saliency_best_sheets": {"learn/saliency_sheet", "learn/saliency_panels", "predictions", "io", FIGURE_LOOK},
    # every trial's evaluation: from its predictions (and a Keras trial's history), no model, no store, no figure
    "evaluate": {"learn/evaluate", "learned", "scoring", "metrics", "subjects", "predictions", "io", SCORE_VARIANTS,
                 "registry"},
    # a Keras trial's figures, from its predictions and history: none of the grid's report modules
    "trial_figures": {"report/figures/trial", "learned", "metrics", "subjects", "predictions", "io", FIGURE_LOOK},
    "fit_classical": {"learn/classical", "learn/feature_store", "predictions", "io", "registry"},
    "aggregate": {"metrics", "subjects", "predictions", "keys", "io"},
    # each figure rule reaches its figure families only
    "comparison": REPORT | GRID_FIGURES | {"report/figures/comparison"},
    "tables": REPORT | {"report/tables", "published"},
    "reproduction": REPORT | {"report/tables", "published", "settings"},
    "figures": REPORT | GRID_FIGURES | {"report/figures/hyperparameters", "report/figures/accuracy_vs_time"},
    "best_trials": REPORT | GRID_FIGURES | {"report/figures/roc", "report/figures/reliability", "report/figures/subjects",
                                           "scoring"},
    "leakage": REPORT | GRID_FIGURES | {"report/figures/leakage"},
    "seeds": REPORT | GRID_FIGURES | {"report/figures/seeds"},
}
FIGURE_RULES = {"samples", "saliency_sheet", "saliency_best_sheets", "trial_figures", "comparison", "figures", "best_trials", "leakage", "seeds"}
FIT_RULES = {"train", "fit_classical", "store_features", "store", "split", "ingest", "synthesize", "download",
             "imagenet_weights", "inspect", "tta"}  # what makes images, models and their scores


def test_every_script_has_its_reach_stated():
    assert {p.stem for p in (REPO / "workflow/scripts").glob("*.py")} == set(REACH)


@pytest.mark.parametrize("script", sorted(REACH))
def test_each_rule_reaches_exactly_the_modules_it_uses(script):
    reached = {name(p) for p in imported_modules(REPO / "workflow/scripts" / f"{script}.py")} - {"", "data", "learn",
                                                                                                   "report", "plan"}
    assert reached == REACH[script]


def test_no_keras_rule_reaches_a_classical_classifier_and_no_classical_fit_a_keras_model():
    assert "learn/classical" not in REACH["train"]
    assert not (MODELS | {"learn/train", "learn/saved_model", "learn/feature_extractors"}) & REACH["fit_classical"]


def test_only_the_training_and_the_inspections_reach_a_model_and_the_evaluation_no_store():
    """One TensorFlow job per Keras trial trains it and writes everything its evaluation needs; the only
    other model passes are its inspection's (Grad-CAM, test-time augmentation: rule inspect or tta) and
    the chosen trials' Grad-CAM (saliency_best), which build no model. The evaluation, which reads
    predictions, reaches no image store; test-time augmentation alone reaches no Grad-CAM code."""
    keras_modules = (MODELS - {"models/weights"}) | {"learn/train", "learn/saved_model", "learn/cnn_features",
                                                     "learn/devices"}  # the weights files: no Keras
    assert [script for script, reach in REACH.items() if keras_modules & reach] == ["train", "inspect", "tta", "saliency_best"]
    assert not (MODELS | {"learn/train"}) & (REACH["inspect"] | REACH["tta"] | REACH["saliency_best"])
    assert "learn/saliency" not in REACH["tta"]
    assert not DATA_STORE - {"io"} & REACH["evaluate"]


def test_no_rule_reaches_the_predict_application_and_no_model_pass_the_scoring():
    """``leukobench predict`` (apply/, and the library call under it, learn/scored_model) is no step of the
    workflow; the trainings and the inspection passes write the scores a scoring is fitted on, so an edit of
    how a temperature is fitted or applied (scoring) reruns none of them."""
    for script, reach in REACH.items():
        assert not {m for m in reach if m.startswith("apply/")} | ({"learn/scored_model"} & reach), script
    for script in ("train", "inspect", "tta", "saliency_best"):
        assert "scoring" not in REACH[script], script


def test_outside_models_the_registry_is_imported_with_every_family():
    """Importing ``leukobench.models`` registers every family of builders; a module or script elsewhere that
    imported the registry or a family's module directly would run with builders its digest leaves out."""
    inside = {"models/registry", "models/layers", "models/studies", "models/reference", "models/transfer"}
    for module in [*MODULES, *(REPO / "workflow/scripts").glob("*.py")]:
        if module.is_relative_to(PACKAGE_ROOT) and layer(module) == "models":
            continue
        assert not {name(target) for target in direct_imports(module)} & inside, module


def test_the_stores_reach_no_metrics_reader_or_figure_of_the_grid():
    assert not {"metrics", "data/readers", "data/readers/common"} & REACH["store"]
    assert not {module for module in REACH["store"] if module.startswith("report/")}


def test_only_the_figures_reach_the_figures_look():
    """Editing leukobench.style (a colour, a font size) redraws figures and reruns no fit, no model pass,
    no evaluation and no table."""
    assert {script for script, reach in REACH.items() if FIGURE_LOOK in reach} == FIGURE_RULES


def test_no_fit_reaches_the_report_the_trial_keys_or_job_logging():
    """The trainings, fits, stores and model passes reach no report module, no naming of trials (keys: the
    report's columns), no published numbers, no figure and no job logging."""
    for script in FIT_RULES:
        assert not {m for m in REACH[script] if m.startswith(("report/", "plan/"))}, script
        assert not REACH[script] & {"keys", "published", "metrics", FIGURE_LOOK, "data/samples", "report/figures/trial",
                                    "learn/saliency_sheet"}, script


def test_the_planning_layer_does_not_import_the_report():
    for module in (PACKAGE_ROOT / "plan").glob("*.py"):
        assert not {name(target) for target in direct_imports(module) if layer(target) == "report"}, name(module)


def test_of_the_fits_only_the_test_time_augmentation_passes_reach_the_score_variants():
    """A variant's views are what a TTA pass runs the model on, so an edit of the registry reruns those
    passes (rule tta, or inspect); the training's own scores need no variant, so no training, fit or
    store reaches it (learn/saved_model takes the views from its caller), and adding a variant retrains nothing."""
    assert {script for script in FIT_RULES if SCORE_VARIANTS in REACH[script]} == {"tta", "inspect"}
# The ingest of one dataset runs the readers' shared part and its format's reader: its job's digest leaves out
# the other layouts' readers (leukobench.plan.provenance.other_entries_modules), so editing one reader reruns
# only the ingest of the datasets in its layout.
INGEST_OF_FORMAT = {fmt: READERS_SHARED | {f"data/readers/{layout}"}
                    for fmt, layout in {"cnmc": "cnmc", "synthetic": "cnmc", "aria": "aria", "allidb": "allidb",
                                        "folder": "folder"}.items()}


def test_every_format_has_its_ingest_reach_stated():
    assert set(READERS.names()) == set(INGEST_OF_FORMAT)


@pytest.mark.parametrize("fmt", sorted(INGEST_OF_FORMAT))
def test_the_ingest_of_a_format_reaches_only_its_reader_and_the_shared_part(fmt):
    script = REPO / "workflow/scripts/ingest.py"
    reached = {name(p) for p in imported_modules(script, leaving_out=other_entries_modules(READERS, fmt))}
    assert reached == INGEST_OF_FORMAT[fmt]


def test_the_figure_rules_each_reach_their_own_families():
    """A real edit of one family's module redraws only the figures of the rule that draws it (and the report)."""
    family_rules = {script: {m for m in reach if m.startswith("report/figures/")} - GRID_FIGURES
                    for script, reach in REACH.items() if any(m.startswith("report/figures/") for m in reach)}
    families = [m for modules in family_rules.values() for m in modules]
    assert sorted(families) == sorted(f"report/figures/{family}" for family in FIGURE_FAMILIES)  # each in one rule
