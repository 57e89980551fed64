"""A trial's predictions file: what every fit writes and the evaluation reads (no model loaded)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from leukobench.learn.evaluate import evaluate_predictions
from leukobench.predictions import prediction_frame, read_predictions, scores_of, write_predictions

TRIAL = {"approach": "cnn", "model": "abed_cnn", "size": 32, "seed": 0}


def rows(n: int, subjects: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    return pd.DataFrame({"image_id": [f"i{k}" for k in range(n)], "patient_id": [f"p{k % subjects}" for k in range(n)],
                         "split": ["val", "test"] * (n // 2), "label": labels,
                         "class_name": np.where(labels == 1, "all", "hem"), "source": "not kept"})


def written(tmp_path, scores, class_names=("hem", "all"), n=None, **metadata):
    frame = prediction_frame(rows(len(scores) if n is None else n), np.asarray(scores), list(class_names))
    path = tmp_path / "predictions.parquet"
    write_predictions(frame, path, **{"trial": TRIAL, "class_names": list(class_names), "train_seconds": 12.5,
                                      "predict_seconds": 0.5, "leaky": False, **metadata})
    return path, frame


def test_a_round_trip_keeps_the_scores_the_predicted_class_and_what_the_evaluation_needs(tmp_path):
    scores = np.random.default_rng(1).random(40)
    path, frame = written(tmp_path, scores)
    back, metadata = read_predictions(path)
    assert list(back.columns) == ["image_id", "patient_id", "split", "label", "class_name", "pred", "score"]
    pd.testing.assert_frame_equal(back, frame)
    np.testing.assert_array_equal(back["pred"], scores >= 0.5)
    assert metadata == {"trial": TRIAL, "class_names": ["hem", "all"], "train_seconds": 12.5, "predict_seconds": 0.5,
                        "leaky": False}


def test_class_scores_get_a_column_each_and_the_argmax_as_the_predicted_class(tmp_path):
    scores = np.random.default_rng(2).dirichlet(np.ones(3), 30)
    path, _ = written(tmp_path, scores, class_names=("a", "b", "c"))
    back, _ = read_predictions(path)
    assert [c for c in back if c.startswith("score")] == ["score_a", "score_b", "score_c"]
    np.testing.assert_array_equal(scores_of(back), scores)
    np.testing.assert_array_equal(back["pred"], scores.argmax(axis=1))


def test_a_file_that_is_not_a_trials_predictions_is_refused_naming_it_and_what_it_lacks(tmp_path):
    path = tmp_path / "other.parquet"
    rows(10).to_parquet(path)
    with pytest.raises(ValueError, match=r"other\.parquet is not a trial's predictions .*lacks trial, class_names, "
                                         r"train_seconds, predict_seconds, leaky, pred"):
        read_predictions(path)


def test_the_evaluation_takes_the_trial_and_timings_from_the_file(tmp_path):
    labels = rows(60)["label"].to_numpy()
    path, _ = written(tmp_path, np.where(labels == 1, 0.9, 0.1), leaky=True)  # a perfect trial
    (tmp_path / "model.keras").write_bytes(b"the model its scoring.json names")
    evaluate_predictions(path, tmp_path / "metrics.json", tmp_path / "scoring.json", model_path=tmp_path / "model.keras",
                         n_boot=50, seed=0, min_groups=2)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [row["split"] for row in metrics] == ["val", "test"]
    for row in metrics:
        assert {key: row[key] for key in TRIAL} == TRIAL and row["leaky"] is True
        assert row["accuracy"] == row["auc"] == 1.0 and row["n"] == 30
        assert row["train_seconds"] == 12.5 and row["predict_seconds"] == pytest.approx(0.25)


def test_no_predictions_to_evaluate_is_an_error_naming_the_file(tmp_path):
    path, _ = written(tmp_path, np.array([]), n=0)
    with pytest.raises(ValueError, match=r"predictions\.parquet holds no predictions"):
        evaluate_predictions(path, tmp_path / "metrics.json", tmp_path / "scoring.json", model_path=tmp_path / "model.keras")
    assert not (tmp_path / "metrics.json").exists()
