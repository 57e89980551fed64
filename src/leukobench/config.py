"""Checks of config.yaml beyond its JSON schema: what a schema cannot say.

The schema (workflow/schemas/config.schema.yaml) checks types, ranges and enumerations. Here:
model names against the registry, split ratios summing to 1, dataset paths that exist, grid
values that name declared datasets and variants, and the grid expanded into cells.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from leukobench.models import list_models
from leukobench.splits import check_ratios

GRID_KEYS = ("dataset", "variant", "size", "model", "optimizer", "learning_rate", "epochs", "batch_size", "seed")
GENERATED_FORMATS = ("synthetic",)


class ConfigError(ValueError):
    """config.yaml holds a value the workflow cannot run with."""


def config_problems(config: dict, base: Path = Path(".")) -> list[str]:
    """Every problem found, each naming the key, the value and what is allowed."""
    problems = []
    datasets = config.get("datasets", {})
    for name, dataset in datasets.items():
        if dataset["format"] in GENERATED_FORMATS:
            continue
        path = dataset.get("path")
        if "url" in dataset:
            if path:
                problems.append(f"datasets.{name}: give either path or url, not both")
            continue
        if not path:
            problems.append(f"datasets.{name}.path: missing; format '{dataset['format']}' needs the folder of the dataset (or a url)")
        elif not (base / path).exists():
            problems.append(f"datasets.{name}.path: '{path}' does not exist; point it at the dataset's folder")
    try:
        check_ratios(config["split"]["ratios"])
    except ValueError as error:
        problems.append(f"split.ratios: {error}")
    grid = config["grid"]
    known = {"model": list_models(), "dataset": sorted(datasets), "variant": sorted(config.get("variants", {}))}
    for key, allowed in known.items():
        for value in grid[key]:
            if value not in allowed:
                problems.append(f"grid.{key}: '{value}' is not one of {allowed}")
    return problems


def check_config(config: dict, base: Path = Path(".")) -> None:
    """Raise ConfigError listing every problem, so a run stops before its first job."""
    problems = config_problems(config, base)
    if problems:
        raise ConfigError("the configuration is not valid (config.yaml or the --configfile given):\n  - " + "\n  - ".join(problems))


def grid_cells(grid: dict) -> pd.DataFrame:
    """Every combination of the grid's lists, one row per cell, columns in ``GRID_KEYS`` order."""
    values = [list(dict.fromkeys(grid[key])) for key in GRID_KEYS]
    return pd.DataFrame(list(itertools.product(*values)), columns=list(GRID_KEYS))


def plain(cell: dict) -> dict:
    """A cell's parameters as plain Python values (Paramspace gives numpy scalars), for JSON."""
    return {key: value.item() if hasattr(value, "item") else value for key, value in cell.items()}
