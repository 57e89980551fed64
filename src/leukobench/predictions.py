"""A trial's predictions: the file every fit writes and the evaluation reads.

A Keras training and a classical or hybrid fit each end by applying their model to the evaluated
splits (:data:`EVALUATED_SPLITS`) and writing ``predictions.parquet``; metrics, intervals and
figures are computed from it by jobs that load no model (so they never start TensorFlow, and
editing the metrics reruns no training). Its columns: ``image_id``, ``patient_id``, ``split``,
``label``, ``class_name``, ``pred``, then ``score`` (two classes: P(label 1)) or
``score_<class name>`` for each class. Its Parquet key-value metadata (``leukobench``, JSON) holds
what the evaluation needs besides: the ``trial`` (its ``approach`` and grid parameters), the
``class_names``, ``train_seconds``, ``predict_seconds`` and ``leaky`` (the training split may share
sources with the evaluated ones: augmented copies made before the split); a Keras training adds
``chance_loss``, the training loss of answering its training split's class shares, by which the
evaluation tells whether the trial learned (:mod:`leukobench.learned`).

The predicted class is the score's: ``score >= 0.5``, or the argmax of the class scores
(:func:`predict_labels`), for every kind of trial, so ``pred`` and the scores always agree.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leukobench.io import METADATA_KEY, atomic_path

EVALUATED_SPLITS = ("val", "test", "external")  # the splits a trial is evaluated on (never train)
ROW_COLUMNS = ["image_id", "patient_id", "split", "label", "class_name"]
BINARY_THRESHOLD = 0.5
METADATA_FIELDS = ("trial", "class_names", "train_seconds", "predict_seconds", "leaky")
CHANCE_LOSS = "chance_loss"  # metadata of a Keras training's predictions only (leukobench.learned.chance_loss)


def predict_labels(y_score: np.ndarray) -> np.ndarray:
    """Predicted class: ``score >= 0.5`` for binary ``(n,)`` scores, argmax for ``(n, k)``."""
    if y_score.ndim == 1:
        return (y_score >= BINARY_THRESHOLD).astype(np.int64)
    return np.argmax(y_score, axis=1).astype(np.int64)


def checked_labels(values: np.ndarray, argument: str, k: int) -> np.ndarray:
    """``values`` as int64 class labels of ``k`` classes; ``ValueError`` naming ``argument`` otherwise."""
    labels = np.asarray(values)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"{argument} must be a non-empty 1-D array of class labels, got shape {labels.shape}")
    if not (labels.dtype == bool or np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{argument} must hold integer class labels, got dtype {labels.dtype}")
    outside = (labels < 0) | (labels >= k)
    if outside.any():
        raise ValueError(f"{argument} holds label {labels[outside][0]}, outside 0..{k - 1} (class_names has {k})")
    return labels.astype(np.int64)


def scores_of(predictions: pd.DataFrame) -> np.ndarray:
    """The score array back from a predictions table: ``(n,)`` or ``(n, k)``."""
    if "score" in predictions:
        return predictions["score"].to_numpy()
    return predictions.filter(like="score_").to_numpy()


def prediction_frame(rows: pd.DataFrame, scores: np.ndarray, class_names: list[str]) -> pd.DataFrame:
    """The rows (:data:`ROW_COLUMNS`) of the images scored, with ``pred`` and the score column(s)."""
    frame = rows[ROW_COLUMNS].reset_index(drop=True)
    frame["pred"] = predict_labels(scores)
    if scores.ndim == 1:
        frame["score"] = scores
    else:
        for k, name in enumerate(class_names):
            frame[f"score_{name}"] = scores[:, k]
    return frame


def write_predictions(frame: pd.DataFrame, path: str | os.PathLike, *, trial: dict, class_names: list[str],
                      train_seconds: float, predict_seconds: float, leaky: bool,
                      chance_loss: float | None = None) -> None:
    """Write a trial's predictions and what the evaluation needs with them (atomically); a Keras
    training passes its ``chance_loss`` (:func:`leukobench.learned.chance_loss`)."""
    metadata = {"trial": trial, "class_names": list(class_names), "train_seconds": float(train_seconds),
                "predict_seconds": float(predict_seconds), "leaky": bool(leaky),
                **({CHANCE_LOSS: float(chance_loss)} if chance_loss is not None else {})}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: json.dumps(metadata)})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_predictions(path: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """A trial's predictions and their metadata; ``ValueError`` naming the file when it is not one."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    metadata = json.loads(raw) if raw else {}
    missing = [name for name in METADATA_FIELDS if name not in metadata]
    missing += [column for column in (*ROW_COLUMNS, "pred") if column not in table.column_names]
    if missing:
        raise ValueError(f"{path} is not a trial's predictions as a leukobench fit writes them (it lacks "
                         f"{', '.join(missing)}); run the workflow to fit the trial again")
    return table.to_pandas(), metadata
