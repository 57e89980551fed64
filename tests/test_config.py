"""Config checks beyond the schema, and the grid expansion."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from leukobench.config import GRID_KEYS, ConfigError, check_config, config_problems, grid_cells

DEFAULT = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())


def test_the_default_config_is_valid():
    assert config_problems(DEFAULT) == []


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["grid"].update(model=["varol_cnn1", "resnet9000"]), "grid.model: 'resnet9000'"),
    (lambda c: c["grid"].update(variant=["dataset9"]), "grid.variant: 'dataset9'"),
    (lambda c: c["grid"].update(dataset=["cnmc"]), "grid.dataset: 'cnmc'"),
    (lambda c: c["split"].update(ratios={"train": 0.8, "val": 0.15, "test": 0.15}), "split.ratios:.*sum to 1"),
    (lambda c: c["datasets"].update(cnmc={"format": "cnmc", "path": "/no/such/C-NMC"}), "datasets.cnmc.path: '/no/such/C-NMC' does not exist"),
    (lambda c: c["datasets"].update(cnmc={"format": "cnmc"}), "datasets.cnmc.path: missing"),
])
def test_each_bad_value_is_named(edit, key):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(ConfigError, match=key):
        check_config(config)


def test_all_problems_are_reported_at_once():
    config = copy.deepcopy(DEFAULT)
    config["grid"]["model"] = ["nope"]
    config["split"]["ratios"] = {"train": 0.5, "val": 0.1, "test": 0.1}
    assert len(config_problems(config)) == 2


def test_grid_expands_to_every_combination_once():
    grid = {**{key: [0] for key in GRID_KEYS}, "size": [32, 48, 32], "model": ["a", "b"], "epochs": [5, 10, 25]}
    cells = grid_cells(grid)
    assert list(cells.columns) == list(GRID_KEYS)
    assert len(cells) == 2 * 2 * 3 and not cells.duplicated().any()
