"""A rule's code digest follows the leukobench modules its script reaches, and only those."""

from __future__ import annotations

from pathlib import Path

import pytest

from leukobench.plan.provenance import PACKAGE_ROOT, code_digest, imported_modules

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


def test_the_training_script_does_not_depend_on_the_report_code():
    reached = {p.name for p in imported_modules(REPO / "workflow/scripts/train.py")}
    assert {"train.py", "models.py", "store.py"} <= reached
    assert not reached & {"tables.py", "figures.py", "classical.py", "config.py"}


@pytest.mark.parametrize(("script", "figures"), [("store", "samples.py"), ("evaluate", "figures.py")])
def test_the_stores_and_evaluations_do_not_depend_on_the_config_checks_or_the_tables(script, figures):
    """Their figures use the cell keys (leukobench.keys), not leukobench.plan.config and all it imports."""
    reached = {p.name for p in imported_modules(REPO / f"workflow/scripts/{script}.py")}
    assert figures in reached and "keys.py" in reached
    assert not reached & {"tables.py", "config.py"}


LAYERS_NOT_REACHED = {
    "store": ("metrics.py", "report/", "learn/"),  # the sample sheet: editing a metric or a figure rebuilds no store
    "evaluate": ("report/",),  # a cell's figures: editing a grid figure reruns no evaluation
    **{script: ("learn/", "data/")  # the grid's figures and tables: editing a model or a reader reruns no report
       for script in ("aggregate", "best_cells", "figures", "leakage", "tables", "reproduction")},
}


@pytest.mark.parametrize("script", sorted(LAYERS_NOT_REACHED))
def test_each_scripts_figures_stay_in_its_own_layer(script):
    """The sample sheet is in data/, a cell's figures in learn/, the grid's in report/, the shared look in style.py."""
    script_path = REPO / f"workflow/scripts/{script}.py"
    reached = {p.relative_to(PACKAGE_ROOT).as_posix() for p in imported_modules(script_path)}
    assert not {path for path in reached if path.startswith(LAYERS_NOT_REACHED[script])}


@pytest.mark.parametrize("script", ["tables", "reproduction"])
def test_the_report_tables_do_not_depend_on_the_config_checks_or_the_registries(script):
    """They scale a published cell as the grid was scaled (leukobench.keys), not through leukobench.plan.config."""
    reached = {p.name for p in imported_modules(REPO / f"workflow/scripts/{script}.py")}
    assert "tables.py" in reached and "keys.py" in reached
    assert not reached & {"config.py", "models.py", "classical.py"}
