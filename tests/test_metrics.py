"""Tests of leukobench.metrics: point estimates against scikit-learn, bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, confusion_matrix, f1_score, roc_auc_score

from leukobench import metrics
from leukobench.metrics import (CALIBRATION_METRICS, METRIC_NAMES, bootstrap_intervals, majority_rate, metrics_table,
                                point_metrics)

N_BOOT_FAST = 300


def binary_data(n: int, seed: int = 0, signal: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of a classifier that is informative but imperfect."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(signal * y + (1 - signal) * rng.random(n), 0, 1)
    return y, score


def multiclass_data(n: int, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


def width(interval: tuple[float, float]) -> float:
    return interval[1] - interval[0]


# ----------------------------------------------------------------------------- point metrics


def test_perfect_binary_predictions_score_one_everywhere():
    """... and their calibration error is how much surer than 0.9 they could be: always right at 0.9."""
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    values = point_metrics(y, np.where(y == 1, 0.9, 0.1))
    assert values["n"] == len(y)
    for name in set(METRIC_NAMES) - set(CALIBRATION_METRICS):
        assert values[name] == pytest.approx(1.0), name
    assert values["ece"] == pytest.approx(0.1) and values["brier"] == pytest.approx(0.01)


def test_perfect_multiclass_predictions_score_one_everywhere():
    y = np.array([0, 1, 2, 2, 1, 0])
    values = point_metrics(y, np.eye(3)[y] * 0.8 + 0.2 / 3)
    for name in set(METRIC_NAMES) - set(CALIBRATION_METRICS):
        assert values[name] == pytest.approx(1.0), name
    assert values["ece"] == pytest.approx(1 - (0.8 + 0.2 / 3))
    assert values["brier"] == pytest.approx(0.5 * ((0.2 - 0.2 / 3) ** 2 + 2 * (0.2 / 3) ** 2))


def test_calibration_tells_an_over_confident_model_from_a_calibrated_one():
    """Scores whose labels are drawn with those very probabilities are calibrated (ECE near 0); the same
    ranking pushed to 0.01 / 0.99 is right as often but claims certainty (ECE near its error rate). The
    Brier score is scikit-learn's for two classes, and half its multi-class sum for more."""
    rng = np.random.default_rng(3)
    calibrated = rng.uniform(0.05, 0.95, 20_000)
    y = (rng.random(20_000) < calibrated).astype(int)
    honest = point_metrics(y, calibrated)
    confident = point_metrics(y, np.where(calibrated >= 0.5, 0.99, 0.01))
    assert honest["ece"] < 0.02 < 0.2 < confident["ece"]
    assert confident["accuracy"] == honest["accuracy"] and confident["brier"] > honest["brier"]
    assert honest["brier"] == pytest.approx(brier_score_loss(y, calibrated))
    y3, score3 = multiclass_data(200, seed=4)
    assert point_metrics(y3, score3)["brier"] == pytest.approx(
        brier_score_loss(y3, score3, labels=[0, 1, 2], scale_by_half=True))


def test_inverted_predictions_have_zero_accuracy():
    y = np.array([0, 1, 1, 0, 1, 0])
    values = point_metrics(y, np.where(y == 1, 0.2, 0.8))
    assert values["accuracy"] == 0.0
    assert values["sensitivity"] == 0.0
    assert values["specificity"] == 0.0
    assert values["auc"] == 0.0


def test_binary_values_agree_with_confusion_matrix_arithmetic():
    y, score = binary_data(400, seed=3)
    values = point_metrics(y, score)
    predicted = (score >= 0.5).astype(int)
    (tn, fp), (fn, tp) = confusion_matrix(y, predicted, labels=[0, 1])
    sensitivity, specificity = tp / (tp + fn), tn / (tn + fp)
    precision = tp / (tp + fp)
    expected = {
        "accuracy": (tp + tn) / len(y),
        "precision": precision,
        "recall": sensitivity,
        "f1": 2 * precision * sensitivity / (precision + sensitivity),
        "weighted_f1": f1_score(y, predicted, average="weighted"),
        "balanced_accuracy": (sensitivity + specificity) / 2,
        "auc": roc_auc_score(y, score),
        "sensitivity": sensitivity,
        "specificity": specificity,
    }
    for name, value in expected.items():
        assert values[name] == pytest.approx(value), name


def test_threshold_is_inclusive_at_one_half():
    values = point_metrics(np.array([1, 0]), np.array([0.5, 0.49]))
    assert values["accuracy"] == 1.0


def test_two_column_scores_are_scored_as_binary():
    y, score = binary_data(200, seed=4)
    two_columns = np.column_stack([1 - score, score])
    assert point_metrics(y, two_columns) == pytest.approx(point_metrics(y, score))


def test_multiclass_gives_macro_values():
    y, proba = multiclass_data(300, k=3, seed=5)
    values = point_metrics(y, proba)
    predicted = proba.argmax(axis=1)
    matrix = confusion_matrix(y, predicted, labels=[0, 1, 2])
    recall = np.diag(matrix) / matrix.sum(axis=1)
    precision = np.diag(matrix) / matrix.sum(axis=0)
    f1 = 2 * precision * recall / (precision + recall)
    negatives = len(y) - matrix.sum(axis=1)
    specificity = (negatives - (matrix.sum(axis=0) - np.diag(matrix))) / negatives
    assert values["accuracy"] == pytest.approx(np.trace(matrix) / len(y))
    assert values["recall"] == pytest.approx(recall.mean())
    assert values["sensitivity"] == pytest.approx(recall.mean())
    assert values["balanced_accuracy"] == pytest.approx(recall.mean())
    assert values["precision"] == pytest.approx(precision.mean())
    assert values["f1"] == pytest.approx(f1.mean())
    assert values["weighted_f1"] == pytest.approx(np.average(f1, weights=matrix.sum(axis=1)))
    assert values["specificity"] == pytest.approx(specificity.mean())
    assert values["auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"))


def test_single_class_gives_nan_auc_without_raising():
    y = np.ones(10, dtype=int)
    values = point_metrics(y, np.linspace(0.1, 0.9, 10))
    assert math.isnan(values["auc"])
    assert math.isnan(values["specificity"])  # no negatives: undefined, not 0
    assert values["sensitivity"] == pytest.approx(0.5)
    intervals = bootstrap_intervals(y, np.linspace(0.1, 0.9, 10), n_boot=50)
    assert all(math.isnan(v) for v in intervals["auc"])


def test_no_predicted_positives_gives_nan_precision():
    values = point_metrics(np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3]))
    assert math.isnan(values["precision"])
    assert values["recall"] == 0.0


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("y_true", "y_score", "argument"),
    [
        (np.array([0, 1, 1]), np.array([0.2, 0.8]), "y_score"),
        (np.array([], dtype=int), np.array([]), "y_true"),
        (np.array([0, 1]), np.array([], dtype=float), "y_score"),
        (np.array([0, 1]), np.array([0.2, 1.3]), "y_score"),
        (np.array([0, 1]), np.array([-0.1, 0.3]), "y_score"),
        (np.array([0, 1]), np.array([0.2, np.nan]), "y_score"),
        (np.array([0, 2]), np.array([0.2, 0.8]), "y_true"),
        (np.array([0.0, 0.5]), np.array([0.2, 0.8]), "y_true"),
        (np.array([[0, 1]]), np.array([0.2, 0.8]), "y_true"),
        (np.array([0, 1, 2]), np.full((3, 3), 0.5), "y_score"),  # rows do not sum to 1
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(y_true, y_score, argument):
    for function in (point_metrics, bootstrap_intervals, metrics_table):
        with pytest.raises(ValueError, match=argument):
            function(y_true, y_score)


def test_bad_groups_and_bootstrap_arguments_raise():
    y, score = binary_data(20)
    with pytest.raises(ValueError, match="groups"):
        bootstrap_intervals(y, score, groups=np.arange(19))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_intervals(y, score, n_boot=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_intervals(y, score, confidence=1.0)
    with pytest.raises(ValueError, match="min_groups"):
        bootstrap_intervals(y, score, min_groups=-1)


# ----------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("multiclass", [False, True])
@pytest.mark.parametrize("ties", [False, True])
def test_vectorised_resample_metrics_equal_sklearn_on_the_resampled_data(multiclass, ties):
    """The bootstrap's count formulas must give exactly what point_metrics gives on each resample
    (AUC: scikit-learn's roc_curve and auc), tied scores included."""
    y, score = multiclass_data(60, seed=6) if multiclass else binary_data(60, seed=6)
    if ties:  # a tenth of a unit apart: many images share a score
        score = np.round(score, 1)
        if multiclass:
            score = score / score.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(7)
    weights = np.vstack([rng.multinomial(60, np.full(60, 1 / 60)) for _ in range(25)])
    weights[0] = 0  # an extreme resample: a single image drawn many times
    weights[0, 0] = 60
    resampled = metrics._metrics_for_weights(y, metrics.predict_labels(score), score, weights)
    for row, counts in enumerate(weights):
        drawn = np.repeat(np.arange(60), counts)
        expected = point_metrics(y[drawn], score[drawn])
        for name in METRIC_NAMES:
            assert resampled[name][row] == pytest.approx(expected[name], nan_ok=True), (row, name)


@pytest.mark.parametrize("multiclass", [False, True])
def test_intervals_contain_point_estimate(multiclass):
    y, score = multiclass_data(300, seed=8) if multiclass else binary_data(300, seed=8)
    point = point_metrics(y, score)
    intervals = bootstrap_intervals(y, score, n_boot=N_BOOT_FAST)
    assert set(intervals) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        low, high = intervals[name]
        assert low <= point[name] <= high, name
        assert low < high, name


def test_intervals_narrow_as_n_grows():
    small = bootstrap_intervals(*binary_data(100, seed=9), n_boot=N_BOOT_FAST)
    large = bootstrap_intervals(*binary_data(2000, seed=9), n_boot=N_BOOT_FAST)
    for name in METRIC_NAMES:
        assert width(large[name]) < 0.6 * width(small[name]), name


def test_higher_confidence_gives_wider_intervals():
    y, score = binary_data(300, seed=10)
    narrow = bootstrap_intervals(y, score, n_boot=N_BOOT_FAST, confidence=0.5)
    wide = bootstrap_intervals(y, score, n_boot=N_BOOT_FAST, confidence=0.95)
    assert width(wide["accuracy"]) > width(narrow["accuracy"])


def correlated_cells(n_groups: int = 30, cells: int = 20, seed: int = 11):
    """Subjects whose cells are all right or all wrong together: strong within-group correlation."""
    rng = np.random.default_rng(seed)
    group_label = rng.integers(0, 2, n_groups)
    group_correct = rng.random(n_groups) < 0.7
    groups = np.repeat(np.arange(n_groups), cells)
    y = group_label[groups]
    right = np.where(y == 1, 0.8, 0.2)
    score = np.where(group_correct[groups], right, 1 - right) + rng.uniform(-0.05, 0.05, len(y))
    return y, score, np.array([f"subject_{g}" for g in groups])


def test_group_bootstrap_is_wider_when_cells_within_a_group_are_correlated():
    y, score, groups = correlated_cells()
    by_image = bootstrap_intervals(y, score, n_boot=N_BOOT_FAST)
    by_group = bootstrap_intervals(y, score, groups=groups, n_boot=N_BOOT_FAST)
    for name in ("accuracy", "balanced_accuracy", "f1", "auc"):
        assert width(by_group[name]) > 2 * width(by_image[name]), name


def test_group_bootstrap_with_one_image_per_group_matches_image_bootstrap_in_width():
    y, score = binary_data(400, seed=12)
    by_image = bootstrap_intervals(y, score, n_boot=N_BOOT_FAST)
    by_group = bootstrap_intervals(y, score, groups=np.arange(400), n_boot=N_BOOT_FAST)
    assert width(by_group["accuracy"]) == pytest.approx(width(by_image["accuracy"]), rel=0.3)


def test_bootstrap_is_deterministic_for_a_seed():
    y, score, groups = correlated_cells()
    first = bootstrap_intervals(y, score, groups=groups, n_boot=200, seed=5)
    assert bootstrap_intervals(y, score, groups=groups, n_boot=200, seed=5) == first
    assert bootstrap_intervals(y, score, groups=groups, n_boot=200, seed=6) != first


def test_bootstrap_chunking_does_not_change_results(monkeypatch):
    y, score = binary_data(100, seed=13)
    whole = bootstrap_intervals(y, score, n_boot=200)
    monkeypatch.setattr(metrics, "MAX_WEIGHT_CELLS", 100 * 7)  # chunks of 7 resamples
    chunked = bootstrap_intervals(y, score, n_boot=200)
    assert chunked == whole


# ----------------------------------------------------------------------------- report row


def test_metrics_table_row_format():
    y, score, groups = correlated_cells()
    row = metrics_table(y, score, groups=groups, n_boot=100, seed=1)
    expected_keys = ["n", "majority_rate"] + [f"{name}{suffix}" for name in METRIC_NAMES for suffix in ("", "_low", "_high")]
    assert list(row) == [*expected_keys, "interval_groups", "interval_note", "metric_note"]
    assert row["interval_groups"] == 30 and row["interval_note"] == "" and row["metric_note"] == ""
    assert row["n"] == len(y) and row["majority_rate"] == max(np.mean(y == 0), np.mean(y == 1))
    point = point_metrics(y, score)
    intervals = bootstrap_intervals(y, score, groups=groups, n_boot=100, seed=1)
    for name in METRIC_NAMES:
        assert row[name] == point[name]
        assert (row[f"{name}_low"], row[f"{name}_high"]) == intervals[name]
        assert all(isinstance(row[key], float) for key in expected_keys[1:])


def test_the_majority_rate_is_what_always_answering_the_most_frequent_class_scores():
    labels = np.array([0, 1, 2, 3, 3, 3, 2, 1])
    always = np.eye(4)[np.full(len(labels), 3)]  # a classifier that answers class 3 for every image
    assert majority_rate(labels) == point_metrics(labels, always)["accuracy"] == 3 / 8
    assert majority_rate(np.repeat([0, 1, 2, 3], 5)) == 0.25  # Aria's four classes, balanced: not 0.5


# ----------------------------------------------------------------------------- unknown subjects, too few groups


@pytest.mark.parametrize("unknown", ["", None, np.nan, "  "])
def test_images_without_subjects_are_resampled_one_by_one(unknown):
    """Aria and ALL-IDB name no patients (patient_id ""): one group of everything would collapse
    every interval onto its point; each such image is its own group instead, in image order, so
    the draws are those of the image bootstrap."""
    y, score = binary_data(60, seed=15)
    row = metrics_table(y, score, groups=np.array([unknown] * 60, dtype=object), n_boot=N_BOOT_FAST)
    by_image = metrics_table(y, score, n_boot=N_BOOT_FAST)
    assert row == by_image
    assert row["accuracy_high"] - row["accuracy_low"] > 0.05
    assert row["interval_groups"] == 60 and row["interval_note"] == ""


def test_images_without_a_subject_beside_subjects_are_groups_of_their_own():
    y, score, groups = correlated_cells(n_groups=12, cells=5)
    groups = groups.astype(object)
    groups[:20] = ""  # the first 4 subjects' 20 cells lose their ids
    codes = metrics._group_codes(groups, len(groups))
    assert len(np.unique(codes)) == codes.max() + 1 == 8 + 20
    assert len(np.unique(codes[:20])) == 20
    row = metrics_table(y, score, groups=groups, n_boot=50)
    assert row["interval_groups"] == 28 and row["interval_note"] == ""


def test_too_few_groups_give_no_interval_and_say_why():
    y, score, groups = correlated_cells(n_groups=4, cells=25)
    row = metrics_table(y, score, groups=groups, n_boot=50)
    for name in METRIC_NAMES:
        assert math.isnan(row[f"{name}_low"]) and math.isnan(row[f"{name}_high"]), name
    assert row["accuracy"] == point_metrics(y, score)["accuracy"]  # the point estimate stays
    assert row["interval_groups"] == 4
    assert row["interval_note"] == "not computed: 4 subjects in this split, fewer than 10"
    assert metrics.MIN_INTERVAL_GROUPS == 10
    few_images = metrics_table(*binary_data(9, seed=1), groups=np.array([""] * 9), n_boot=50)
    assert few_images["interval_note"] == "not computed: 9 images without subjects in this split, fewer than 10"
    assert math.isnan(bootstrap_intervals(*binary_data(9, seed=1), n_boot=50)["accuracy"][0])
    y, score, groups = correlated_cells(n_groups=10, cells=5)
    enough = metrics_table(y, score, groups=groups, n_boot=50)
    assert enough["interval_note"] == "" and not math.isnan(enough["accuracy_low"])


def test_an_interval_of_width_zero_from_a_metric_that_cannot_vary_is_kept():
    y = np.repeat([0, 1], 20)
    row = metrics_table(y, np.where(y == 1, 0.9, 0.1), groups=np.arange(40) % 20, n_boot=50)
    assert row["accuracy"] == row["accuracy_low"] == row["accuracy_high"] == 1.0
    assert row["interval_note"] == ""


def test_the_reliability_points_are_the_bins_the_ece_weighs():
    y, score = binary_data(300, seed=21)
    bins = metrics.calibration_bins(y, score)
    assert bins["images"].sum() == 300 and bins["bin"].is_unique and (bins["confidence"] >= 0.5).all()
    gaps = (bins["images"] * (bins["confidence"] - bins["accuracy"]).abs()).sum() / 300
    assert gaps == pytest.approx(point_metrics(y, score)["ece"])


# ----------------------------------------------------------------------------- subject level


def subject_predictions(scores, subjects, labels) -> pd.DataFrame:
    scores = np.asarray(scores, dtype=float)
    frame = pd.DataFrame({"patient_id": subjects, "label": labels})
    if scores.ndim == 1:
        return frame.assign(score=scores)
    return frame.join(pd.DataFrame(scores, columns=[f"score_{k}" for k in range(scores.shape[1])]))


@pytest.mark.parametrize("aggregation, expected", [
    ("mean", [0.5, 0.2]), ("median", [0.6, 0.2]), ("positive_fraction", [2 / 3, 0.0]), ("majority", [1.0, 0.0])])
def test_a_subjects_verdict_aggregates_its_cells(aggregation, expected):
    # the last image names no subject: it is left out
    cells = subject_predictions([0.3, 0.6, 0.6, 0.1, 0.3, 0.9], ["a", "a", "a", "b", "b", ""], [1, 1, 1, 0, 0, 1])
    subjects = metrics.subject_scores(cells, aggregation)
    assert subjects["patient_id"].tolist() == ["a", "b"] and subjects["cells"].tolist() == [3, 2]
    assert subjects["label"].tolist() == [1, 0]
    np.testing.assert_allclose(subjects["score"], expected)


def test_a_tied_vote_is_half_and_many_classes_vote_for_the_arg_max():
    tie = metrics.subject_scores(subject_predictions([0.9, 0.1], ["a", "a"], [1, 1]), "majority")
    assert tie["score"].tolist() == [0.5]
    three = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]])
    subjects = metrics.subject_scores(subject_predictions(three, ["a"] * 3, [0] * 3), "majority")
    assert subjects[["score_0", "score_1", "score_2"]].to_numpy().tolist() == [[1.0, 0.0, 0.0]]
    np.testing.assert_allclose(metrics.subject_scores(subject_predictions(three, ["a"] * 3, [0] * 3), "mean")
                               [["score_0", "score_1", "score_2"]].to_numpy(), [three.mean(axis=0)])


def test_subject_verdicts_refuse_a_subject_with_two_truths_and_an_unknown_aggregation():
    with pytest.raises(ValueError, match=r"\['a'\] have cells of more than one label"):
        metrics.subject_scores(subject_predictions([0.2, 0.8], ["a", "a"], [0, 1]))
    with pytest.raises(ValueError, match="subject aggregation 'vote' unknown; allowed: mean, median"):
        metrics.subject_scores(subject_predictions([0.2], ["a"], [0]), "vote")


def test_many_noisy_cells_make_a_surer_subject_and_no_subjects_make_no_subject_row():
    """Cells right 65 % of the time, 40 per subject: the mean verdict gets nearly every subject right."""
    rng = np.random.default_rng(9)
    subjects = np.repeat([f"s{k}" for k in range(40)], 40)
    labels = np.repeat(np.arange(40) % 2, 40)
    scores = np.clip(0.5 + np.where(labels == 1, 0.08, -0.08) + rng.normal(0, 0.2, len(labels)), 0, 1)
    frame = subject_predictions(scores, subjects, labels).assign(split="test")
    rows = {row["level"]: row for row in metrics.metric_rows(frame, {"model": "m"}, 1.0, 1.0, 200, 0, 10)}
    assert rows["cell"]["n"] == 1600 and rows["subject"]["n"] == 40 and rows["subject"]["subject_aggregation"] == "mean"
    assert rows["cell"]["accuracy"] < 0.7 and rows["subject"]["accuracy"] >= 0.95
    assert rows["subject"]["interval_groups"] == 40
    anonymous = frame.assign(patient_id="")
    assert [row["level"] for row in metrics.metric_rows(anonymous, {}, 1.0, 1.0, 200, 0, 10)] == ["cell"]


# ----------------------------------------------------------------------------- why a metric is n/a

def test_a_metric_that_cannot_be_computed_carries_its_reason_in_the_row():
    """A test split of one class: AUC, sensitivity, recall and F1 are n/a, and metric_note says which and
    why, naming the class; a split of both classes has no note."""
    rng = np.random.default_rng(3)
    healthy = metrics_table(np.zeros(30, dtype=int), rng.random(30) * 0.8, n_boot=50, class_names=["hem", "all"])
    assert all(math.isnan(healthy[name]) for name in ("auc", "sensitivity", "recall"))
    undefined = [name for name in METRIC_NAMES if math.isnan(healthy[name])]
    assert {"auc", "sensitivity", "recall"} <= set(undefined) and "accuracy" not in undefined
    assert healthy["metric_note"] == (f"n/a: {', '.join(undefined)}: no image of class 1 (all) in this split "
                                      "(one class only)")
    blasts = metrics_table(np.ones(30, dtype=int), np.full(30, 0.9), n_boot=50)
    assert math.isnan(blasts["specificity"]) and math.isnan(blasts["auc"])
    assert blasts["metric_note"].startswith("n/a: ") and "specificity" in blasts["metric_note"]
    assert blasts["metric_note"].endswith("no image of class 0 in this split (one class only)")
    y, score = binary_data(60)
    assert metrics_table(y, score, n_boot=50)["metric_note"] == ""


def test_a_class_never_predicted_names_why_its_precision_is_n_a():
    y = np.array([0, 1] * 20)
    row = metrics_table(y, np.full(40, 0.2), n_boot=50, class_names=["hem", "all"])  # never says "all"
    assert math.isnan(row["precision"])
    assert row["metric_note"] == "n/a: precision: no image predicted as class 1 (all)"


def test_the_evaluation_rows_of_a_one_class_split_say_why_per_split():
    rng = np.random.default_rng(4)
    labels = np.r_[rng.integers(0, 2, 40), np.zeros(40, dtype=int)]  # val of both classes, test of one
    frame = subject_predictions(rng.random(80), [f"s{k % 20}-{labels[k]}" for k in range(80)], labels)
    frame = frame.assign(split=["val"] * 40 + ["test"] * 40)
    rows = {(row["split"], row["level"]): row for row in
            metrics.metric_rows(frame, {"model": "m"}, 1.0, 1.0, 50, 0, 5, class_names=["hem", "all"])}
    assert rows[("val", "cell")]["metric_note"] == ""
    assert "no image of class 1 (all) in this split (one class only)" in rows[("test", "cell")]["metric_note"]
    assert "no image of class 1 (all) in this split (one class only)" in rows[("test", "subject")]["metric_note"]


def test_metrics_csv_gets_each_keras_trials_grad_cam_summary_or_the_reason_it_has_none(tmp_path):
    """aggregate joins the Grad-CAM summaries, a dataset's list of chosen trials (evaluation.saliency: chosen)
    or a trial's own saliency.json (all): a Keras trial without one says why; other approaches stay empty."""
    import json

    from leukobench.metrics import NO_BACKGROUND_NOTE, NOT_CHOSEN_NOTE, aggregate_metrics

    trials = {name: tmp_path / kind / name for name, kind in
             (("chosen", "trials"), ("other", "trials"), ("smear", "trials"), ("forest", "classical"))}
    for name, folder in trials.items():
        folder.mkdir(parents=True)
        approach = "classical" if name == "forest" else "cnn"
        (folder / "metrics.json").write_text(json.dumps([{"approach": approach, "split": s, "accuracy": 0.5, "n": 4}
                                                         for s in ("val", "test")]))
    summary = {"saliency_on_cell": 0.7, "cell_area": 0.4}
    chosen = tmp_path / "saliency_best_synthetic.json"
    chosen.write_text(json.dumps([{"trial": str(trials["chosen"]), **summary},
                                  {"trial": str(trials["smear"]), "saliency_on_cell": None, "cell_area": None}]))
    table = aggregate_metrics([folder / "metrics.json" for folder in trials.values()], tmp_path / "metrics.csv", [chosen])
    by_trial = table.groupby("trial").first()
    assert by_trial.loc[str(trials["chosen"]), ["saliency_on_cell", "cell_area"]].tolist() == [0.7, 0.4]
    assert by_trial.loc[str(trials["chosen"]), "saliency_note"] == ""
    assert by_trial.loc[str(trials["other"]), "saliency_note"] == NOT_CHOSEN_NOTE
    assert by_trial.loc[str(trials["smear"]), "saliency_note"] == NO_BACKGROUND_NOTE
    assert by_trial.loc[str(trials["forest"]), ["saliency_on_cell", "cell_area", "saliency_note"]].isna().all()
    assert len(table) == 8 and pd.read_csv(tmp_path / "metrics.csv").shape == table.shape
    (trials["chosen"] / "saliency.json").write_text(json.dumps(summary))  # every Keras trial its own (all)
    own = aggregate_metrics([trials["chosen"] / "metrics.json"], tmp_path / "own.csv", [trials["chosen"] / "saliency.json"])
    assert own["saliency_on_cell"].tolist() == [0.7, 0.7] and own["trial"].nunique() == 1
