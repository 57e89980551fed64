"""The score variants: every way a trial's scores are made, declared in one registry.

A trial's own scores are what its model gives each image (``none``). Two evaluation settings ask for
other scores beside them: ``evaluation.calibration`` (``temperature``: the own scores divided by
one temperature fitted on the validation split, :mod:`leukobench.scoring`) and ``evaluation.tta``
(test-time augmentation, Keras trials only: the mean of the model's scores over views of each image,
``flips`` or ``rot8``). Each variant is one entry of :data:`SCORE_VARIANTS`. Its function gives the
views of a batch of images (``(n, H, W, C)``, square) whose scores are averaged; the own scores and
a calibration use the images as they are. Its attributes declare the rest:

- ``setting``: the evaluation setting that asks for it (``evaluation.<setting>``, one of
  :data:`VARIANT_SETTINGS`), which is also the metrics.csv column that marks the rows of its
  scores with its name (``none`` there: no variant of that setting). None for the own scores,
  which every setting's ``none`` names.
- ``model_pass``: its scores need the model run again over the images (a job per Keras trial:
  rule tta, or rule inspect with ``evaluation.saliency: all``); else they are made from the
  predictions the training wrote, with no model.
- ``temperature``: its scores are then divided by the temperature fitted on the validation split
  (:mod:`leukobench.scoring`; its rows add the ``temperature`` column).
- ``combines_with``: the variants of the other settings whose scores it may be applied together
  with. A pair is evaluated together only when each lists the other (:func:`combined`): a
  temperature is fitted on the own scores, so it is never applied to test-time-augmented ones.
- ``prefix``, ``table_metrics``, ``table_columns``, ``label``: its columns in the best-configuration
  tables (:func:`leukobench.report.selection.with_score_variants`): ``<prefix><metric>`` (with
  intervals and notes) of the same trial's test row of these scores for each of ``table_metrics``;
  ``table_columns`` more columns (table column: metrics.csv column); ``label`` what the columns
  show, in the tables' legend. Variants of one prefix share their columns (a run asks for one
  variant per setting), so they declare the same. No prefix: no columns of their own.

Adding a variant is one entry here: the config check (:func:`choices`), the rules' planning
(:func:`needs_model_pass`), the evaluation (:func:`marks`, :func:`combined`), the tables
(:func:`table_groups`), ``scoring.json`` and ``leukobench predict`` (``--tta``) read it. Numpy only,
so that every layer may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from leukobench.registry import Registry

NONE = "none"  # the own scores: every setting's value, and metrics.csv's mark, for no variant of it
VARIANT_SETTINGS = ("calibration", "tta")  # evaluation.<setting>, and the metrics.csv columns marking a row's scores

Views = Callable[[np.ndarray], list[np.ndarray]]

SCORE_VARIANTS: Registry[Views] = Registry("score variant", attributes={
    "setting": None,
    "model_pass": False,
    "temperature": False,
    "combines_with": (),
    "prefix": "",
    "table_metrics": (),
    "table_columns": {},
    "label": "",
})

# The best-configuration tables' columns of the test-time-augmented scores, whichever their views.
TTA_TABLE = {"prefix": "tta_", "table_metrics": ("accuracy", "auc"), "table_columns": {"tta": "tta"},
             "label": "its accuracy and AUC with test-time augmentation (the mean over the views named in tta)"}


@SCORE_VARIANTS.register(NONE)
def own(images: np.ndarray) -> list[np.ndarray]:
    """The model's own scores: the images as they are."""
    return [images]


@SCORE_VARIANTS.register("temperature", setting="calibration", temperature=True, prefix="calibrated_",
                         table_metrics=("ece", "brier"), table_columns={"temperature": "temperature"},
                         label="its ECE and Brier score after temperature scaling (fitted on the validation split) "
                               "by temperature")
def temperature(images: np.ndarray) -> list[np.ndarray]:
    """The own scores, temperature-scaled (Guo et al., 2017; :mod:`leukobench.scoring`)."""
    return [images]


# A segmented cell has no up, down, left or right: its flips and the eight symmetries of the square
# show the same cell; Prellberg & Kramer average eight such views on C-NMC.
@SCORE_VARIANTS.register("flips", setting="tta", model_pass=True, **TTA_TABLE)
def flips(images: np.ndarray) -> list[np.ndarray]:
    """Each image, mirrored left-right, upside down, and both."""
    return [images, images[:, :, ::-1], images[:, ::-1], images[:, ::-1, ::-1]]


@SCORE_VARIANTS.register("rot8", setting="tta", model_pass=True, **TTA_TABLE)
def rot8(images: np.ndarray) -> list[np.ndarray]:
    """The four quarter turns of each image, each also mirrored."""
    turns = [np.rot90(images, k, axes=(1, 2)) for k in range(4)]
    return [*turns, *(turn[:, :, ::-1] for turn in turns)]


def choices(setting: str) -> list[str]:
    """The values ``evaluation.<setting>`` allows: ``none`` and its variants' names."""
    if setting not in VARIANT_SETTINGS:
        raise ValueError(f"no evaluation setting '{setting}' asks for score variants; they are: "
                         f"{', '.join(VARIANT_SETTINGS)}")
    return [NONE, *SCORE_VARIANTS.names(setting=setting)]


def checked(setting: str, name: str) -> str:
    """``name`` when ``evaluation.<setting>`` allows it; ValueError naming the setting, the value and the choices."""
    if name not in choices(setting):
        raise ValueError(f"evaluation.{setting}: {name!r} unknown; allowed: {', '.join(choices(setting))}")
    return name


def views_of(name: str) -> Views:
    """The function giving the views whose scores variant ``name`` averages (ValueError for an unknown one)."""
    return SCORE_VARIANTS.get(name)


def needs_model_pass(name: str) -> bool:
    """Whether variant ``name``'s scores need the model run again over the images."""
    return SCORE_VARIANTS.attribute(name, "model_pass")


def pass_views(name: str) -> Views:
    """The views of a variant made by a model pass of its own; ValueError for one made without."""
    if not needs_model_pass(name):
        raise ValueError(f"score variant '{name}' needs no model pass: it is made from the training's predictions "
                         f"(variants with one: {', '.join(SCORE_VARIANTS.names(model_pass=True))})")
    return views_of(name)


def scaled_by_temperature(name: str) -> bool:
    """Whether variant ``name``'s scores are divided by the temperature fitted on the validation split."""
    return SCORE_VARIANTS.attribute(name, "temperature")


def combined(*names: str) -> bool:
    """Whether the scores of these variants (at most one per setting) are made together: every pair
    of them other than ``none`` lists each other in ``combines_with``."""
    named = [name for name in names if name != NONE]
    return all(b in SCORE_VARIANTS.attribute(a, "combines_with") and a in SCORE_VARIANTS.attribute(b, "combines_with")
               for i, a in enumerate(named) for b in named[i + 1:])


def marks(*names: str) -> dict[str, str]:
    """The metrics.csv marks of the rows of the scores of these variants: per setting, in
    :data:`VARIANT_SETTINGS` order, the name of theirs of that setting, or ``none``."""
    found = {setting: NONE for setting in VARIANT_SETTINGS}
    for name in names:
        setting = SCORE_VARIANTS.attribute(name, "setting")
        if setting is not None:
            found[setting] = name
    return found


@dataclass(frozen=True)
class TableGroup:
    """The best-configuration tables' columns of the variants that share a prefix."""

    prefix: str
    setting: str
    names: tuple[str, ...]  # the variants whose rows fill the columns
    metrics: tuple[str, ...]  # shown as <prefix><metric>
    columns: dict  # more columns: table column -> metrics.csv column
    label: str  # what the columns show, for the tables' legend


def table_groups() -> list[TableGroup]:
    """The variants' columns in the best-configuration tables, in :data:`VARIANT_SETTINGS` order,
    one group per prefix; ValueError when variants of one prefix declare different columns."""
    groups: dict[str, TableGroup] = {}
    for setting in VARIANT_SETTINGS:
        for name in SCORE_VARIANTS.names(setting=setting):
            entry = SCORE_VARIANTS.entry(name).attributes
            if not entry["prefix"]:
                continue
            group = TableGroup(entry["prefix"], setting, (name,), tuple(entry["table_metrics"]),
                               dict(entry["table_columns"]), entry["label"])
            first = groups.setdefault(group.prefix, group)
            if first is not group:
                if (first.setting, first.metrics, first.columns, first.label) != \
                        (group.setting, group.metrics, group.columns, group.label):
                    raise ValueError(f"score variants {', '.join(first.names)} and {name} share the table prefix "
                                     f"'{group.prefix}' but declare different columns")
                groups[group.prefix] = TableGroup(first.prefix, first.setting, (*first.names, name), first.metrics,
                                                  first.columns, first.label)
    return list(groups.values())


def row_columns() -> list[str]:
    """The metrics.csv columns about a row's score variant: the settings' marks, then the columns
    the variants' rows add (``temperature``)."""
    columns = list(VARIANT_SETTINGS)
    for name in SCORE_VARIANTS:
        columns += [c for c in SCORE_VARIANTS.attribute(name, "table_columns").values() if c not in columns]
    return columns
