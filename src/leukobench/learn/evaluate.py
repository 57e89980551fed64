"""Evaluate a cell from its predictions: the metrics rows of ``metrics.json``.

Every cell, Keras, hybrid or classical, is evaluated the same way, from the ``predictions.parquet``
its fit wrote (:mod:`leukobench.predictions`), by a job that loads no model: it never starts
TensorFlow, and editing the metrics or changing ``evaluation:`` reruns these jobs, not the fits.
"""

from __future__ import annotations

import json
import os

import pandas as pd

from leukobench.io import atomic_path
from leukobench.keys import MIN_INTERVAL_GROUPS
from leukobench.metrics import metric_rows
from leukobench.predictions import read_predictions


def evaluate_predictions(predictions_path: str | os.PathLike, metrics_path: str | os.PathLike, *,
                         n_boot: int = 1000, seed: int = 0, min_groups: int = MIN_INTERVAL_GROUPS,
                         subject_aggregation: str = "mean") -> tuple[pd.DataFrame, dict]:
    """Write ``metrics.json`` (per evaluated split, the cell-level row and, where images name
    subjects, the subject-level row: :func:`leukobench.metrics.metric_rows`) from a cell's
    predictions; return the predictions and their metadata."""
    predictions, metadata = read_predictions(predictions_path)
    if predictions.empty:
        raise ValueError(f"{predictions_path} holds no predictions: the cell has no images in an evaluated split")
    rows = metric_rows(predictions, {**metadata["cell"], "leaky": metadata["leaky"]}, metadata["train_seconds"],
                       metadata["predict_seconds"], n_boot, seed, min_groups, subject_aggregation)
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    return predictions, metadata
