"""Evaluate a trial from its predictions: the metrics rows of ``metrics.json``.

Every trial, Keras, hybrid or classical, is evaluated the same way, from the ``predictions.parquet``
its fit wrote (:mod:`leukobench.predictions`), by a job that loads no model: it never starts
TensorFlow, and editing the metrics or changing ``evaluation:`` reruns these jobs, not the fits.

Which scores besides the trial's own are evaluated, and how their rows are marked, is the
registry of score variants' (:mod:`leukobench.score_variants`). With ``evaluation.calibration:
temperature`` the trial's scores are also temperature-scaled (:mod:`leukobench.scoring`, fitted on
the validation split) and evaluated again: those rows say ``calibration: temperature`` (and the
``temperature``), the plain ones ``calibration: none``. With ``evaluation.tta``, a Keras trial's
test-time-augmented predictions (a model pass of their own,
:func:`leukobench.learn.saved_model.write_tta_predictions`) give rows marked ``tta: <variant>`` (e.g.
``flips``); a temperature is applied only to the scores its variant combines with (the own ones).
A temperature that cannot be fitted (:class:`leukobench.scoring.NotFitted`: too few validation
images, one class, an optimum on a bound of the search) is not applied: the calibrated rows keep
their counts, their metrics are empty and ``metric_note`` says why; the log says it in one line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from leukobench.scoring import Scoring, apply_temperature, calibration_of, digests, write_scoring
from leukobench.io import atomic_path
from leukobench.learned import judge_keras, judge_predictions, read_history
from leukobench.metrics import METRIC_NAMES, METRIC_NOTE, metric_rows
from leukobench.predictions import CHANCE_LOSS, ROW_COLUMNS, prediction_frame, read_predictions, scores_of
from leukobench.score_variants import NONE, checked, marks, scaled_by_temperature
from leukobench.subjects import MIN_INTERVAL_GROUPS


def evaluate_predictions(predictions_path: str | os.PathLike, metrics_path: str | os.PathLike,
                         scoring_path: str | os.PathLike, *, model_path: str | os.PathLike, n_boot: int = 1000,
                         seed: int = 0, min_groups: int = MIN_INTERVAL_GROUPS, subject_aggregation: str = "mean",
                         calibration: str = "none", tta: str = "none",
                         tta_path: str | os.PathLike | None = None,
                         history_path: str | os.PathLike | None = None) -> tuple[pd.DataFrame, dict]:
    """Write ``metrics.json`` (per evaluated split, the cell-level row and, where images name
    subjects, the subject-level row: :func:`leukobench.metrics.metric_rows`; with ``calibration``
    ``temperature``, the same rows again from the temperature-scaled scores) and the trial's
    ``scoring.json`` (:class:`leukobench.scoring.Scoring`, made from ``model_path`` and the
    predictions, all in the folder of ``scoring_path``); with ``tta_path``, the rows of the
    test-time-augmented predictions too, marked ``tta`` (the plain ones ``tta: none``); return the
    predictions and their metadata. Every row carries the trial's ``learned`` and ``learned_note``:
    with ``history_path`` (a Keras trial's ``history.csv``) judged on its training loss and its
    predictions, without it (a classical or hybrid trial) on its predictions alone
    (:mod:`leukobench.learned`)."""
    checked("calibration", calibration)
    checked("tta", tta)
    sources = [Path(p) for p in (model_path, predictions_path, tta_path) if p is not None]
    folder = Path(scoring_path).parent
    elsewhere = [str(p) for p in sources if p.parent.resolve() != folder.resolve()]
    if elsewhere:
        raise ValueError(f"{scoring_path}: its sources {elsewhere} must lie in the trial's folder {folder}")
    predictions, metadata = read_predictions(predictions_path)
    if predictions.empty:
        raise ValueError(f"{predictions_path} holds no predictions: the trial has no images in an evaluated split")
    class_names = metadata["class_names"]
    verdict = _verdict(predictions, metadata, predictions_path, history_path)
    print(verdict.log_line(), flush=True)

    def rows_of(frame: pd.DataFrame, scores_marks: dict, predict_seconds: float = metadata["predict_seconds"]) -> list[dict]:
        rows = metric_rows(frame, {**metadata["trial"], "leaky": metadata["leaky"]}, metadata["train_seconds"],
                           predict_seconds, n_boot, seed, min_groups, subject_aggregation, class_names)
        return [row | verdict.columns() | marks() | scores_marks for row in rows]

    variants = [(NONE, predictions, rows_of(predictions, marks()))]
    if tta_path is not None:
        augmented, augmented_metadata = read_predictions(tta_path)
        if not augmented["image_id"].equals(predictions["image_id"]):
            raise ValueError(f"{tta_path} scores other images than {predictions_path}: rerun the trial's test-time "
                             "augmentation (rule tta, or inspect with evaluation.saliency: all)")
        variants.append((tta, augmented, rows_of(augmented, marks(tta), augmented_metadata["predict_seconds"])))
    val = predictions[predictions["split"] == "val"]
    if scaled_by_temperature(calibration) and val.empty:
        raise ValueError(f"{predictions_path}: evaluation.calibration is temperature, but the trial has no "
                         "validation images to fit the temperature on; set evaluation.calibration: none")
    fit, temperature = calibration_of(calibration, val["label"].to_numpy(), scores_of(val), class_names)
    scoring = Scoring(method=calibration, fit=fit, temperature=temperature,
                      fitted_on_val_images=len(val) if scaled_by_temperature(calibration) else 0,
                      tta=tta if tta_path is not None else NONE,
                      made_from=digests(folder, [p.name for p in sources]))
    if scoring.not_fitted:
        print(f"calibration not fitted: {scoring.not_fitted}; the calibrated rows say so (metric_note) and "
              "predict gives the model's own scores", flush=True)
    elif temperature is not None:
        print(f"temperature T = {temperature:.4g} fitted on {len(val)} validation images", flush=True)
    rows = []
    for mode, frame, plain in variants:
        rows += plain
        if calibration == NONE or not scoring.calibrates(mode):
            continue
        if temperature is None:
            rows += [_not_calibrated(row, marks(mode, calibration), scoring.not_fitted) for row in plain]
            continue
        scaled = prediction_frame(frame[ROW_COLUMNS], apply_temperature(scores_of(frame), temperature), class_names)
        rows += rows_of(scaled, marks(mode, calibration) | {"temperature": temperature})
    write_scoring(scoring_path, scoring)
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    return predictions, metadata


def _not_calibrated(row: dict, scores_marks: dict, why: str) -> dict:
    """A plain row as the calibrated row (marked ``scores_marks``) of a calibration that was not
    fitted: its counts, no metrics, no temperature, and why in ``metric_note``."""
    empty = {f"{name}{end}": float("nan") for name in METRIC_NAMES for end in ("", "_low", "_high")}
    return row | empty | scores_marks | {"temperature": float("nan"), "interval_note": "",
                                         METRIC_NOTE: f"calibration not fitted: {why}"}


def _verdict(predictions: pd.DataFrame, metadata: dict, predictions_path, history_path):
    """Whether the trial learned: a Keras trial (``history_path``) by :func:`judge_keras`, with the
    chance loss its training wrote into the predictions; any other by :func:`judge_predictions`."""
    if history_path is None:
        return judge_predictions(predictions, metadata["class_names"])
    if CHANCE_LOSS not in metadata:
        raise ValueError(f"{predictions_path} lacks the training's {CHANCE_LOSS} (written by an older leukobench); "
                         "train the trial again")
    return judge_keras(read_history(history_path), predictions, metadata["class_names"], metadata[CHANCE_LOSS])
