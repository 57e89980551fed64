"""Evaluate a cell from its predictions: the metrics rows of ``metrics.json``.

Every cell, Keras, hybrid or classical, is evaluated the same way, from the ``predictions.parquet``
its fit wrote (:mod:`leukobench.predictions`), by a job that loads no model: it never starts
TensorFlow, and editing the metrics or changing ``evaluation:`` reruns these jobs, not the fits.

With ``evaluation.calibration: temperature`` the cell's scores are also temperature-scaled
(:mod:`leukobench.scoring`, fitted on the validation split) and evaluated again: those rows say
``calibration: temperature`` (and the ``temperature``), the plain ones ``calibration: none``. With
``evaluation.tta``, a Keras cell's test-time-augmented predictions (a model pass of their own,
:func:`leukobench.learn.bundle.write_tta_predictions`) give rows marked ``tta: flips`` or ``rot8``.
"""

from __future__ import annotations

import json
import os

import pandas as pd

from leukobench.scoring import CALIBRATIONS, apply_temperature, fit_temperature, write_scoring
from leukobench.io import atomic_path
from leukobench.keys import MIN_INTERVAL_GROUPS
from leukobench.metrics import metric_rows
from leukobench.predictions import ROW_COLUMNS, prediction_frame, read_predictions, scores_of


def evaluate_predictions(predictions_path: str | os.PathLike, metrics_path: str | os.PathLike,
                         scoring_path: str | os.PathLike, *, n_boot: int = 1000, seed: int = 0,
                         min_groups: int = MIN_INTERVAL_GROUPS, subject_aggregation: str = "mean",
                         calibration: str = "none", tta: str = "none",
                         tta_path: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """Write ``metrics.json`` (per evaluated split, the cell-level row and, where images name
    subjects, the subject-level row: :func:`leukobench.metrics.metric_rows`; with ``calibration``
    ``temperature``, the same rows again from the temperature-scaled scores) and the cell's
    ``scoring.json`` (:mod:`leukobench.scoring`) from its predictions; with ``tta_path``, the rows of the test-time-augmented
    predictions too, marked ``tta`` (the plain ones ``tta: none``); return the predictions and their
    metadata."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"evaluation.calibration: '{calibration}' unknown; allowed: {', '.join(CALIBRATIONS)}")
    predictions, metadata = read_predictions(predictions_path)
    if predictions.empty:
        raise ValueError(f"{predictions_path} holds no predictions: the cell has no images in an evaluated split")

    def rows_of(frame: pd.DataFrame, marks: dict, predict_seconds: float = metadata["predict_seconds"]) -> list[dict]:
        rows = metric_rows(frame, {**metadata["cell"], "leaky": metadata["leaky"]}, metadata["train_seconds"],
                           predict_seconds, n_boot, seed, min_groups, subject_aggregation)
        return [row | {"calibration": "none", "tta": "none"} | marks for row in rows]

    rows = rows_of(predictions, {})
    if tta_path is not None:
        augmented, augmented_metadata = read_predictions(tta_path)
        if not augmented["image_id"].equals(predictions["image_id"]):
            raise ValueError(f"{tta_path} scores other images than {predictions_path}: rerun the cell's test-time "
                             "augmentation (rule tta, or inspect with evaluation.saliency: all)")
        rows += rows_of(augmented, {"tta": tta}, augmented_metadata["predict_seconds"])
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
    write_scoring(scoring_path, calibration, temperature, fitted_on, tta if tta_path is not None else "none")
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    return predictions, metadata
