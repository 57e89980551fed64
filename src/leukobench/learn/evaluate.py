"""Evaluate a trained Keras cell on the store's held-out splits: its predictions and metrics."""

from __future__ import annotations

import json
import os
import time

import pandas as pd

from leukobench.data.store import load_store
from leukobench.io import atomic_path
from leukobench.learn.bundle import TrainedModel, check_labels
from leukobench.metrics import EVALUATED_SPLITS, MIN_INTERVAL_GROUPS, metric_rows, predict_labels


def predict_store(model: TrainedModel, store_path: str | os.PathLike) -> tuple[pd.DataFrame, float]:
    """Predictions for every image of the evaluated splits, and the seconds prediction took.

    ``predictions.attrs["leaky"]`` says whether augmented copies may share sources across splits.
    """
    store = load_store(store_path)
    if store.metadata["preparation"] != model.bundle["preparation"]:
        raise ValueError(
            f"{store_path} was prepared with {store.metadata['preparation']} but the model expects "
            f"{model.bundle['preparation']}"
        )
    mask = store.frame["split"].isin(EVALUATED_SPLITS).to_numpy()
    rows = store.frame.loc[mask, ["image_id", "patient_id", "split", "label", "class_name"]].reset_index(drop=True)
    check_labels(rows["label"], model.class_names, store_path)
    started = time.perf_counter()
    scores = model.predict_scores(store.images[mask])
    seconds = time.perf_counter() - started
    rows["pred"] = predict_labels(scores)
    rows.attrs["leaky"] = bool(store.metadata.get("leaky", False))
    if scores.ndim == 1:
        rows["score"] = scores
    else:
        for k, name in enumerate(model.class_names):
            rows[f"score_{name}"] = scores[:, k]
    return rows, seconds


def evaluate_cell(model_path, store_path, predictions_path, metrics_path, cell: dict,
                  n_boot: int = 1000, seed: int = 0, min_groups: int = MIN_INTERVAL_GROUPS) -> pd.DataFrame:
    """Predict the val and test splits, write predictions.parquet and metrics.json."""
    model = TrainedModel.load(model_path)
    predictions, seconds = predict_store(model, store_path)
    cell = {**cell, "leaky": predictions.attrs["leaky"]}
    rows = metric_rows(predictions, cell, model.bundle["train_seconds"], seconds, n_boot, seed, min_groups)
    with atomic_path(predictions_path) as tmp:
        predictions.to_parquet(tmp, index=False)
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(rows, indent=2))
    return predictions
