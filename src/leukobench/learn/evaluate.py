"""Evaluate a cell from its predictions: the metrics rows of ``metrics.json``.

Every cell, Keras, hybrid or classical, is evaluated the same way, from the ``predictions.parquet``
its fit wrote (:mod:`leukobench.predictions`), by a job that loads no model: it never starts
TensorFlow, and editing the metrics or changing ``evaluation:`` reruns these jobs, not the fits.

With ``evaluation.calibration: temperature`` the cell's scores are also temperature-scaled
(:mod:`leukobench.calibration`, fitted on the validation split) and evaluated again: those rows say
``calibration: temperature`` (and the ``temperature``), the plain ones ``calibration: none``.
"""

from __future__ import annotations

import json
import os

import pandas as pd

from leukobench.calibration import CALIBRATIONS, apply_temperature, fit_temperature, write_calibration
from leukobench.io import atomic_path
from leukobench.keys import MIN_INTERVAL_GROUPS
from leukobench.metrics import metric_rows
from leukobench.predictions import ROW_COLUMNS, prediction_frame, read_predictions, scores_of


def evaluate_predictions(predictions_path: str | os.PathLike, metrics_path: str | os.PathLike,
                         calibration_path: str | os.PathLike, *, n_boot: int = 1000, seed: int = 0,
                         min_groups: int = MIN_INTERVAL_GROUPS, subject_aggregation: str = "mean",
                         calibration: str = "none") -> tuple[pd.DataFrame, dict]:
    """Write ``metrics.json`` (per evaluated split, the cell-level row and, where images name
    subjects, the subject-level row: :func:`leukobench.metrics.metric_rows`; with ``calibration``
    ``temperature``, the same rows again from the temperature-scaled scores) and the cell's
    ``calibration.json`` from its predictions; return the predictions and their metadata."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"evaluation.calibration: '{calibration}' unknown; allowed: {', '.join(CALIBRATIONS)}")
    predictions, metadata = read_predictions(predictions_path)
    if predictions.empty:
        raise ValueError(f"{predictions_path} holds no predictions: the cell has no images in an evaluated split")

    def rows_of(frame: pd.DataFrame, marks: dict) -> list[dict]:
        rows = metric_rows(frame, {**metadata["cell"], "leaky": metadata["leaky"]}, metadata["train_seconds"],
                           metadata["predict_seconds"], n_boot, seed, min_groups, subject_aggregation)
        return [row | marks for row in rows]

    rows = rows_of(predictions, {"calibration": "none"})
    temperature, fitted_on = 1.0, 0
    if calibration == "temperature":
        val = predictions[predictions["split"] == "val"]
        if val.empty:
            raise ValueError(f"{predictions_path}: evaluation.calibration is temperature, but the cell has no "
                             "validation images to fit the temperature on; set evaluation.calibration: none")
        temperature, fitted_on = fit_temperature(val["label"].to_numpy(), scores_of(val)), len(val)
        scaled = prediction_frame(predictions[ROW_COLUMNS], apply_temperature(scores_of(predictions), temperature),
                                  metadata["class_names"])
        rows += rows_of(scaled, {"calibration": "temperature", "temperature": temperature})
    write_calibration(calibration_path, calibration, temperature, fitted_on)
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    return predictions, metadata
