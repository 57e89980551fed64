"""Evaluate a trained cell on the store's held-out splits; aggregate cells into one table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from leukobench.io import atomic_path
from leukobench.metrics import MIN_INTERVAL_GROUPS, metrics_table, predict_labels
from leukobench.store import load_store
from leukobench.train import TrainedModel, check_labels

EVALUATED_SPLITS = ("val", "test", "external")


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


def scores_of(predictions: pd.DataFrame) -> np.ndarray:
    """The score array back from a predictions table."""
    if "score" in predictions:
        return predictions["score"].to_numpy()
    return predictions.filter(like="score_").to_numpy()


def metric_rows(predictions: pd.DataFrame, cell: dict, train_seconds: float, predict_seconds: float,
                n_boot: int, seed: int, min_groups: int = MIN_INTERVAL_GROUPS) -> list[dict]:
    """One row per evaluated split: the cell's parameters, the metrics and their intervals (none
    where a split has fewer than ``min_groups`` subjects), timings."""
    rows = []
    total = len(predictions)
    for split, part in predictions.groupby("split", sort=False):
        row = {**cell, "split": split}
        row |= metrics_table(part["label"].to_numpy(), scores_of(part), groups=part["patient_id"].to_numpy(),
                             n_boot=n_boot, seed=seed, min_groups=min_groups)
        row |= {
            "train_seconds": train_seconds,
            "predict_seconds": predict_seconds * len(part) / total,
            "images_per_second": total / predict_seconds if predict_seconds > 0 else float("nan"),
        }
        rows.append(row)
    return rows


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


def aggregate_metrics(metric_files: list[str | os.PathLike], out_csv: str | os.PathLike) -> pd.DataFrame:
    """Concatenate every cell's metrics.json into results/report/metrics.csv, with a column ``cell``:
    the cell's folder (its model, predictions and figures)."""
    rows = [{**row, "cell": str(Path(path).parent)} for path in metric_files for row in json.loads(Path(path).read_text())]
    table = pd.DataFrame(rows)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
