"""Classical classifiers: the registry, and learning tested by learning.

Every classifier beats chance on the disc stores of ``test_features.py`` (pixels and HOG + PCA),
two are at chance when the training labels are shuffled, four classes work end to end, nothing
of val or test reaches the fit, and a failing fit leaves no files.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.preprocessing import StandardScaler
from test_features import FOUR_CLASSES, binary_store, four_class_store

from leukobench.learn.classical import (
    CLASSIFIERS,
    create_classifier,
    final_estimator,
    fit_classical_trial,
    list_classifiers,
    load_classical,
)
from leukobench.learn.feature_store import load_features, write_features
from leukobench.learn.feature_extractors import extract_features
from leukobench.metrics import METRIC_NAMES
from leukobench.metrics import aggregate_metrics
from leukobench.learn.evaluate import evaluate_predictions

N_BOOT = 100  # where a test reads the intervals
FEW_BOOT = 5  # elsewhere: the bootstrap's per-resample AUC dominates the run time
CHANCE = 0.5  # the store balances every split
KERAS_PREDICTION_COLUMNS = ["image_id", "patient_id", "split", "label", "class_name", "pred", "score"]
TIMING_KEYS = {"train_seconds", "predict_seconds", "images_per_second"}
HOG_COMPONENTS = 20  # the stores hold ~150 train images; Zhang's 100 components would be mostly noise
PERMUTATIONS = 3  # shuffled-label runs averaged: one run's accuracy varies with the permutation


@pytest.fixture(scope="module")
def feature_paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("classical")
    store = binary_store(root)
    paths = {name: root / f"{name}.parquet" for name in ("pixels", "hog_pca")}
    extract_features(store, "pixels", paths["pixels"])
    extract_features(store, "hog_pca", paths["hog_pca"], pca_components=HOG_COMPONENTS)
    return paths


@pytest.fixture(scope="module")
def four_class_features(tmp_path_factory):
    root = tmp_path_factory.mktemp("four")
    path = root / "hog_pca.parquet"
    extract_features(four_class_store(root), "hog_pca", path, pca_components=HOG_COMPONENTS)
    return path


def run_trial(features_path, classifier, out, n_boot=FEW_BOOT, bootstrap_seed=0, **kwargs):
    """Fit one trial into ``out`` and evaluate it as the workflow does; the metrics rows by split, and the predictions."""
    trial = {"features": features_path.stem, "classifier": classifier, "seed": kwargs.get("seed", 0)}
    fit_classical_trial(features_path, classifier, out / "model.joblib", out / "predictions.parquet", trial, **kwargs)
    evaluate_predictions(out / "predictions.parquet", out / "metrics.json", out / "scoring.json",
                         model_path=out / "model.joblib", n_boot=n_boot, seed=bootstrap_seed)
    rows = json.loads((out / "metrics.json").read_text())
    return {row["split"]: row for row in rows if row["level"] == "cell"}, pd.read_parquet(out / "predictions.parquet")


def with_shuffled_training_labels(features_path, out_path, seed=0):
    """The same feature store with the train split's labels permuted (val and test untouched)."""
    rows, features, metadata = load_features(features_path)
    train = np.flatnonzero(rows["split"].to_numpy() == "train")
    labels = rows["label"].to_numpy().copy()
    labels[train] = labels[np.random.default_rng(seed).permutation(train)]
    write_features(rows.assign(label=labels), features, metadata, out_path)
    return out_path


# ----------------------------------------------------------------------------- registry


def test_registry_lists_every_classifier():
    assert list_classifiers() == sorted(CLASSIFIERS) == ["knn", "lr", "mlp", "nb", "rf", "sgd", "svm"]


@pytest.mark.parametrize("name", list_classifiers())
def test_builders_give_unfitted_pipelines_with_probabilities(name):
    pipeline = create_classifier(name, seed=3, threads=2)
    assert hasattr(pipeline, "predict_proba")
    final = final_estimator(pipeline)
    if "random_state" in final.get_params():
        assert final.get_params()["random_state"] == 3
    if name in {"svm", "rf", "knn", "sgd"}:  # LogisticRegression's n_jobs has no effect since scikit-learn 1.8
        assert pipeline[-1].get_params(deep=False)["n_jobs"] == 2
    assert isinstance(pipeline[0], StandardScaler) == (name not in {"nb", "rf", "knn"})


def test_svm_probabilities_are_platt_scaled_out_of_fold():
    last = create_classifier("svm")[-1]
    assert isinstance(last, CalibratedClassifierCV)
    assert (last.method, last.cv, last.ensemble) == ("sigmoid", 5, False)


def test_params_reach_the_final_estimator():
    assert final_estimator(create_classifier("svm", C=10.0)).C == 10.0
    assert final_estimator(create_classifier("rf", n_estimators=7, class_weight="balanced")).get_params()[
        "n_estimators"] == 7
    assert final_estimator(create_classifier("lr", class_weight="balanced")).class_weight == "balanced"


def test_unknown_classifier_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown classifier 'xgboost'.*knn, lr, mlp, nb, rf, sgd, svm"):
        create_classifier("xgboost")


@pytest.mark.parametrize("name, params, bad", [
    ("svm", {"gamma_scale": 2}, "gamma_scale"),
    ("rf", {"trees": 10}, "trees"),
    ("knn", {"class_weight": "balanced"}, "class_weight"),
])
def test_unknown_parameter_is_named(name, params, bad):
    with pytest.raises(ValueError, match=rf"classifier '{name}' .* has no parameter '{bad}'"):
        create_classifier(name, **params)


# ----------------------------------------------------------------------------- learning


@pytest.mark.parametrize("features", ["pixels", "hog_pca"])
@pytest.mark.parametrize("name", list_classifiers())
def test_every_classifier_learns_the_known_signal(feature_paths, tmp_path, name, features):
    metrics, predictions = run_trial(feature_paths[features], name, tmp_path, n_boot=N_BOOT)
    test = metrics["test"]
    assert test["accuracy"] >= CHANCE + 0.3, test
    assert test["accuracy_low"] > CHANCE, test
    assert test["auc"] >= 0.9, test
    assert set(predictions["split"]) == {"val", "test"}


@pytest.mark.parametrize("name", ["lr", "rf"])
def test_shuffled_training_labels_give_chance(feature_paths, tmp_path, name):
    accuracies = []
    for seed in range(PERMUTATIONS):
        shuffled = with_shuffled_training_labels(feature_paths["hog_pca"], tmp_path / f"shuffled{seed}.parquet", seed)
        accuracies.append(run_trial(shuffled, name, tmp_path / str(seed))[0]["test"]["accuracy"])
    assert abs(np.mean(accuracies) - CHANCE) <= 0.1, accuracies
    assert max(accuracies) < CHANCE + 0.25, accuracies  # every trained classifier reaches CHANCE + 0.3


@pytest.mark.parametrize("name", list_classifiers())
def test_four_classes_end_to_end(four_class_features, tmp_path, name):
    metrics, predictions = run_trial(four_class_features, name, tmp_path)
    score_columns = [f"score_{c}" for c in FOUR_CLASSES]
    assert list(predictions.columns) == KERAS_PREDICTION_COLUMNS[:-1] + score_columns
    scores = predictions[score_columns].to_numpy()
    np.testing.assert_allclose(scores.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(predictions["pred"], scores.argmax(axis=1))
    assert metrics["test"]["accuracy"] >= 0.7, metrics["test"]  # chance is 0.25


# ----------------------------------------------------------------------------- outputs


def test_outputs_match_a_keras_trial(feature_paths, tmp_path):
    metrics, predictions = run_trial(feature_paths["hog_pca"], "svm", tmp_path)
    assert list(predictions.columns) == KERAS_PREDICTION_COLUMNS
    np.testing.assert_array_equal(predictions["pred"], (predictions["score"] >= 0.5).astype(int))
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert [(row["split"], row["level"]) for row in on_disk] == [("val", "cell"), ("val", "subject"), ("test", "cell"),
                                                                 ("test", "subject")]
    subjects = predictions.groupby("split")["patient_id"].nunique()
    assert [row["n"] for row in on_disk if row["level"] == "subject"] == [subjects["val"], subjects["test"]]
    rows_on_disk = [row for row in on_disk if row["level"] == "cell"]
    trial_keys = {"features", "classifier", "seed", "leaky", "level"}  # the trial, whether its store leaks augmented copies
    interval_keys = {f"{m}_{end}" for m in METRIC_NAMES for end in ("low", "high")}
    assert set(rows_on_disk[0]) == trial_keys | {"split", "n", "majority_rate"} | set(METRIC_NAMES) | interval_keys | TIMING_KEYS | {
        "interval_groups", "interval_note", "metric_note", "calibration", "tta", "learned", "learned_note"}
    assert {(row["calibration"], row["tta"]) for row in on_disk} == {("none", "none")}  # the scores as the fit gave them
    assert rows_on_disk[1]["n"] == int((predictions["split"] == "test").sum())
    assert all(row["train_seconds"] > 0 and row["images_per_second"] > 0 for row in rows_on_disk)

    # the saved model gives the scores it was evaluated with
    saved = load_classical(tmp_path / "model.joblib")
    rows, features, _ = load_features(feature_paths["hog_pca"])
    held_out = rows["split"].isin(["val", "test"]).to_numpy()
    np.testing.assert_allclose(saved["estimator"].predict_proba(features[held_out])[:, 1], predictions["score"])
    assert saved["classifier"] == "svm" and saved["class_names"] == ["hem", "all"]
    assert saved["features"]["extractor"] == "hog_pca"


def test_the_bootstrap_takes_the_evaluation_seed_and_the_classifier_the_trials(feature_paths, tmp_path):
    """evaluation.seed seeds the intervals of every approach (a Keras trial's evaluation takes it too); the
    trial's seed seeds the classifier only. Naive Bayes fits the same whatever its seed; shuffled training
    labels keep its test scores away from a perfect score, whose intervals no resampling moves."""
    shuffled = with_shuffled_training_labels(feature_paths["hog_pca"], tmp_path / "shuffled.parquet")

    def intervals(out, **seeds):
        metrics, _ = run_trial(shuffled, "nb", tmp_path / out, n_boot=N_BOOT, **seeds)
        return pd.Series(metrics["test"]).filter(regex="_(low|high)$")

    reference = intervals("a", seed=0, bootstrap_seed=0)
    assert reference.notna().all() and (reference.filter(like="accuracy_") < 1).all(), reference
    assert intervals("b", seed=7, bootstrap_seed=0).equals(reference)  # the trial's seed: the same intervals
    assert not intervals("c", seed=0, bootstrap_seed=1).equals(reference)  # evaluation.seed: other resamples
    assert load_classical(tmp_path / "b" / "model.joblib")["seed"] == 7


def test_metrics_csv_writes_the_integer_keys_of_every_approach_as_integers(feature_paths, tmp_path):
    """A classical trial has no epochs nor batch size: beside a Keras trial's rows in metrics.csv its trials
    are empty and the Keras trial's read 15 and 32, not 15.0 and 32.0."""
    run_trial(feature_paths["pixels"], "nb", tmp_path / "classical")
    rows = json.loads((tmp_path / "classical" / "metrics.json").read_text())
    keras = [{"approach": "cnn", "size": 32, "model": "abed_cnn", "epochs": 15, "batch_size": 32,
              **{k: v for k, v in row.items() if k not in ("features", "classifier")}} for row in rows]
    (tmp_path / "cnn").mkdir()
    (tmp_path / "cnn" / "metrics.json").write_text(json.dumps(keras))
    rows = [{**row, "approach": "classical", "size": 32} for row in rows]
    (tmp_path / "classical" / "metrics.json").write_text(json.dumps(rows))
    aggregate_metrics([tmp_path / "cnn" / "metrics.json", tmp_path / "classical" / "metrics.json"], tmp_path / "metrics.csv")
    with open(tmp_path / "metrics.csv", newline="") as table:
        written = list(csv.DictReader(table))
    assert [row["epochs"] for row in written] == ["15"] * 4 + [""] * 4  # val and test, each at cell and subject level
    assert [row["batch_size"] for row in written] == ["32"] * 4 + [""] * 4
    for key in ("size", "seed", "n", "interval_groups"):
        assert all(row[key].isdigit() for row in written), (key, [row[key] for row in written])
    read = pd.read_csv(tmp_path / "metrics.csv")  # as the report's scripts read it
    assert read["epochs"].tolist()[:4] == [15] * 4 and read["epochs"].isna().tolist() == [False] * 4 + [True] * 4


@pytest.mark.parametrize("name", ["svm", "lr"])
def test_val_and_test_features_do_not_reach_the_fit(feature_paths, tmp_path, name):
    rows, features, metadata = load_features(feature_paths["pixels"])
    test = (rows["split"] == "test").to_numpy()
    noisy = features.copy()
    noisy[test] = np.random.default_rng(0).uniform(size=noisy[test].shape).astype(np.float32)
    write_features(rows, noisy, metadata, tmp_path / "noisy.parquet")
    _, original = run_trial(feature_paths["pixels"], name, tmp_path / "a")
    _, altered = run_trial(tmp_path / "noisy.parquet", name, tmp_path / "b")
    val = original["split"] == "val"
    np.testing.assert_array_equal(altered.loc[val, "score"], original.loc[val, "score"])
    assert not np.allclose(altered.loc[~val, "score"], original.loc[~val, "score"])


def test_a_failing_fit_leaves_no_files(feature_paths, tmp_path):
    out = tmp_path / "trial"
    with pytest.raises(ValueError, match="C"):
        run_trial(feature_paths["pixels"], "svm", out, params={"C": -1.0})
    assert not out.exists() or list(out.iterdir()) == []


def test_a_train_split_of_one_class_is_refused(feature_paths, tmp_path):
    rows, features, metadata = load_features(feature_paths["pixels"])
    write_features(rows.assign(label=rows["label"].where(rows["split"] != "train", 1)), features, metadata,
                   tmp_path / "one_class.parquet")
    with pytest.raises(ValueError, match="fewer than two classes"):
        run_trial(tmp_path / "one_class.parquet", "rf", tmp_path / "trial")
    assert not (tmp_path / "trial").exists() or list((tmp_path / "trial").iterdir()) == []


def test_an_unknown_classifier_fails_before_reading(tmp_path):
    with pytest.raises(ValueError, match="unknown classifier 'boost'"):
        fit_classical_trial(tmp_path / "missing.parquet", "boost", tmp_path / "m", tmp_path / "p", {})
    assert list(tmp_path.iterdir()) == []
