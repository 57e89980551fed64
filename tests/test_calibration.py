"""Temperature scaling: fitted on validation scores, it makes an over-confident model's held-out
scores honest without changing a predicted class; the evaluation reports it as its own rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.naive_bayes import GaussianNB

from leukobench.scoring import apply_temperature, fit_temperature, read_scoring
from leukobench.learn.evaluate import evaluate_predictions
from leukobench.metrics import point_metrics
from leukobench.predictions import predict_labels, prediction_frame, write_predictions

COPIES = 8  # each informative feature repeated: Naive Bayes counts its evidence 8 times over


def over_confident_scores(n_classes: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Labels and scores of a Gaussian Naive Bayes model trained on features that are copies of each
    other: it assumes them independent, so it is far too sure. Train, val and test are disjoint."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, 3000)
    centres = rng.normal(0, 0.6, (n_classes, 3))
    signal = centres[labels] + rng.normal(0, 1, (len(labels), 3))
    features = np.repeat(signal, COPIES, axis=1) + rng.normal(0, 0.05, (len(labels), 3 * COPIES))
    parts = {"train": slice(0, 1000), "val": slice(1000, 2000), "test": slice(2000, 3000)}
    model = GaussianNB().fit(features[parts["train"]], labels[parts["train"]])
    out = {}
    for name in ("val", "test"):
        scores = model.predict_proba(features[parts[name]])
        out[name] = (labels[parts[name]], scores[:, 1] if n_classes == 2 else scores)
    return out


@pytest.mark.parametrize("n_classes", [2, 3])
def test_temperature_fitted_on_val_lowers_the_test_ece_of_an_over_confident_model_and_keeps_every_class(n_classes):
    parts = over_confident_scores(n_classes)
    temperature = fit_temperature(*parts["val"])
    labels, scores = parts["test"]
    calibrated = apply_temperature(scores, temperature)
    before, after = point_metrics(labels, scores)["ece"], point_metrics(labels, calibrated)["ece"]
    assert temperature > 2, f"an over-confident model needs softening (T > 1), fitted T = {temperature:.2f}"
    assert after < before / 2, f"test ECE {before:.3f} before, {after:.3f} after temperature scaling"
    np.testing.assert_array_equal(predict_labels(calibrated), predict_labels(scores))


def test_an_under_confident_model_is_sharpened():
    labels, scores = over_confident_scores(2)["val"]
    calibrated = apply_temperature(scores, fit_temperature(labels, scores))
    timid = apply_temperature(calibrated, 4.0)  # the calibrated model made four times too unsure
    temperature = fit_temperature(labels, timid)
    assert temperature == pytest.approx(0.25, rel=0.05)
    assert point_metrics(labels, apply_temperature(timid, temperature))["ece"] < point_metrics(labels, timid)["ece"]


def test_scores_of_zero_and_one_get_finite_scaled_scores():
    scaled = apply_temperature(np.array([0.0, 1.0, 0.5]), 2.0)
    assert np.all(np.isfinite(scaled)) and scaled[2] == pytest.approx(0.5)
    assert 0 < scaled[0] < 0.5 < scaled[1] < 1


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_a_temperature_that_is_not_positive_is_refused(temperature):
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        apply_temperature(np.array([0.2, 0.7]), temperature)


# --- through the evaluation --------------------------------------------------------------------
def predictions_file(tmp_path, splits=("val", "test")) -> tuple:
    parts = over_confident_scores(2, seed=1)
    frames = []
    for split in splits:
        labels, scores = parts[split]
        rows = pd.DataFrame({"image_id": [f"{split}{k}" for k in range(len(labels))],
                             "patient_id": [f"{split}-s{k % 40}-{labels[k]}" for k in range(len(labels))],
                             "split": split, "label": labels, "class_name": np.where(labels == 1, "all", "hem")})
        frames.append(prediction_frame(rows, scores, ["hem", "all"]))
    path = tmp_path / "predictions.parquet"
    write_predictions(pd.concat(frames, ignore_index=True), path, cell={"approach": "cnn", "model": "m"},
                      class_names=["hem", "all"], train_seconds=1.0, predict_seconds=1.0, leaky=False)
    return path


def test_the_evaluation_adds_temperature_scaled_rows_and_writes_the_temperature(tmp_path):
    path = predictions_file(tmp_path)
    evaluate_predictions(path, tmp_path / "metrics.json", tmp_path / "scoring.json", n_boot=100,
                         calibration="temperature")
    rows = pd.DataFrame(json.loads((tmp_path / "metrics.json").read_text()))
    calibration = read_scoring(tmp_path)
    assert calibration["method"] == "temperature" and calibration["fitted_on_val_images"] == 1000
    plain = rows[rows["calibration"] == "none"].set_index(["split", "level"])
    scaled = rows[rows["calibration"] == "temperature"].set_index(["split", "level"])
    assert sorted(plain.index) == sorted(scaled.index) == [("test", "cell"), ("test", "subject"),
                                                            ("val", "cell"), ("val", "subject")]
    assert (scaled["temperature"] == calibration["temperature"]).all()
    assert scaled.loc[("test", "cell"), "ece"] < plain.loc[("test", "cell"), "ece"]
    for metric in ("accuracy", "sensitivity", "specificity"):  # the same classes, so the same counts
        assert scaled.loc[("test", "cell"), metric] == plain.loc[("test", "cell"), metric]


def test_without_calibration_the_cell_records_none_and_predict_would_apply_nothing(tmp_path):
    evaluate_predictions(predictions_file(tmp_path), tmp_path / "metrics.json", tmp_path / "scoring.json",
                         n_boot=100)
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert {row["calibration"] for row in rows} == {"none"} and not any("temperature" in row for row in rows)
    assert read_scoring(tmp_path) == {"method": "none", "temperature": 1.0, "fitted_on_val_images": 0, "tta": "none"}


def test_temperature_without_a_validation_split_stops_naming_the_file_and_the_key(tmp_path):
    path = predictions_file(tmp_path, splits=("test",))
    with pytest.raises(ValueError, match=r"predictions\.parquet: evaluation\.calibration is temperature, but the "
                                         r"cell has no validation images"):
        evaluate_predictions(path, tmp_path / "metrics.json", tmp_path / "scoring.json", calibration="temperature")
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "scoring.json").exists()


def test_a_damaged_calibration_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "scoring.json").write_text('{"method": "temperature", "temperature": -2}')
    with pytest.raises(ValueError, match=r"scoring\.json is not a cell's scoring .*delete it and rerun"):
        read_scoring(tmp_path)
    assert read_scoring(tmp_path / "elsewhere") is None
