"""Classification metrics with bootstrap confidence intervals.

Point estimates come from scikit-learn. Two tasks are supported:

* binary ALL-vs-normal: ``y_score`` has shape ``(n,)`` and holds the probability of label 1
  ("all", the positive class); the predicted class is ``y_score >= 0.5``. An ``(n, 2)`` score
  is treated the same way, through its column 1, so a sigmoid and a two-way softmax model are
  scored alike;
* multi-class: ``y_score`` has shape ``(n, k)``, ``k >= 3``, rows of class probabilities; the
  predicted class is the argmax. Precision, recall, F1, sensitivity, specificity and AUC are
  macro means over the classes (one-vs-rest for specificity and AUC).

A metric whose denominator is empty (precision with no predicted positives, recall of a class
absent from ``y_true``, AUC with one class in ``y_true``) is NaN, never an exception; macro
means skip such classes, as scikit-learn does with ``zero_division=np.nan``.

Intervals are percentile bootstrap intervals. With ``groups`` (subject ids) whole groups are
resampled, since the cells of one subject are not independent. An image whose subject is unknown
(an empty or missing id: Aria and ALL-IDB name no patients) is its own group, so data without
subjects is resampled image by image rather than as one group (which would collapse every
interval onto its point estimate). A split with fewer than ``MIN_INTERVAL_GROUPS`` resampling
groups gets no interval (see :data:`MIN_INTERVAL_GROUPS`); :func:`metrics_table` says so in
``interval_note``. The threshold metrics of all resamples are computed at once from weighted
confusion counts, and AUC of all resamples from one sort of the scores (the vectorised formulas
are tested against scikit-learn).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from leukobench.io import atomic_path
from leukobench.predictions import predict_labels, read_predictions, scores_of
from leukobench.subjects import MIN_INTERVAL_GROUPS, subject_counts, unknown_subjects

METRIC_NAMES: tuple[str, ...] = (
    "accuracy", "precision", "recall", "f1", "weighted_f1",
    "balanced_accuracy", "auc", "sensitivity", "specificity", "ece", "brier",
)
CALIBRATION_METRICS: tuple[str, ...] = ("ece", "brier")  # lower is better; how far the scores are from frequencies
CALIBRATION_BINS = 15  # equal-width confidence bins of the expected calibration error (Guo et al., 2017)

POSITIVE_LABEL = 1  # "all", leukemic blast
NEGATIVE_LABEL = 0  # "hem", normal cell
ROW_SUM_TOLERANCE = 1e-3  # how far a row of class probabilities may sum from 1
MAX_WEIGHT_CELLS = 4_000_000  # resamples x images held in memory at once by the bootstrap
NO_INTERVAL_NOTE = "not computed: {what} in this split, fewer than {minimum}"
# metrics_table's column saying which metrics of the row are n/a and why (empty when none is)
METRIC_NOTE = "metric_note"
INTERVAL_COLUMNS = ("interval_groups", "interval_note", METRIC_NOTE)  # metrics_table's columns beside the metrics
# The accuracy of always answering the split's most frequent class: what accuracy is to beat
# (0.5 for a balanced binary split, 0.25 for Aria's four classes balanced, more where unbalanced).
MAJORITY_RATE = "majority_rate"
NO_INTERVAL_VERDICT = "no interval"


def no_interval_text(value: float, note) -> str:
    """A value without an interval, said as such: ``0.884 (no interval: 4 subjects)`` from the note
    ``not computed: 4 subjects in this split, fewer than 10``; ``0.884 (no interval)`` without one."""
    if not isinstance(note, str) or not note:
        return f"{value:.3f} ({NO_INTERVAL_VERDICT})"
    match = re.match(r"not computed: (.+?) in this split", note)
    return f"{value:.3f} ({NO_INTERVAL_VERDICT}: {match[1] if match else note})"


# ----------------------------------------------------------------------------- input checks


def check_inputs(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate labels and scores; return them as arrays, an ``(n, 2)`` score reduced to ``(n,)``.

    Raises ``ValueError`` naming the offending argument.
    """
    labels = _as_labels(y_true)
    scores = _as_scores(y_score)
    if len(scores) != len(labels):
        raise ValueError(
            f"y_score has {len(scores)} rows but y_true has {len(labels)}; they must have the same length"
        )
    if scores.ndim == 2 and scores.shape[1] == 2:
        scores = scores[:, POSITIVE_LABEL]
    k = n_classes(scores)
    outside = (labels < 0) | (labels >= k)
    if outside.any():
        raise ValueError(
            f"y_true holds label {labels[outside][0]}, outside 0..{k - 1} implied by y_score of shape {scores.shape}"
        )
    return labels, scores


def _as_labels(y_true: np.ndarray) -> np.ndarray:
    labels = np.asarray(y_true)
    if labels.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError("y_true is empty")
    if labels.dtype == bool or np.issubdtype(labels.dtype, np.integer):
        return labels.astype(np.int64)
    if np.issubdtype(labels.dtype, np.floating) and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)):
        return labels.astype(np.int64)
    raise ValueError(f"y_true must hold integer class labels, got dtype {labels.dtype}")


def _as_scores(y_score: np.ndarray) -> np.ndarray:
    try:
        scores = np.asarray(y_score, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"y_score must be numeric: {error}") from error
    if scores.ndim not in (1, 2):
        raise ValueError(f"y_score must have shape (n,) or (n, k), got {scores.shape}")
    if scores.shape[0] == 0:
        raise ValueError("y_score is empty")
    if scores.ndim == 2 and scores.shape[1] < 2:
        raise ValueError(f"y_score of shape (n, k) needs k >= 2 classes, got {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("y_score contains NaN or infinite values")
    if scores.min() < 0 or scores.max() > 1:
        raise ValueError(
            f"y_score must hold probabilities in [0, 1]; found values from {scores.min():g} to {scores.max():g}"
        )
    if scores.ndim == 2:
        _check_row_sums(scores)
    return scores


def _check_row_sums(scores: np.ndarray) -> None:
    deviation = np.abs(scores.sum(axis=1) - 1.0)
    if deviation.max() > ROW_SUM_TOLERANCE:
        row = int(np.argmax(deviation))
        raise ValueError(
            f"y_score rows must be class probabilities summing to 1; row {row} sums to {scores[row].sum():g}"
        )


def _group_codes(groups: np.ndarray | None, n: int) -> np.ndarray | None:
    """Resampling group of each image, ``0..G-1``: one per subject, and one per image whose
    subject is unknown (:func:`unknown_subjects`); ``None`` without ``groups`` (image bootstrap).

    With no subject known the codes are ``0..n-1`` in image order, so the bootstrap draws exactly
    what it draws without ``groups``.
    """
    if groups is None:
        return None
    values = np.asarray(groups, dtype=object)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"groups must be 1-D with one entry per image ({n}), got shape {values.shape}")
    unknown = unknown_subjects(values)
    codes = np.empty(n, dtype=np.int64)
    known_codes, _ = pd.factorize(values[~unknown])
    codes[~unknown] = known_codes
    first = int(known_codes.max()) + 1 if len(known_codes) else 0
    codes[unknown] = first + np.arange(int(unknown.sum()))
    return codes


def _describe_groups(groups: np.ndarray | None, n: int) -> tuple[int, str]:
    """How many resampling groups there are, and what they are in words ("4 subjects")."""
    if groups is None:
        return n, _plural(n, "image")
    subjects, unknown = subject_counts(groups)
    count = subjects + unknown
    if unknown == 0:
        return count, _plural(subjects, "subject")
    if subjects == 0:
        return count, f"{_plural(unknown, 'image')} without subjects"
    return count, f"{_plural(count, 'group')} ({_plural(subjects, 'subject')}, {_plural(unknown, 'image')} without one)"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _check_bootstrap_args(n_boot: int, confidence: float, min_groups: int = MIN_INTERVAL_GROUPS) -> None:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    if int(min_groups) != min_groups or min_groups < 0:
        raise ValueError(f"min_groups must be a non-negative integer, got {min_groups!r}")


# ----------------------------------------------------------------------------- point estimates


def n_classes(y_score: np.ndarray) -> int:
    """Number of classes implied by a (checked) score array."""
    return 2 if y_score.ndim == 1 else y_score.shape[1]


@contextmanager
def _quiet_undefined() -> Iterator[None]:
    """Silence scikit-learn's warnings about undefined metrics: they are reported as NaN."""
    from sklearn.exceptions import UndefinedMetricWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", message="A single label was found")
        yield


def point_metrics(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """All of ``METRIC_NAMES`` plus ``n`` for one set of predictions (see the module docstring)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, precision_recall_fscore_support

    labels, scores = check_inputs(y_true, y_score)
    predicted = predict_labels(scores)
    classes = list(range(n_classes(scores)))
    binary = scores.ndim == 1
    with _quiet_undefined():
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predicted, labels=classes, average=None, zero_division=np.nan
        )
        specificity = _specificities(labels, predicted, classes)
        values = {
            "accuracy": accuracy_score(labels, predicted),
            "precision": precision[POSITIVE_LABEL] if binary else _nanmean(precision),
            "recall": recall[POSITIVE_LABEL] if binary else _nanmean(recall),
            "f1": f1[POSITIVE_LABEL] if binary else _nanmean(f1),
            "weighted_f1": f1_score(labels, predicted, labels=classes, average="weighted", zero_division=np.nan),
            "balanced_accuracy": balanced_accuracy_score(labels, predicted),
            "auc": _auc(labels, scores),
            "sensitivity": recall[POSITIVE_LABEL] if binary else _nanmean(recall),
            "specificity": recall[NEGATIVE_LABEL] if binary else _nanmean(specificity),
        }
    errors, squared = _calibration_terms(labels, scores)
    values["ece"] = float(np.abs(errors.sum(axis=0)).sum() / len(labels))
    values["brier"] = float(squared.mean())
    return {"n": len(labels), **{name: float(values[name]) for name in METRIC_NAMES}}


def _calibration_terms(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image: its confidence minus its correctness in the column of its confidence bin
    (``(n, CALIBRATION_BINS)``, zero elsewhere), and its Brier term.

    The expected calibration error is ``sum over bins |sum of the bin's column| / n``: the gap
    between how sure the predicted class is (its score) and how often it is right, weighted by the
    images in each of 15 equal-width bins (top-label ECE, Guo et al. 2017). The Brier term is half
    the squared distance between the class scores and the one-hot truth: ``(p - y)^2`` for a
    binary score ``p`` of class 1, so 0 is perfect and 1 the worst, for two classes or more."""
    if scores.ndim == 1:
        squared = (scores - (labels == POSITIVE_LABEL)) ** 2
    else:
        squared = 0.5 * ((scores - np.eye(scores.shape[1])[labels]) ** 2).sum(axis=1)
    confidence, correct, bins = _top_label(labels, scores)
    errors = np.zeros((len(labels), CALIBRATION_BINS))
    errors[np.arange(len(labels)), bins] = confidence - correct
    return errors, squared


def _top_label(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: the score of its predicted class, whether that class is right, its confidence bin."""
    predicted = predict_labels(scores)
    if scores.ndim == 1:
        confidence = np.where(predicted == POSITIVE_LABEL, scores, 1 - scores)
    else:
        confidence = scores.max(axis=1)
    bins = np.minimum((confidence * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    return confidence, (predicted == labels).astype(np.float64), bins


def calibration_bins(y_true: np.ndarray, y_score: np.ndarray) -> pd.DataFrame:
    """A reliability diagram's points: for each of the ``CALIBRATION_BINS`` equal-width bins of the
    predicted class's score that holds images, ``images``, their mean ``confidence`` and the share
    of them predicted right (``accuracy``). The ECE is the images-weighted mean of the gaps."""
    labels, scores = check_inputs(y_true, y_score)
    confidence, correct, bins = _top_label(labels, scores)
    frame = pd.DataFrame({"bin": bins, "confidence": confidence, "accuracy": correct})
    table = frame.groupby("bin").agg(images=("bin", "size"), confidence=("confidence", "mean"),
                                     accuracy=("accuracy", "mean"))
    return table.reset_index()


def _specificities(labels: np.ndarray, predicted: np.ndarray, classes: list[int]) -> np.ndarray:
    """One-vs-rest specificity TN / (TN + FP) of each class, NaN where a class has no negatives."""
    from sklearn.metrics import multilabel_confusion_matrix

    counts = multilabel_confusion_matrix(labels, predicted, labels=classes)
    true_negative, false_positive = counts[:, 0, 0], counts[:, 0, 1]
    return _ratio(true_negative, true_negative + false_positive)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (one-vs-rest macro for ``(n, k)``); NaN when it is undefined."""
    if scores.ndim == 1:
        return _binary_auc(labels == POSITIVE_LABEL, scores)
    per_class = [_binary_auc(labels == c, scores[:, c]) for c in range(scores.shape[1])]
    return float(_nanmean(np.array(per_class)))


def _binary_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve, as ``roc_auc_score`` computes it but with half its overhead."""
    from sklearn.metrics import auc, roc_curve

    if is_positive.all() or not is_positive.any():
        return float("nan")
    false_positive_rate, true_positive_rate, _ = roc_curve(is_positive, scores)
    return float(auc(false_positive_rate, true_positive_rate))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio, NaN where the denominator is zero."""
    numerator = np.asarray(numerator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    return np.divide(numerator, denominator, out=out, where=np.asarray(denominator) > 0)


def _nanmean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Mean over ``axis`` ignoring NaN; NaN (without a warning) where every value is NaN."""
    valid = ~np.isnan(values)
    return _ratio(np.where(valid, values, 0.0).sum(axis=axis), valid.sum(axis=axis))


def undefined_metrics_note(y_true: np.ndarray, y_score: np.ndarray, values: dict[str, float],
                           class_names: Sequence[str] | None = None) -> str:
    """Which of ``values`` (:func:`point_metrics`) are n/a and why, in words, e.g. ``n/a: recall,
    f1, auc, sensitivity: no image of class 1 (all) in this split (one class only)``; empty when
    all are defined.

    A metric is n/a when its denominator is empty: a class without images (its recall, and AUC,
    which needs images of both sides), a class never predicted (its precision), F1 of a class
    neither present nor predicted, specificity where every image is of the class."""
    undefined = [name for name in METRIC_NAMES if np.isnan(values[name])]
    if not undefined:
        return ""
    labels, scores = check_inputs(y_true, y_score)
    k = n_classes(scores)

    def named(classes: list[int]) -> str:
        return ", ".join(f"{c} ({class_names[c]})" if class_names is not None and c < len(class_names) else str(c)
                         for c in classes)

    reasons = []
    absent = [c for c in range(k) if not (labels == c).any()]
    if absent:
        reasons.append(f"no image of class {named(absent)} in this split"
                       + (" (one class only)" if len(absent) == k - 1 else ""))
    predicted = predict_labels(scores)
    never = [c for c in range(k) if not (predicted == c).any()]
    if never and ("precision" in undefined or "f1" in undefined):
        reasons.append(f"no image predicted as class {named(never)}")
    return f"n/a: {', '.join(undefined)}: {'; '.join(reasons) or 'undefined on these images'}"


# ----------------------------------------------------------------------------- bootstrap


def bootstrap_intervals(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_groups: int = MIN_INTERVAL_GROUPS,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval ``(low, high)`` of every metric in ``METRIC_NAMES``.

    With ``groups`` (one id per image, e.g. the subject) whole groups are drawn with
    replacement (cluster bootstrap); an image with an empty or missing id is a group of its own.
    Without ``groups`` images are drawn. With fewer than ``min_groups`` resampling groups (see
    :data:`MIN_INTERVAL_GROUPS`) every interval is ``(nan, nan)``. Resamples where a metric is
    undefined are skipped; an interval is ``(nan, nan)`` when no resample defines the metric.
    An interval of width zero is a metric that does not vary over the resamples (accuracy 1.0).
    Deterministic for a given ``seed``.
    """
    labels, scores = check_inputs(y_true, y_score)
    codes = _group_codes(groups, len(labels))
    _check_bootstrap_args(n_boot, confidence, min_groups)
    n_groups = len(labels) if codes is None else int(codes.max()) + 1
    if n_groups < min_groups:
        return {name: (float("nan"), float("nan")) for name in METRIC_NAMES}
    samples = _bootstrap_samples(labels, scores, codes, int(n_boot), np.random.default_rng(seed))
    return {name: _percentile_interval(samples[name], confidence) for name in METRIC_NAMES}


def _bootstrap_samples(
    labels: np.ndarray, scores: np.ndarray, codes: np.ndarray | None, n_boot: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Every metric on each of ``n_boot`` resamples, computed in chunks to bound memory."""
    predicted = predict_labels(scores)
    samples = {name: np.empty(n_boot) for name in METRIC_NAMES}
    chunk = max(1, MAX_WEIGHT_CELLS // len(labels))
    for start in range(0, n_boot, chunk):
        weights = _resample_weights(rng, min(chunk, n_boot - start), len(labels), codes)
        for name, values in _metrics_for_weights(labels, predicted, scores, weights).items():
            samples[name][start:start + len(weights)] = values
    return samples


def _resample_weights(rng: np.random.Generator, size: int, n: int, codes: np.ndarray | None) -> np.ndarray:
    """``(size, n)`` times each image is drawn in each resample (whole groups when ``codes``)."""
    if codes is None:
        return _row_counts(rng.integers(0, n, size=(size, n)), n)
    n_groups = int(codes.max()) + 1
    group_counts = _row_counts(rng.integers(0, n_groups, size=(size, n_groups)), n_groups)
    return group_counts[:, codes]


def _row_counts(draws: np.ndarray, n_values: int) -> np.ndarray:
    """Per row of ``draws``, how often each value in ``0..n_values-1`` occurs."""
    offsets = n_values * np.arange(draws.shape[0])[:, None]
    flat = np.bincount((draws + offsets).ravel(), minlength=draws.shape[0] * n_values)
    return flat.reshape(draws.shape[0], n_values)


def _metrics_for_weights(
    labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Every metric for each row of ``weights`` (integer resampling counts, shape ``(b, n)``)."""
    k = n_classes(scores)
    cells = np.zeros((len(labels), k * k))
    cells[np.arange(len(labels)), labels * k + predicted] = 1.0
    confusion = (weights @ cells).reshape(len(weights), k, k)
    values = _threshold_metrics(confusion, binary=scores.ndim == 1)
    values["auc"] = _resampled_aucs(labels, scores, weights)
    errors, squared = _calibration_terms(labels, scores)
    weights = np.ascontiguousarray(weights, dtype=np.float64)  # one memory layout: the same sums however drawn
    drawn = weights.sum(axis=1)
    # row-wise sums, not matrix products: a resample's value must not depend on how many share its chunk
    gaps = [(weights[:, rows] * errors[rows, j]).sum(axis=1) for j in range(CALIBRATION_BINS)
            if (rows := np.flatnonzero(errors[:, j])).size]
    values["ece"] = np.abs(np.array(gaps)).sum(axis=0) / drawn if gaps else np.zeros(len(weights))
    values["brier"] = (weights * squared).sum(axis=1) / drawn
    return values


def _resampled_aucs(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC for each row of ``weights`` (one-vs-rest macro for ``(n, k)`` scores)."""
    if scores.ndim == 1:
        return _weighted_binary_aucs(labels == POSITIVE_LABEL, scores, weights)
    per_class = [_weighted_binary_aucs(labels == c, scores[:, c], weights) for c in range(scores.shape[1])]
    return _nanmean(np.stack(per_class, axis=1))


def _weighted_binary_aucs(is_positive: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The area under the ROC curve of each resample (row of ``weights``), all at once: the weighted
    share of (positive, negative) pairs where the positive scores higher, ties counting half, which
    is the trapezoidal area ``roc_curve`` + ``auc`` give (checked against them by the tests); NaN
    where a resample draws no positive or no negative. One sort of the scores serves every resample."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # the first image of each distinct score
    drawn = weights[:, order].astype(np.float64)
    positive = is_positive[order]
    pos = np.add.reduceat(drawn * positive, starts, axis=1)  # (b, distinct scores): drawn positives at each score
    neg = np.add.reduceat(drawn * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # drawn negatives scoring lower
    pairs = (pos * (below + 0.5 * neg)).sum(axis=1)
    return _ratio(pairs, pos.sum(axis=1) * neg.sum(axis=1))


def _threshold_metrics(confusion: np.ndarray, binary: bool) -> dict[str, np.ndarray]:
    """Threshold metrics from confusion counts ``(b, k, k)``, rows = true class, columns = predicted.

    The same definitions as ``point_metrics`` (checked against scikit-learn by the tests).
    """
    hits = np.diagonal(confusion, axis1=1, axis2=2)
    actual, called = confusion.sum(axis=2), confusion.sum(axis=1)
    total = actual.sum(axis=1)
    recall, precision = _ratio(hits, actual), _ratio(hits, called)
    f1 = _ratio(2 * hits, actual + called)
    negatives = total[:, None] - actual
    specificity = _ratio(negatives - (called - hits), negatives)
    values = {
        "accuracy": hits.sum(axis=1) / total,
        "weighted_f1": _ratio(np.where(actual > 0, f1 * actual, 0.0).sum(axis=1), total),
        "balanced_accuracy": _nanmean(recall),
    }
    if binary:
        per_class = {"precision": precision, "recall": recall, "f1": f1, "sensitivity": recall}
        values.update({name: v[:, POSITIVE_LABEL] for name, v in per_class.items()})
        values["specificity"] = recall[:, NEGATIVE_LABEL]
    else:
        macro = {"precision": precision, "recall": recall, "f1": f1, "sensitivity": recall, "specificity": specificity}
        values.update({name: _nanmean(v) for name, v in macro.items()})
    return values


def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    defined = samples[~np.isnan(samples)]
    if defined.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


# ----------------------------------------------------------------------------- report row


def metrics_table(
    y_true: np.ndarray,
    y_score: np.ndarray,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    min_groups: int = MIN_INTERVAL_GROUPS,
    class_names: Sequence[str] | None = None,
) -> dict[str, float | int | str]:
    """One row of ``results/report/metrics.csv``: ``n``, ``majority_rate`` (:func:`majority_rate`),
    then each metric with ``_low``/``_high``,
    then ``interval_groups`` (how many groups the bootstrap resamples: subjects, plus one per image
    without a subject; images without ``groups``), ``interval_note`` (empty, or why the
    intervals are NaN: ``not computed: 4 subjects in this split, fewer than 10``) and
    ``metric_note`` (empty, or which metrics are n/a and why: :func:`undefined_metrics_note`,
    naming classes by ``class_names`` where given)."""
    point = point_metrics(y_true, y_score)
    intervals = bootstrap_intervals(y_true, y_score, groups=groups, n_boot=n_boot, seed=seed, min_groups=min_groups)
    n_groups, what = _describe_groups(groups, point["n"])
    row: dict[str, float | int | str] = {"n": point["n"], MAJORITY_RATE: majority_rate(y_true)}
    for name in METRIC_NAMES:
        row[name] = point[name]
        row[f"{name}_low"], row[f"{name}_high"] = intervals[name]
    row["interval_groups"] = n_groups
    row["interval_note"] = NO_INTERVAL_NOTE.format(what=what, minimum=min_groups) if n_groups < min_groups else ""
    row[METRIC_NOTE] = undefined_metrics_note(y_true, y_score, point, class_names)
    return row


def majority_rate(y_true: np.ndarray) -> float:
    """The share of the most frequent label: the accuracy of a classifier that answers it always."""
    labels = np.asarray(y_true)
    return float(np.unique(labels, return_counts=True)[1].max() / len(labels)) if len(labels) else float("nan")


# ----------------------------------------------------------------------------- a trial's metrics rows

def metric_rows(predictions: pd.DataFrame, trial: dict, train_seconds: float, predict_seconds: float,
                n_boot: int, seed: int, min_groups: int = MIN_INTERVAL_GROUPS,
                subject_aggregation: str = "mean", class_names: Sequence[str] | None = None) -> list[dict]:
    """Per evaluated split, a ``level`` ``cell`` row: the trial's parameters, the metrics of its
    images and their intervals (none where a split has fewer than ``min_groups`` subjects), why a
    metric is n/a (``metric_note``, classes named by ``class_names``), timings; and, where the split's images name subjects, a ``level`` ``subject`` row: the metrics
    of one verdict per subject (:func:`subject_scores`), ``n`` subjects, intervals over subjects."""
    rows = []
    total = len(predictions)
    for split, part in predictions.groupby("split", sort=False):
        timings = {
            "train_seconds": train_seconds,
            "predict_seconds": predict_seconds * len(part) / total,
            "images_per_second": total / predict_seconds if predict_seconds > 0 else float("nan"),
        }
        row = {**trial, "split": split, "level": "cell"}
        row |= metrics_table(part["label"].to_numpy(), scores_of(part), groups=part["patient_id"].to_numpy(),
                             n_boot=n_boot, seed=seed, min_groups=min_groups, class_names=class_names)
        rows.append(row | timings)
        mixed = subjects_of_two_labels(part)
        if mixed:
            print(f"{split}: no subject-level row: subject(s) {mixed[:5]} have cells of more than one label, so a "
                  "subject has no one truth to judge its verdict by", flush=True)
            continue
        subjects = subject_scores(part, subject_aggregation)
        if len(subjects):
            row = {**trial, "split": split, "level": "subject", "subject_aggregation": subject_aggregation}
            row |= metrics_table(subjects["label"].to_numpy(), scores_of(subjects), n_boot=n_boot, seed=seed,
                                 min_groups=min_groups, class_names=class_names)
            rows.append(row | timings)
    return rows


def subjects_of_two_labels(predictions: pd.DataFrame) -> list[str]:
    """The subjects (sorted) whose cells carry more than one label: they have no subject-level truth."""
    known = predictions.loc[~unknown_subjects(predictions["patient_id"])]
    labels = known.groupby("patient_id")["label"].nunique()
    return sorted(map(str, labels[labels > 1].index))


SUBJECT_AGGREGATIONS = ("mean", "median", "positive_fraction", "majority")  # how a subject's cells make its verdict


def check_aggregation(aggregation: str) -> None:
    if aggregation not in SUBJECT_AGGREGATIONS:
        raise ValueError(f"subject aggregation '{aggregation}' unknown; allowed: {', '.join(SUBJECT_AGGREGATIONS)}")


def aggregate_by_subject(scores: np.ndarray, subjects: np.ndarray, aggregation: str = "mean") -> pd.DataFrame:
    """One score per subject from its cells' ``scores`` (``(n,)``: P(class 1), or ``(n, k)``), by
    ``aggregation`` (see :func:`subject_scores`): a table indexed by subject (sorted) with ``cells``
    and the aggregate in ``score`` (``(n,)``) or ``score_0`` .. ``score_<k-1>``."""
    check_aggregation(aggregation)
    binary = scores.ndim == 1
    values = scores[:, None] if binary else scores
    if aggregation in ("positive_fraction", "majority"):
        predicted = predict_labels(scores)
        values = predicted[:, None].astype(np.float64) if binary else np.eye(values.shape[1])[predicted]
    columns = ["score"] if binary else [f"score_{k}" for k in range(values.shape[1])]
    grouped = pd.DataFrame(values, columns=columns).groupby(np.asarray(subjects), sort=True)
    table = grouped.median() if aggregation == "median" else grouped.mean()
    if aggregation == "majority":
        if binary:
            table["score"] = np.sign(table["score"] - 0.5) * 0.5 + 0.5  # 1, 0, or 0.5 on a tie
        else:
            table[columns] = np.eye(len(columns))[table.to_numpy().argmax(axis=1)]
    table.insert(0, "cells", grouped.size())
    return table


def subject_scores(predictions: pd.DataFrame, aggregation: str = "mean") -> pd.DataFrame:
    """One verdict per subject from its cells' scores: ``patient_id``, ``label``, ``cells`` and the
    subject's score(s), in the columns of the predictions (``score``, or ``score_<class>``).

    ``aggregation``: ``mean`` (default) or ``median`` of the cells' scores; ``positive_fraction``,
    the share of its cells predicted as each class (two classes: as class 1); ``majority``, 1 for
    the class most of its cells are predicted as, 0 for the others (two classes: 1, 0, or 0.5 on a
    tie, which the 0.5 threshold calls positive). The subject's class is then the score's, as for a
    cell (threshold 0.5, or the arg-max). Images without a subject (:func:`leukobench.subjects.unknown_subjects`)
    are left out; a subject whose cells carry two labels is an error naming it.
    """
    columns = ["score"] if "score" in predictions else [c for c in predictions if c.startswith("score_")]
    part = predictions.loc[~unknown_subjects(predictions["patient_id"])]
    if part.empty:
        check_aggregation(aggregation)
        return pd.DataFrame(columns=["patient_id", "label", "cells", *columns])
    mixed = subjects_of_two_labels(part)
    if mixed:
        raise ValueError(f"subject(s) {mixed[:5]} have cells of more than one label: "
                         "a subject-level verdict needs one truth per subject")
    values = part[columns].to_numpy(dtype=np.float64)
    subjects = aggregate_by_subject(values[:, 0] if columns == ["score"] else values,
                                    part["patient_id"].to_numpy(), aggregation)
    subjects.columns = ["cells", *columns]
    subjects.index.name = "patient_id"
    subjects.insert(0, "label", part.groupby("patient_id", sort=True)["label"].first())
    return subjects.reset_index()


SALIENCY_COLUMNS = ("saliency_on_cell", "cell_area", "saliency_note")  # a Keras trial's Grad-CAM summary, or why none
NOT_CHOSEN_NOTE = ("not a chosen trial: Grad-CAM drawn for the best configuration of each model only "
                   "(evaluation.saliency: chosen; all: every Keras trial)")
NO_BACKGROUND_NOTE = "no test image on a dark background: the heat's share on the cell is not measured"


def saliency_rows(saliency_files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """The Grad-CAM summaries of :mod:`leukobench.learn.saliency`, one row per Keras trial (``trial``: its
    folder, and :data:`SALIENCY_COLUMNS`): a trial's own ``saliency.json`` (an object, the trial being
    its folder; ``evaluation.saliency: all``) or a dataset's ``saliency_best_<dataset>.json`` (a list
    of such objects, each naming its ``trial``; ``evaluation.saliency: chosen``)."""
    rows = []
    for path in saliency_files:
        read = json.loads(Path(path).read_text())
        for summary in read if isinstance(read, list) else [{**read, "trial": str(Path(path).parent)}]:
            rows.append({"trial": summary["trial"], "saliency_on_cell": summary["saliency_on_cell"],
                         "cell_area": summary["cell_area"],
                         "saliency_note": "" if summary["saliency_on_cell"] is not None else NO_BACKGROUND_NOTE})
    return pd.DataFrame(rows, columns=["trial", *SALIENCY_COLUMNS])


def aggregate_metrics(metric_files: list[str | os.PathLike], out_csv: str | os.PathLike,
                      saliency_files: Sequence[str | os.PathLike] = ()) -> pd.DataFrame:
    """Concatenate every trial's metrics.json into results/report/metrics.csv (:func:`metrics_of_trials`);
    with ``saliency_files`` (:func:`saliency_rows`), each Keras trial's rows get its
    :data:`SALIENCY_COLUMNS`, and a Keras trial without a summary (not chosen) the reason in
    ``saliency_note``; the other approaches' rows stay empty (no Keras model to explain)."""
    table = metrics_of_trials(metric_files)
    if saliency_files:
        table = table.merge(saliency_rows(saliency_files), on="trial", how="left")
        keras = table["approach"] == "cnn" if "approach" in table else pd.Series(True, index=table.index)
        table.loc[keras & table["saliency_note"].isna(), "saliency_note"] = NOT_CHOSEN_NOTE
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


def metrics_of_trials(metric_files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Every trial's metrics.json as one table, with a column ``trial``: the trial's folder (its model,
    predictions and figures).

    The integer keys (size, fold, epochs, batch_size, seed, n, interval_groups) are pandas ``Int64``:
    a trial without one (a classical trial has no epochs) leaves it empty, and the others read ``15``,
    not ``15.0`` as a float column with NaN would write them."""
    rows = [{**row, "trial": str(Path(path).parent)} for path in metric_files for row in json.loads(Path(path).read_text())]
    table = pd.DataFrame(rows)
    for column in ("size", "fold", "epochs", "batch_size", "seed", "n", "interval_groups"):
        if column in table:
            table[column] = pd.to_numeric(table[column]).astype("Int64")
    return table


def plain_metrics_of_trials(prediction_files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Per trial and evaluated split, the metrics of the trial's own scores over its images, point
    estimates only (:func:`point_metrics`: the values of metrics.csv's cell-level rows of
    ``calibration: none`` and ``tta: none``, without intervals), with the trial's keys, ``leaky`` and
    ``trial`` (its folder), from its ``predictions.parquet`` alone: what choosing trials on validation
    needs, with no evaluation setting in it (the chosen trials' Grad-CAM job reruns with no evaluation)."""
    rows = []
    for path in prediction_files:
        predictions, metadata = read_predictions(path)
        for split, part in predictions.groupby("split", sort=False):
            rows.append({**metadata["trial"], "leaky": metadata["leaky"], "split": split, "trial": str(Path(path).parent),
                         **point_metrics(part["label"].to_numpy(), scores_of(part))})
    return pd.DataFrame(rows)


def checked_frame(frame: pd.DataFrame, argument: str, required: Sequence[str]) -> pd.DataFrame:
    """A copy of ``frame`` with ``required`` columns present, non-empty and numeric.

    Raises ValueError naming ``argument`` and the missing or non-numeric column.
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{argument} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"{argument} lacks column(s) {', '.join(map(repr, missing))}; it has {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{argument} has no rows")
    table = frame.copy()
    for column in required:
        try:
            table[column] = pd.to_numeric(table[column])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{argument} column {column!r} must be numeric: {error}") from error
    return table
