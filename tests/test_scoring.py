"""Temperature scaling and the trial's scoring record (:mod:`leukobench.scoring`): fitted on
validation scores, it makes an over-confident model's held-out scores honest without changing a
predicted class; the evaluation reports it as its own rows; a fit that cannot be trusted is not
applied; ``scoring.json`` is read back only when it is what the evaluation wrote, from the files the
trial holds now."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.naive_bayes import GaussianNB

from leukobench.scoring import (FITTED_TEMPERATURES, LOG_TEMPERATURE_BOUNDS, MIN_FIT_IMAGES, NotFitted, Scoring,
                                ScoringError, apply_temperature, fit_temperature, read_scoring)
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
def predictions_file(tmp_path, splits=("val", "test"), val_label: int | None = None) -> tuple:
    """A trial's predictions.parquet (and a model file beside it); with ``val_label``, a validation
    split of that class only."""
    parts = over_confident_scores(2, seed=1)
    frames = []
    for split in splits:
        labels, scores = parts[split]
        if split == "val" and val_label is not None:
            labels, scores = labels[labels == val_label], scores[labels == val_label]
        rows = pd.DataFrame({"image_id": [f"{split}{k}" for k in range(len(labels))],
                             "patient_id": [f"{split}-s{k % 40}-{labels[k]}" for k in range(len(labels))],
                             "split": split, "label": labels, "class_name": np.where(labels == 1, "all", "hem")})
        frames.append(prediction_frame(rows, scores, ["hem", "all"]))
    path = tmp_path / "predictions.parquet"
    write_predictions(pd.concat(frames, ignore_index=True), path, trial={"approach": "cnn", "model": "m"},
                      class_names=["hem", "all"], train_seconds=1.0, predict_seconds=1.0, leaky=False)
    (tmp_path / "model.keras").write_bytes(b"the weights of one training")
    return path


def evaluate(tmp_path, path, **options):
    """The trial's evaluation, as its rule runs it: the model file beside the predictions."""
    return evaluate_predictions(path, tmp_path / "metrics.json", tmp_path / "scoring.json",
                                model_path=tmp_path / "model.keras", **{"n_boot": 100, **options})


def test_the_evaluation_adds_temperature_scaled_rows_and_writes_the_temperature(tmp_path):
    path = predictions_file(tmp_path)
    evaluate(tmp_path, path, calibration="temperature")
    rows = pd.DataFrame(json.loads((tmp_path / "metrics.json").read_text()))
    calibration = read_scoring(tmp_path)
    assert calibration.method == "temperature" and calibration.fit == "fitted"
    assert calibration.fitted_on_val_images == 1000
    plain = rows[rows["calibration"] == "none"].set_index(["split", "level"])
    scaled = rows[rows["calibration"] == "temperature"].set_index(["split", "level"])
    assert sorted(plain.index) == sorted(scaled.index) == [("test", "cell"), ("test", "subject"),
                                                            ("val", "cell"), ("val", "subject")]
    assert (scaled["temperature"] == calibration.temperature).all() and (scaled["metric_note"] == "").all()
    assert scaled.loc[("test", "cell"), "ece"] < plain.loc[("test", "cell"), "ece"]
    for metric in ("accuracy", "sensitivity", "specificity"):  # the same classes, so the same counts
        assert scaled.loc[("test", "cell"), metric] == plain.loc[("test", "cell"), metric]


def test_without_calibration_the_trial_records_none_and_predict_would_apply_nothing(tmp_path):
    evaluate(tmp_path, predictions_file(tmp_path))
    rows = json.loads((tmp_path / "metrics.json").read_text())
    assert {row["calibration"] for row in rows} == {"none"} and not any("temperature" in row for row in rows)
    scoring = read_scoring(tmp_path)
    assert (scoring.method, scoring.fit, scoring.temperature, scoring.tta) == ("none", "none", None, "none")
    assert scoring.temperature_for("none") is None


def test_temperature_without_a_validation_split_stops_naming_the_file_and_the_key(tmp_path):
    path = predictions_file(tmp_path, splits=("test",))
    with pytest.raises(ValueError, match=r"predictions\.parquet: evaluation\.calibration is temperature, but the "
                                         r"trial has no validation images"):
        evaluate(tmp_path, path, calibration="temperature")
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "scoring.json").exists()


def test_a_damaged_calibration_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "scoring.json").write_text('{"method": "temperature", "temperature": -2}')
    with pytest.raises(ScoringError, match=r"scoring\.json is not a trial's scoring .*lacks fit.*rerun the trial's "
                                           r"evaluation"):
        read_scoring(tmp_path)
    assert read_scoring(tmp_path / "elsewhere") is None


# --- a fit that cannot be trusted is not a result ----------------------------------------------
def test_a_fit_on_one_class_too_few_images_or_a_bound_of_the_search_is_refused_saying_why():
    labels, scores = over_confident_scores(2)["val"]
    with pytest.raises(NotFitted, match=r"one class only: label 1 \(all\), \d+ images"):
        fit_temperature(labels[labels == 1], scores[labels == 1], ["hem", "all"])
    few = np.r_[np.flatnonzero(labels == 0)[:3], np.flatnonzero(labels == 1)[:MIN_FIT_IMAGES - 4]]
    with pytest.raises(NotFitted, match=rf"{MIN_FIT_IMAGES - 1} validation image\(s\), fewer than the {MIN_FIT_IMAGES}"):
        fit_temperature(labels[few], scores[few])
    separable = np.where(labels == 1, 0.6, 0.4)  # every image right: sharper is always better, down to the bound
    with pytest.raises(NotFitted, match=r"optimum lies on the lower bound of the search \(T = 0\.018"):
        fit_temperature(labels, separable)
    backwards = np.where(labels == 1, 0.3, 0.7)  # every image wrong: softer is always better, up to the bound
    with pytest.raises(NotFitted, match=r"optimum lies on the upper bound of the search \(T = 54\.6"):
        fit_temperature(labels, backwards)
    assert FITTED_TEMPERATURES[0] < fit_temperature(labels, scores) < FITTED_TEMPERATURES[1]


def test_an_unfitted_calibration_is_not_applied_and_the_rows_the_log_and_the_record_say_why(tmp_path, capsys):
    """A validation split of one class (a folder dataset whose subjects hold both classes can give
    one): the calibrated rows keep their counts but no metrics, and say why; one log line; the
    record says "not fitted: ..." and gives no temperature to apply."""
    path = predictions_file(tmp_path, val_label=0)
    evaluate(tmp_path, path, calibration="temperature")
    log = capsys.readouterr().out.splitlines()
    assert len([line for line in log if "calibration not fitted" in line]) == 1
    rows = pd.DataFrame(json.loads((tmp_path / "metrics.json").read_text()))
    plain, scaled = rows[rows["calibration"] == "none"], rows[rows["calibration"] == "temperature"]
    assert len(scaled) == len(plain) and scaled["n"].tolist() == plain["n"].tolist()
    assert scaled[["accuracy", "auc", "ece", "brier", "accuracy_low", "temperature"]].isna().all().all()
    assert scaled["metric_note"].str.fullmatch(r"calibration not fitted: the validation split holds one class "
                                               r"only: label 0 \(hem\), \d+ images").all()
    assert plain["accuracy"].notna().all()
    scoring = read_scoring(tmp_path)
    assert scoring.method == "temperature" and scoring.fit.startswith("not fitted: the validation split holds one")
    assert scoring.temperature is None and scoring.temperature_for("none") is None
    scores = np.array([0.2, 0.9])
    np.testing.assert_array_equal(scoring.scaled(scores, "none"), scores)
    on_disk = json.loads((tmp_path / "scoring.json").read_text())
    assert on_disk["fit"] == scoring.fit and on_disk["temperature"] is None


def test_the_temperature_applies_to_the_plain_scores_only():
    scoring = Scoring(method="temperature", fit="fitted", temperature=2.0, fitted_on_val_images=50, tta="flips")
    scores = np.array([0.1, 0.8])
    assert scoring.temperature_for("none") == 2.0 and scoring.temperature_for("flips") is None
    np.testing.assert_array_equal(scoring.scaled(scores, "flips"), scores)
    np.testing.assert_allclose(scoring.scaled(scores, "none"), apply_temperature(scores, 2.0))


# --- scoring.json read back: only what the evaluation wrote, from the files the trial holds ---------
def evaluated_trial(tmp_path):
    evaluate(tmp_path, predictions_file(tmp_path), calibration="temperature")
    return tmp_path


def edited(trial, **changes) -> None:
    path = trial / "scoring.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


LOW, HIGH = (math.exp(bound) for bound in LOG_TEMPERATURE_BOUNDS)


@pytest.mark.parametrize("changes, message", [
    ({"temperature": 1e300}, r"temperature 1e\+300 is not one a fit gives"),
    ({"temperature": 1e-300}, r"temperature 1e-300 is not one a fit gives"),
    ({"temperature": LOW}, r"temperature 0\.0183\d* is not one a fit gives"),  # the search's bound: not a fit
    ({"temperature": HIGH}, r"temperature 54\.59\d* is not one a fit gives"),
    ({"temperature": float("nan")}, r"temperature nan is not one a fit gives"),
    ({"temperature": True}, r"temperature True is not one a fit gives"),
    ({"temperature": "2"}, r"temperature '2' is not one a fit gives"),
    ({"temperature": None}, r"temperature None is not one a fit gives"),
    ({"tta": "rot16"}, r"tta 'rot16' unknown; allowed: none, flips, rot8"),
    ({"tta": None}, r"tta None unknown"),
    ({"method": "platt"}, r"method 'platt' unknown"),
    ({"method": "none"}, r"method none with fit 'fitted'"),
    ({"fit": "maybe"}, r"fit 'maybe' is neither"),
    ({"fit": "not fitted: one class"}, r"temperature .* with fit 'not fitted: one class'"),
    ({"fitted_on_val_images": 3}, r"a temperature fitted on 3 validation images"),
    ({"fitted_on_val_images": -1}, r"fitted_on_val_images -1 is not a count"),
    ({"made_from": {}}, r"made_from \{\} is not a map"),
    ({"made_from": {"../model.keras": "0" * 64}}, r"made_from .* is not a map"),
    ({"calibrated": True}, r"has unknown key\(s\) calibrated"),
])
def test_a_scoring_file_with_values_the_evaluation_does_not_write_is_refused_naming_it(tmp_path, changes, message):
    trial = evaluated_trial(tmp_path)
    edited(trial, **changes)
    with pytest.raises(ScoringError, match=rf"{trial / 'scoring.json'} is not a trial's scoring as the evaluation "
                                           rf"writes it: {message}"):
        read_scoring(trial)


def test_the_evaluation_writes_nothing_the_reader_would_refuse(tmp_path):
    with pytest.raises(ValueError, match=r"scoring\.json: not written, temperature 1e\+300"):
        from leukobench.scoring import write_scoring
        write_scoring(tmp_path / "scoring.json", Scoring(method="temperature", fit="fitted", temperature=1e300,
                                                         fitted_on_val_images=100, made_from={"model.keras": "0" * 64}))
    assert not (tmp_path / "scoring.json").exists()


@pytest.mark.parametrize("changed", ["model.keras", "predictions.parquet"])
def test_a_scoring_file_made_from_other_files_than_the_trial_holds_is_refused_naming_them(tmp_path, changed):
    """A retrain whose evaluation did not run again: the record names the digests it was made from."""
    trial = evaluated_trial(tmp_path)
    assert set(read_scoring(trial).made_from) == {"model.keras", "predictions.parquet"}
    with open(trial / changed, "ab") as stream:
        stream.write(b"retrained")
    for model in (None, trial / "model.keras"):
        with pytest.raises(ScoringError, match=rf"scoring\.json was made from other files than the trial holds now: "
                                               rf"{trial / changed} \(sha256 [0-9a-f]{{12}}…, recorded [0-9a-f]{{12}}…\) "
                                               rf"changed since its evaluation"):
            read_scoring(trial, model)


def test_a_model_the_record_was_not_made_from_is_refused(tmp_path):
    trial = evaluated_trial(tmp_path)
    other = tmp_path / "copy" / "best.keras"
    other.parent.mkdir()
    other.write_bytes((trial / "model.keras").read_bytes())
    with pytest.raises(ScoringError, match=r"made from model\.keras, predictions\.parquet, not from the model .*best\.keras"):
        read_scoring(trial, other)
    assert read_scoring(trial, trial / "model.keras").fit == "fitted"


def test_a_folder_in_place_of_the_scoring_file_or_none_beside_an_evaluation_is_refused(tmp_path):
    trial = evaluated_trial(tmp_path)
    (trial / "scoring.json").unlink()
    with pytest.raises(ScoringError, match=r"scoring\.json: missing, but the trial was evaluated \(metrics\.json beside"):
        read_scoring(trial)
    (trial / "scoring.json").mkdir()
    with pytest.raises(ScoringError, match=r"scoring\.json: is a folder, not the trial's scoring"):
        read_scoring(trial)
    (trial / "scoring.json").rmdir()
    (trial / "scoring.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ScoringError, match=r"scoring\.json: cannot be read as the trial's scoring"):
        read_scoring(trial)
    (trial / "scoring.json").unlink()
    (trial / "metrics.json").unlink()
    assert read_scoring(trial) is None  # never evaluated
