"""A study's published numbers: the metric names a preset's ``published:`` section may use, and its check.

The planning side checks the section when the run starts (:func:`published_problems`, through
:func:`leukobench.plan.config.config_problems`); the report's reproduction table
(:mod:`leukobench.report.tables`) reads the same names. Here, in the ground floor, so that the
planning layer does not import the report.
"""

from __future__ import annotations

from leukobench.keys import TRIAL_KEYS
from leukobench.metrics import METRIC_NAMES

# a published metric that is the same quantity as one of ours under another name
METRIC_ALIASES = {"weighted_recall": "accuracy"}  # support-weighted recall is accuracy, by definition
NOT_COMPUTED = {
    "weighted_precision": "leukobench does not compute support-weighted precision",
    "negative_precision": "leukobench does not compute the precision of the negative (healthy) class",
    "negative_f1": "leukobench does not compute the F1 score of the negative (healthy) class",
}
PUBLISHED_METRICS = (*METRIC_NAMES, *METRIC_ALIASES, *NOT_COMPUTED)


def published_problems(published: dict) -> list[str]:
    """What is wrong with a ``published`` section: unknown trial keys or metric names, unmapped data sets."""
    problems = []
    data = published.get("data", {})
    for i, entry in enumerate(published.get("results", [])):
        where = f"published.results[{i}] ({entry.get('source', '?')})"
        unknown = sorted(set(entry.get("trial", {})) - set(TRIAL_KEYS) - {"dataset"})
        if unknown:
            problems.append(f"{where}.trial: {unknown} are not trial keys; allowed: {list(TRIAL_KEYS)}")
        if "dataset" in entry.get("trial", {}):
            problems.append(f"{where}.trial.dataset: name the study's data set with `data:` instead, mapped in published.data")
        if entry.get("data") not in data:
            problems.append(f"{where}.data: '{entry.get('data')}' is not a key of published.data {sorted(data)}")
        metrics = sorted(set(entry) - {"source", "data", "trial", "split", "note"})
        if not metrics:
            problems.append(f"{where}: no metric value given")
        for name in metrics:
            if name not in PUBLISHED_METRICS:
                problems.append(f"{where}: '{name}' is not a metric; allowed: {list(PUBLISHED_METRICS)}")
    return problems


def mapped_datasets(published: dict, data: str) -> list[str]:
    """The datasets of this run that stand for the study's data set ``data`` (``published.data``: one
    name, a list of them, e.g. the two image sets of one data set when the study does not say which
    it read, or null: none)."""
    mapped = published["data"].get(data)
    return [] if mapped is None else [mapped] if isinstance(mapped, str) else list(mapped)
