"""A rule's code digest follows the leukobench modules its script reaches, and only those."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leukobench.models import MODELS
from leukobench.plan.provenance import (MEANINGS_FILE, PACKAGE_ROOT, code_digest, code_meaning, imported_modules,
                                        other_entries_modules)

REPO = Path(__file__).resolve().parents[1]


def fake_package(root: Path) -> tuple[Path, Path]:
    package = root / "leukobench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text("from leukobench.models import build\n")
    (package / "models.py").write_text("def build():\n    from leukobench import layers\n")
    (package / "layers.py").write_text("X = 1\n")
    (package / "plots.py").write_text("import numpy\n")
    script = root / "train_script.py"
    script.write_text("from leukobench.train import fit\nimport numpy as np\n")
    return package, script


# A planning in a process of its own: the digest of the fake package's script, with the meanings kept in a folder,
# and the files it parsed (ast.parse counted).
PLANNING = """
import ast, json, sys
from pathlib import Path
parsed = []
parse = ast.parse
ast.parse = lambda source, filename="<unknown>", **kw: parsed.append(Path(filename).name) or parse(source, filename, **kw)
from leukobench.plan.provenance import code_digest, keep_meanings_in
keep_meanings_in(sys.argv[1])
print(json.dumps([code_digest.__wrapped__(Path(sys.argv[2]), Path(sys.argv[3])), sorted(parsed)]))
"""


def planned(folder: Path, script: Path, package: Path) -> tuple[str, list[str]]:
    result = subprocess.run([sys.executable, "-c", PLANNING, str(folder), str(script), str(package)],
                            capture_output=True, text=True, check=True)
    digest, parsed = json.loads(result.stdout)
    return digest, parsed


def test_kept_meanings_give_the_same_digest_and_the_next_planning_parses_only_what_changed(tmp_path):
    package, script = fake_package(tmp_path)
    kept = tmp_path / ".snakemake"
    alone = code_digest.__wrapped__(script, package)  # in this process, nothing kept
    assert planned(kept, script, package) == (alone, ["__init__.py", "layers.py", "models.py", "train.py", "train_script.py"])
    assert planned(kept, script, package) == (alone, [])  # every text's meaning was kept
    (package / "layers.py").write_text("X = 2\n")
    edited, parsed = planned(kept, script, package)
    assert edited != alone and parsed == ["layers.py"]
    assert edited == code_digest.__wrapped__(script, package)
    (package / "layers.py").write_text("X = 1\n")  # back: its meaning is parsed again, the first digest again
    assert planned(kept, script, package) == (alone, ["layers.py"])
    (kept / MEANINGS_FILE).write_bytes(b"not marshal")  # damaged: parsed again, then rewritten
    assert planned(kept, script, package) == (alone, ["__init__.py", "layers.py", "models.py", "train.py", "train_script.py"])
    assert planned(kept, script, package) == (alone, [])


def test_imports_are_followed_through_modules_and_inside_functions(tmp_path):
    package, script = fake_package(tmp_path)
    assert {p.name for p in imported_modules(script, package)} == {"train.py", "models.py", "layers.py", "__init__.py"}


def test_editing_a_reached_module_changes_the_digest_and_an_unrelated_one_does_not(tmp_path):
    package, script = fake_package(tmp_path)
    before = code_digest.__wrapped__(script, package)
    (package / "plots.py").write_text("import numpy\n# edited\n")
    assert code_digest.__wrapped__(script, package) == before
    (package / "layers.py").write_text("X = 2\n")
    assert code_digest.__wrapped__(script, package) != before


MODULE = '''"""A module."""
import numpy as np

LIMIT = 3  # the most


class Model:
    """A model."""

    size: int = 2
    """Its size."""

    def fit(self, x, *, scale=1.0):
        """Fit."""
        return np.sum(x) * scale  # summed
'''
SAME_MEANING = {
    "a comment added": MODULE.replace("# the most", "# the most, at most"),
    "a comment line": MODULE.replace("class Model:", "# a model\nclass Model:"),
    "docstrings edited": MODULE.replace('"""A module."""', '"""Another module, said otherwise."""').replace('"""Fit."""', "'fits'"),
    "docstrings removed": MODULE.replace('"""A model."""\n', "").replace('    """Its size."""\n', ""),
    "layout": MODULE.replace("scale=1.0):", "scale=1.0\n                ):").replace("\n\n\nclass", "\nclass"),
    "quotes and brackets": MODULE.replace("np.sum(x) * scale", "(np.sum(x) * (scale))"),
}
OTHER_MEANING = {
    "a value": MODULE.replace("LIMIT = 3", "LIMIT = 4"),
    "a name": MODULE.replace("scale=1.0):", "factor=1.0):").replace("* scale", "* factor"),
    "an operator": MODULE.replace("np.sum(x) * scale", "np.sum(x) / scale"),
    "a call": MODULE.replace("np.sum", "np.mean"),
    "a statement": MODULE.replace("        return", "        print(x)\n        return"),
    "a string that is a value": MODULE.replace("LIMIT = 3", "LIMIT = '3'"),
}


@pytest.mark.parametrize("edit", sorted(SAME_MEANING))
def test_comments_docstrings_and_layout_do_not_change_the_meaning(edit):
    assert SAME_MEANING[edit] != MODULE
    assert code_meaning(SAME_MEANING[edit]) == code_meaning(MODULE)


@pytest.mark.parametrize("edit", sorted(OTHER_MEANING))
def test_a_real_edit_changes_the_meaning(edit):
    assert code_meaning(OTHER_MEANING[edit]) != code_meaning(MODULE)


def test_a_docstring_edit_of_a_reached_module_keeps_the_digest_and_a_real_edit_changes_it(tmp_path):
    package, script = fake_package(tmp_path)
    (package / "layers.py").write_text('"""Layers."""\nX = 1  # one\n')
    before = code_digest.__wrapped__(script, package)
    (package / "layers.py").write_text('"""The layers, said again."""\n\n# X is one\nX = (1)\n')
    script.write_text("# the training script\n" + script.read_text())
    assert code_digest.__wrapped__(script, package) == before
    (package / "layers.py").write_text('"""Layers."""\nX = 2  # one\n')
    assert code_digest.__wrapped__(script, package) != before


def test_job_logging_is_in_no_digest():
    """Every script logs through leukobench.plan.joblog; it is infrastructure, so no digest covers it."""
    for script in (REPO / "workflow/scripts").glob("*.py"):
        assert "from leukobench.plan.joblog import log_to" in script.read_text(), script.name
        assert PACKAGE_ROOT / "plan/joblog.py" not in imported_modules(script)


def test_the_training_script_does_not_depend_on_the_report_code():
    reached = {p.relative_to(PACKAGE_ROOT).as_posix() for p in imported_modules(REPO / "workflow/scripts/train.py")}
    assert {"learn/train.py", "models/registry.py", "models/studies.py", "models/transfer.py", "data/store.py"} <= reached
    assert not {p for p in reached if p.startswith(("report/", "data/readers/"))}
    assert not reached & {"learn/classical.py", "plan/config.py"}


def test_a_trainings_digest_covers_the_builders_of_its_models_family_only():
    """One script trains every model, so it reaches every family of builders; the train rule's digest is taken
    per model without the other families (the modules of the registry's other models, as an ingest leaves out
    the other readers): editing the transfer models retrains none of the studies' CNNs."""
    script = REPO / "workflow/scripts/train.py"

    def reach(model):
        return {p.name for p in imported_modules(script, leaving_out=other_entries_modules(MODELS, model))}

    def digest(model):
        return code_digest(script, leaving_out=other_entries_modules(MODELS, model))

    studies, transfer = reach("varol_cnn1"), reach("vgg16")
    assert "studies.py" in studies and not {"transfer.py", "reference.py"} & studies
    assert "transfer.py" in transfer and not {"studies.py", "reference.py"} & transfer
    assert {"registry.py", "layers.py", "weights.py", "train.py", "store.py"} <= studies & transfer  # in every digest
    assert digest("varol_cnn1") == digest("zhang_cnn")
    assert len({digest(model) for model in ("varol_cnn1", "reference_resnet_small", "vgg16")}) == 3


@pytest.mark.parametrize(("script", "figures"), [("samples", "samples.py"), ("trial_figures", "trial.py"),
                                                  ("saliency_sheet", "saliency_sheet.py"),
                                                  ("saliency_best_sheets", "saliency_sheet.py")])
def test_the_figures_of_stores_and_trials_are_rules_of_their_own(script, figures):
    """The store, the evaluation and Grad-CAM draw nothing: their figures are drawn by rules of their own,
    which reach the figures' look (style.py), not the trial keys, the config checks or the tables."""
    reached = {p.name for p in imported_modules(REPO / f"workflow/scripts/{script}.py")}
    assert {figures, "style.py"} <= reached
    assert not reached & {"tables.py", "config.py", "keys.py"}
    for drawing_nothing in ("store", "evaluate", "inspect", "saliency_best", "train"):
        assert figures not in {p.name for p in imported_modules(REPO / f"workflow/scripts/{drawing_nothing}.py")}


LAYERS_NOT_REACHED = {
    "store": ("metrics.py", "report/", "learn/", "models/", "style.py"),  # editing a metric or a figure rebuilds no store
    "samples": ("metrics.py", "report/", "learn/", "models/"),  # the store's sample sheet
    "evaluate": ("report/", "style.py"),  # editing a figure reruns no evaluation
    # a trial's figures (report/figures/trial.py): editing a grid figure or table redraws none of them
    "trial_figures": ("data/", "learn/", "models/", "report/selection.py", "report/tables.py", "report/figures/common.py",
                     *(f"report/figures/{family}.py" for family in ("comparison", "roc", "reliability", "subjects",
                                                                    "hyperparameters", "accuracy_vs_time", "leakage",
                                                                    "seeds"))),
    **{script: ("learn/", "models/", "data/")  # the grid's figures and tables: editing a model or a reader reruns no report
       for script in ("aggregate", "best_trials", "figures", "leakage", "tables", "reproduction")},
}


@pytest.mark.parametrize("script", sorted(LAYERS_NOT_REACHED))
def test_each_scripts_figures_stay_in_its_own_layer(script):
    """The sample sheet is in data/, the figures of a trial and of the grid in report/figures/ (one module per
    family), the shared look in style.py."""
    script_path = REPO / f"workflow/scripts/{script}.py"
    reached = {p.relative_to(PACKAGE_ROOT).as_posix() for p in imported_modules(script_path)}
    assert not {path for path in reached if path.startswith(LAYERS_NOT_REACHED[script])}


@pytest.mark.parametrize("script", ["tables", "reproduction"])
def test_the_report_tables_do_not_depend_on_the_config_checks_or_the_registries(script):
    """They scale a published trial as the grid was scaled (leukobench.keys), not through leukobench.plan.config."""
    reached = {p.name for p in imported_modules(REPO / f"workflow/scripts/{script}.py")}
    assert "tables.py" in reached and "keys.py" in reached
    assert not reached & {"config.py", "models.py", "classical.py"}


def test_an_ingest_digest_follows_its_formats_reader_only(tmp_path):
    """A job that runs one entry of a registry (the ingest: one dataset layout's reader) leaves the other
    entries' modules out of its digest: a real edit of the Aria reader changes the digest of an Aria
    ingest and not that of a C-NMC one; an edit of the readers' shared part changes both."""
    from leukobench.data.readers import READERS

    package = tmp_path / "leukobench"
    shutil.copytree(PACKAGE_ROOT, package, ignore=shutil.ignore_patterns("__pycache__"))
    script = REPO / "workflow/scripts/ingest.py"

    def digests():
        return {fmt: code_digest.__wrapped__(script, package, other_entries_modules(READERS, fmt))
                for fmt in ("cnmc", "synthetic", "aria", "folder")}

    before = digests()
    assert before["cnmc"] == before["synthetic"]  # one reader, registered under two formats
    assert len({before["cnmc"], before["aria"], before["folder"]}) == 3
    with open(package / "data/readers/aria.py", "a") as edited:
        edited.write("\n_an_edit = 'an edit'\n")
    after_aria = digests()
    assert after_aria["aria"] != before["aria"]
    assert {fmt: after_aria[fmt] for fmt in ("cnmc", "synthetic", "folder")} == \
        {fmt: before[fmt] for fmt in ("cnmc", "synthetic", "folder")}
    with open(package / "data/readers/common.py", "a") as edited:
        edited.write("\n_an_edit = 'an edit'\n")
    after_common = digests()
    assert all(after_common[fmt] != after_aria[fmt] for fmt in after_common)
