"""Figures of the report over the whole grid: comparison, ROC overlay, hyperparameter effects,
accuracy vs prediction time and the subject-vs-random (leakage) pairs.

Drawn with the shared look of :mod:`leukobench.style` (one PNG each, written atomically, no
pyplot state). Which trials to show and how to name them comes from
:mod:`leukobench.report.selection`. The functions read the report's metric table
(``results/report/metrics.csv``, one row per evaluated trial; the caller passes the test rows);
all but :func:`plot_comparison` return the Figure they saved (for tests). Inputs are checked
before drawing and bad input raises ``ValueError`` naming the argument or any required column
the table lacks. Imports the ground floor and :mod:`leukobench.report.selection` only.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory
from sklearn.metrics import roc_auc_score, roc_curve

from leukobench.keys import TRIAL_KEYS
from leukobench.learned import LEARNED, LEARNED_NOTE, NOT_LEARNED_LABEL
from leukobench.subjects import unknown_subjects
from leukobench.metrics import (INTERVAL_COLUMNS, MAJORITY_RATE, METRIC_NAMES, SALIENCY_COLUMNS, calibration_bins,
                                check_inputs, checked_frame,
                                no_interval_text, point_metrics, subject_scores,
                                subjects_of_two_labels)
from leukobench.predictions import predict_labels
from leukobench.report.selection import (DID_NOT_LEARN, MODEL_NAME_COLUMNS, SPLIT_METHOD_NAMES, did_not_learn,
                                         format_value, leakage_pairs, metric_table, model_labels, pareto_front,
                                         seed_spread)
from leukobench.style import (DPI, LINE_STYLES, NEUTRAL, NOT_LEARNED_MARKER, OKABE_ITO, SLANT_NAMES_LONGER_THAN, drawing,
                              new_figure, save_png)

CONFIDENCE_LABEL = "95 % bootstrap CI"
METRIC_LABELS = {
    "accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1 score",
    "weighted_f1": "Weighted F1 score", "balanced_accuracy": "Balanced accuracy",
    "auc": "ROC AUC", "sensitivity": "Sensitivity", "specificity": "Specificity",
}
ROW_HEIGHT_IN = 0.3  # comparison chart: height per row
BASE_HEIGHT_IN = 1.6  # comparison chart: title, axis and margins
PLOT_WIDTH_IN = 5.0  # comparison chart: width of the axes
CHAR_WIDTH_IN = 0.075  # comparison chart: width of one label character
VALUE_COLUMN_IN = 2.4  # comparison chart: the "value [low, high]" column right of the axes
LINE_HEIGHT_IN = 0.18  # comparison chart: extra row height per extra label line
LABEL_WRAP_CHARS = 90  # comparison chart: longer row labels are wrapped
MIN_ROWS = 3  # comparison chart: height never below that of three rows
MAX_WIDTH_IN = 20.0
SUBTITLE_WIDTH_CHARS = 110
APPROACH_ORDER = ("cnn", "hybrid", "classical")
APPROACH_MARKERS = {"cnn": "o", "hybrid": "s", "classical": "^"}
SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
HYPERPARAMETERS = ("optimizer", "epochs", "size", "variant", "batch_size", "loss", "learning_rate", "split_method")
PARAMETER_LABELS = {
    "optimizer": "Optimizer", "epochs": "Training epochs", "size": "Image size (px per side)",
    "variant": "Dataset variant", "batch_size": "Batch size (images)", "loss": "Loss function",
    "learning_rate": "Learning rate", "split_method": "Split method", "fold": "Fold", "seed": "Random seed",
    "model": "Model", "features": "Features", "classifier": "Classifier", "dataset": "Dataset",
}
PANEL_HEIGHT_IN = 3.8  # hyperparameter figure: height of one row of panels
MAX_PANEL_COLUMNS = 3
SERIES_SLOT = 0.8  # hyperparameter figure: share of one x step taken by the dodged series
SECONDS_TO_MS = 1000.0
ANNOTATION_OFFSET_PT = 7  # accuracy-vs-time figure: offset of a front point's number from the point
MAX_DECADES_WITH_STEPS = 2.5  # accuracy-vs-time figure: ticks at 1, 2, 5 x 10^k up to this span, else decades
PAIR_ROW_OFFSET = 0.17  # leakage figure: vertical offset of the two points of one pair
PAIR_ROW_HEIGHT_IN = 0.55  # leakage figure: height per pair


# ----------------------------------------------------------------------------- grid comparison


def plot_comparison(
    metrics: pd.DataFrame,
    path: str | os.PathLike,
    metric: str = "accuracy",
    label_columns: list[str] | None = None,
    *,
    reference: float | str | None = MAJORITY_RATE,
    title: str | None = None,
    pretrained: str | None = None,
    learned: str | None = LEARNED,
) -> None:
    """Dot plot of ``metric`` per grid trial with its 95 % interval, best at the top.

    Rows are labelled by ``label_columns`` (default: the non-metric columns that vary); the
    constant ones are listed under the title. ``reference`` is what the metric is to beat: a number
    (a dashed line: e.g. 0.5, chance AUC), or a column of per-row values (by default
    ``majority_rate``, the accuracy of always answering the test split's most frequent class: a
    dashed line where every row has the same, a grey tick on each row where they differ, as
    between datasets of 2 and 4 classes; nothing when the table lacks the column); ``None`` for
    none. ``pretrained`` names
    a boolean column: its true rows (trials that started from pretrained, ImageNet, weights) get a
    diamond instead of a dot, and the legend says which is which.
    """
    bounds = (metric, f"{metric}_low", f"{metric}_high")
    table = checked_frame(metrics, "metrics", bounds)
    marked = None
    if pretrained is not None:
        if pretrained not in table.columns:
            raise ValueError(f"metrics lacks the column {pretrained!r} (which trials used pretrained weights)")
        marked = table.pop(pretrained).fillna(False).astype(bool)
    failed = did_not_learn(table.pop(learned)).eq(1) if learned is not None and learned in table else None
    if label_columns is not None:
        missing = [column for column in label_columns if column not in table.columns]
        if missing:
            raise ValueError(f"metrics lacks label column(s) {', '.join(map(repr, missing))}")
    labels, fixed = _row_labels(table, metric, label_columns)
    labels = ["\n".join(textwrap.wrap(label, LABEL_WRAP_CHARS, break_long_words=False)) for label in labels]
    table = table.assign(_label=labels, _pretrained=False if marked is None else marked,
                         _did_not_learn=False if failed is None else failed, _reference=_references(table, reference))
    table = table.sort_values(metric, na_position="first", kind="stable")
    references = table["_reference"].to_numpy(dtype=float)  # in the rows' drawn order
    with drawing():
        fig, (ax,) = new_figure(*_comparison_size(labels))
        _draw_intervals(ax, table, bounds)
        handles = _mark_pretrained(ax, table, metric) if marked is not None else []
        handles += _mark_not_learned(ax, table[metric], np.arange(len(table)), table["_did_not_learn"])
        if handles:
            ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
        _draw_reference(ax, references)
        ax.set_xlim(*_comparison_limits(table, bounds, references))
        ax.set_xlabel(_comparison_axis_label(metric, references, reference))
        heading = title or f"{METRIC_LABELS.get(metric, metric)} per configuration, test split"
        ax.set_title(heading + _fixed_subtitle(fixed), loc="left")
        fig.tight_layout()
        save_png(fig, path)


def _comparison_size(labels: list[str]) -> tuple[float, float]:
    """Figure width from the longest label line, height from the number of rows and their lines."""
    lines = [label.split("\n") for label in labels]
    longest = max(len(line) for label_lines in lines for line in label_lines)
    width = min(MAX_WIDTH_IN, PLOT_WIDTH_IN + VALUE_COLUMN_IN + CHAR_WIDTH_IN * longest)
    row_height = ROW_HEIGHT_IN + LINE_HEIGHT_IN * (max(map(len, lines)) - 1)
    return width, BASE_HEIGHT_IN + row_height * max(len(labels), MIN_ROWS)


def _references(table: pd.DataFrame, reference: float | str | None) -> np.ndarray:
    """Each row's reference value (NaN: none), from a number or a column of ``table``."""
    if isinstance(reference, str):
        return table[reference].to_numpy(dtype=float) if reference in table else np.full(len(table), np.nan)
    return np.full(len(table), np.nan if reference is None else float(reference))


def _comparison_axis_label(metric: str, references: np.ndarray, reference: float | str | None) -> str:
    label = f"{METRIC_LABELS.get(metric, metric)}: point estimate and {CONFIDENCE_LABEL}"
    known = np.unique(references[np.isfinite(references)])
    if reference == MAJORITY_RATE:
        what = "majority-class rate (always answering the test split's most frequent class)"
    else:
        what = reference if isinstance(reference, str) else "chance"
    if not known.size:
        return label
    if known.size == 1:
        return f"{label}\ndashed line: {what} {known[0]:.3g}"
    return f"{label}\ngrey ticks: each row's {what}"


def _non_metric_columns(table: pd.DataFrame, metric: str) -> list[str]:
    measured = {"n", MAJORITY_RATE, metric, *METRIC_NAMES, *INTERVAL_COLUMNS, *SALIENCY_COLUMNS, LEARNED, LEARNED_NOTE,
                DID_NOT_LEARN}
    measured |= {f"{name}{suffix}" for name in measured for suffix in ("_low", "_high")}
    return [column for column in table.columns
            if column not in measured and not str(column).endswith(("_low", "_high"))]


def _row_labels(table: pd.DataFrame, metric: str, label_columns: list[str] | None) -> tuple[list[str], dict]:
    """A label per row, and the constant parameters (shown once, under the title)."""
    candidates = _non_metric_columns(table, metric)
    varying = [c for c in candidates if table[c].nunique(dropna=False) > 1]
    columns = label_columns if label_columns is not None else (varying or candidates)
    fixed = {c: table[c].iloc[0] for c in candidates if c not in columns and c not in varying}
    # a parameter a row does not have (NaN: e.g. the optimizer of a classical trial) is left out
    labels = [", ".join(f"{c}={format_value(row[c])}" for c in columns if not pd.isna(row[c]))
              for _, row in table.iterrows()]
    labels = [label or f"row {i}" for i, label in enumerate(labels)]
    repeated = {label for label in labels if labels.count(label) > 1}
    labels = [f"{label} [row {i}]" if label in repeated else label for i, label in enumerate(labels)]
    return labels, fixed



def _fixed_subtitle(fixed: dict) -> str:
    if not fixed:
        return ""
    text = "fixed: " + ", ".join(f"{c}={format_value(v)}" for c, v in fixed.items())
    return "\n" + "\n".join(textwrap.wrap(text, SUBTITLE_WIDTH_CHARS))


def _draw_intervals(ax: Axes, table: pd.DataFrame, bounds: tuple[str, str, str]) -> None:
    metric, low, high = bounds
    rows = np.arange(len(table))
    colour = OKABE_ITO[0]
    ax.hlines(rows, table[low], table[high], color=colour, linewidth=2)
    for bound in (low, high):
        ax.plot(table[bound], rows, linestyle="none", marker="|", markersize=9, color=colour)
    ax.plot(table[metric], rows, linestyle="none", marker="o", markersize=6, color=colour)
    ax.set_yticks(rows, table["_label"])
    ax.set_ylim(-0.7, len(table) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    ax.grid(axis="y", alpha=0.15)
    values = blended_transform_factory(ax.transAxes, ax.transData)
    for row, (_, record) in zip(rows, table.iterrows()):
        ax.text(1.02, row, _interval_text(record, bounds), transform=values, va="center", fontsize=9)


PRETRAINED_MARKER = "D"  # comparison chart: a trial that started from pretrained weights


def _mark_pretrained(ax: Axes, table: pd.DataFrame, metric: str) -> list[Line2D]:
    """Diamonds over the dots of the trials that started from pretrained weights; their legend entries."""
    rows = np.flatnonzero(table["_pretrained"].to_numpy(dtype=bool))
    if rows.size == 0:
        return []  # every trial trained from scratch: nothing to tell apart
    colour = OKABE_ITO[0]
    ax.plot(table[metric].to_numpy(dtype=float)[rows], rows, linestyle="none", marker=PRETRAINED_MARKER,
            markersize=8, markerfacecolor="white", markeredgecolor=colour, markeredgewidth=1.6)
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=6, color=colour, label="trained from scratch"),
               Line2D([], [], linestyle="none", marker=PRETRAINED_MARKER, markersize=8, markerfacecolor="white",
                      markeredgecolor=colour, markeredgewidth=1.6, label="pretrained weights (ImageNet)")]
    return handles


def _mark_not_learned(ax: Axes, values: pd.Series, rows: np.ndarray, failed: pd.Series) -> list[Line2D]:
    """The trials that did not learn (``failed``): :data:`NOT_LEARNED_MARKER` over their points at
    ``(values, rows)``; the legend entry, or none when every trial learned."""
    chosen = np.asarray(failed, dtype=bool)
    if not chosen.any():
        return []
    ax.plot(np.asarray(values, dtype=float)[chosen], np.asarray(rows, dtype=float)[chosen], **NOT_LEARNED_MARKER)
    return [Line2D([], [], **{**NOT_LEARNED_MARKER, "zorder": None}, label=NOT_LEARNED_LABEL)]


def _interval_text(record: pd.Series, bounds: tuple[str, str, str]) -> str:
    value, low, high = (record[b] for b in bounds)
    if not np.isfinite(value):
        return "undefined"
    if np.isfinite(low) and np.isfinite(high):
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    return no_interval_text(value, record.get("interval_note"))


def _draw_reference(ax: Axes, references: np.ndarray) -> None:
    """One dashed line where every row has the same reference, else a grey tick on each row."""
    known = np.unique(references[np.isfinite(references)])
    if known.size == 1:
        ax.axvline(known[0], color=NEUTRAL, linestyle="--", linewidth=1.2)
    elif known.size:
        ax.plot(references, np.arange(len(references)), linestyle="none", marker="|", markersize=14,
                markeredgewidth=2, color=NEUTRAL)


def _comparison_limits(
    table: pd.DataFrame, bounds: tuple[str, str, str], references: np.ndarray | None = None
) -> tuple[float, float]:
    values = np.append(table[list(bounds)].to_numpy(dtype=float).ravel(), [] if references is None else references)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    margin = 0.05 * max(values.max() - values.min(), 0.1)
    return max(0.0, values.min() - margin), min(1.0, values.max()) + margin


def _label_order(table: pd.DataFrame, labels: pd.Series) -> list[str]:
    """Distinct labels, cnn first, then hybrid, then classical, then others; by name within each."""
    rank = {approach: i for i, approach in enumerate(APPROACH_ORDER)}
    approaches = table["approach"].astype(object)
    first = {label: approaches[labels == label].iloc[0] for label in dict.fromkeys(labels)}
    return sorted(first, key=lambda label: (rank.get(first[label], len(rank)), str(first[label]), label))


def _sorted_values(values: pd.Series) -> list:
    """The distinct non-missing values, numerically ordered when all are numbers, else by text."""
    distinct = list(pd.unique(values.dropna()))
    numbers = pd.to_numeric(pd.Series(distinct, dtype=object), errors="coerce")
    if numbers.notna().all():
        return [value for _, value in sorted(zip(numbers, distinct), key=lambda pair: pair[0])]
    return sorted(distinct, key=lambda value: format_value(value))


def _error_bars(table: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars (2, n) from the interval columns; 0 where the interval is undefined."""
    value = table[metric].to_numpy(dtype=float)
    below = value - table[f"{metric}_low"].to_numpy(dtype=float)
    above = table[f"{metric}_high"].to_numpy(dtype=float) - value
    return np.nan_to_num(np.clip(np.vstack([below, above]), 0, None))


def _series_style(index: int) -> dict:
    return {"color": OKABE_ITO[index % len(OKABE_ITO)], "marker": SERIES_MARKERS[index % len(SERIES_MARKERS)],
            "linestyle": LINE_STYLES[index % len(LINE_STYLES)]}


# ----------------------------------------------------------------------------- ROC overlay


def plot_roc_overlay(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    title: str,
) -> Figure:
    """ROC curves of several trials (e.g. the best of one dataset) on one axes, AUC in the legend.

    Args:
        curves: ``(label, y_true, y_score)`` per trial; ``y_score`` of shape ``(n,)`` (binary,
            probability of label 1) or ``(n, k)``. A multi-class trial is drawn as its
            micro-average one-vs-rest curve (all classes' indicator/score pairs pooled), and its
            legend entry and the title say so.
        path: the PNG to write.
        title: the figure title.

    Colour and line style both change from one curve to the next (28 distinct combinations).
    Returns the saved Figure.
    """
    prepared = _checked_curves(curves)
    multiclass = any(scores.ndim == 2 for _, _, scores in prepared)
    with drawing():
        fig, (ax,) = new_figure(5.8, 5.6)
        for index, (label, labels, scores) in enumerate(prepared):
            _draw_overlay_curve(ax, index, label, labels, scores)
        ax.plot([0, 1], [0, 1], linestyle="--", color=NEUTRAL, linewidth=1, label="chance (AUC = 0.500)")
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
        ax.set_title(title + ("\nmulti-class trials: micro-average one-vs-rest ROC" if multiclass else ""))
        ax.set_xlabel("False positive rate (1 − specificity)")
        ax.set_ylabel("True positive rate (sensitivity)")
        ax.grid(alpha=0.3)
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.03, 1.0), title="test split (n = images)",
                           framealpha=0.9, alignment="left")
        legend.set_in_layout(False)  # beside the axes: the layout keeps the axes' size, ...
        fig.tight_layout()
        legend.set_in_layout(True)  # ... and the saved image grows to hold the legend
        save_png(fig, path)
    return fig


def _checked_curves(curves: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(label, labels, scores)`` checked (:func:`leukobench.metrics.check_inputs`), or ValueError naming the curve."""
    if isinstance(curves, (str, bytes)) or not len(curves):
        raise ValueError("curves is empty: give at least one (label, y_true, y_score) triple")
    prepared = []
    for index, curve in enumerate(curves):
        try:
            label, y_true, y_score = curve
        except (TypeError, ValueError) as error:
            raise ValueError(f"curves[{index}] must be a (label, y_true, y_score) triple") from error
        try:
            labels, scores = check_inputs(y_true, y_score)
        except ValueError as error:
            raise ValueError(f"curves[{index}] ({label}): {error}") from error
        prepared.append((str(label), labels, scores))
    return prepared


RELIABILITY_COLUMNS = 3  # panels per row of the reliability sheet


def plot_reliability(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    title: str,
    calibrated: Sequence[tuple[str, np.ndarray] | None] | None = None,
) -> Figure:
    """Reliability diagrams of several trials (e.g. the best of one dataset), one panel each, ECE in its title.

    A panel's points are the non-empty bins of :func:`leukobench.metrics.calibration_bins`: the
    mean score of the predicted class against how often it is right; a calibrated trial lies on the
    diagonal, an over-confident one below it. A point's area grows with its bin's images, and the
    bins of fewer than 5 images are hollow (their share right is mostly chance). The axes start at
    1/k, the lowest score a predicted class can have among k classes. A trial with calibrated
    scores (e.g. temperature-scaled, :mod:`leukobench.scoring`) also gets their points, in a
    second colour, and both ECEs in its title.

    Args:
        curves: ``(label, y_true, y_score)`` per trial, as for :func:`plot_roc_overlay`.
        path: the PNG to write.
        title: the figure title.
        calibrated: per trial, ``(legend label, calibrated scores of the same images)``, or None.

    Returns the saved Figure.
    """
    prepared = _checked_curves(curves)
    rows = -(-len(prepared) // RELIABILITY_COLUMNS)
    columns = min(len(prepared), RELIABILITY_COLUMNS)
    with drawing():
        fig = Figure(figsize=(3.3 * columns, 3.3 * rows + 0.6), dpi=DPI)
        axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
        calibrated = list(calibrated) if calibrated is not None else [None] * len(prepared)
        for ax, (label, labels, scores), other in zip(axes, prepared, calibrated):
            lowest = 1 / (2 if scores.ndim == 1 else scores.shape[1])
            ax.plot([lowest, 1], [lowest, 1], linestyle="--", color=NEUTRAL, linewidth=1)
            series = [("as given", scores, OKABE_ITO[0])]
            if other is not None:
                series.append((*other, OKABE_ITO[1]))
            eces, bottom = [], lowest
            for name, values, colour in series:
                bins = calibration_bins(labels, values)
                few = bins["images"] < 5
                size = 15 + 200 * bins["images"] / len(labels)
                ax.plot(bins["confidence"], bins["accuracy"], color=colour, linewidth=1, alpha=0.6, label=name)
                ax.scatter(bins["confidence"][~few], bins["accuracy"][~few], s=size[~few], color=colour, zorder=3)
                ax.scatter(bins["confidence"][few], bins["accuracy"][few], s=size[few], facecolors="none",
                           edgecolors=colour, zorder=3)
                eces.append(f"{point_metrics(labels, values)['ece']:.3f}")
                bottom = min(bottom, bins["accuracy"].min())
            ax.set(xlim=(lowest - 0.02, 1.02), ylim=(bottom - 0.02, 1.02))
            ax.set_title("\n".join(textwrap.wrap(label, 38)) + f"\nECE = {' → '.join(eces)}, n = {len(labels):,}",
                         fontsize=8.5)
            if other is not None:
                ax.legend(loc="upper left", fontsize=7, frameon=False)
            ax.grid(alpha=0.3)
        for ax in axes[len(prepared):]:
            ax.set_visible(False)
        for ax in axes[(rows - 1) * columns:]:
            ax.set_xlabel("Score of the predicted class")
        for ax in axes[::columns]:
            ax.set_ylabel("Share predicted right")
        fig.suptitle(title + "\n(dashed: calibrated; hollow: bins of fewer than 5 images)")
        fig.tight_layout()
        save_png(fig, path)
    return fig


SUBJECT_PANEL_WIDTH = 0.28  # inches per subject of a subject-verdict panel


def plot_subject_verdicts(
    trials: Sequence[tuple[str, pd.DataFrame]],
    path: str | os.PathLike,
    title: str,
    aggregation: str = "mean",
    class_names: Sequence[str] = ("negative", "positive"),
) -> Figure:
    """Per trial (e.g. the best of one dataset), one panel: each subject's cells' scores (P(class 1);
    with more than two classes, P(the subject's own class)) as dots, its verdict
    (:func:`leukobench.metrics.subject_scores`) as a black bar, the 0.5 threshold (with more classes
    the verdict is the arg-max of the aggregate), colours by the subject's truth; subjects ordered by verdict, the misjudged ones named
    in red on the axis, so a lab sees which patients fail and why (a few confident cells, or many
    doubtful ones).

    Args:
        trials: ``(label, predictions)`` per trial, its test predictions (:mod:`leukobench.predictions`).
        path: the PNG to write.
        title: the figure title.
        aggregation: how a subject's cells make its verdict.
        class_names: the names of classes 0 and 1, for the legend.

    A trial whose images name no subject gets a panel saying so, and one whose subjects carry two
    labels that they have no truth to judge by; where no trial has a verdict (a dataset without
    subjects), the figure is that one panel. Returns the saved Figure.
    """
    if not len(trials):
        raise ValueError("trials is empty: give at least one (label, predictions) pair")
    panels = []
    for label, predictions in trials:
        known = predictions.loc[~unknown_subjects(predictions["patient_id"])]
        if known.empty:
            why = "its images name no subject: no subject-level verdict"
        elif subjects_of_two_labels(known):
            why = "subjects with cells of two labels: no subject-level truth"
        else:
            why = ""
        panels.append((label, known, None if why else subject_scores(known, aggregation), why))
    if all(why for *_, why in panels):  # nothing to draw (e.g. a dataset without subjects): one panel says why
        panels = [("", None, None, "\n".join(dict.fromkeys(why for *_, why in panels)))]
    most = max(len(v) if v is not None else 0 for _, _, v, _ in panels)
    columns = min(len(panels), 3 if most <= 20 else 1)  # panels of many subjects get the whole width
    rows = -(-len(panels) // columns)
    width = max(4.0, min(16.0 / columns, SUBJECT_PANEL_WIDTH * most + 1.2))
    with drawing():
        fig = Figure(figsize=(width * columns, 2.9 * rows + 1.2), dpi=DPI)
        axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for ax, (label, known, verdicts, why) in zip(axes, panels):
            ax.set_title("\n".join(textwrap.wrap(label, 45)), fontsize=8.5, loc="left")
            if why:
                ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)
                ax.set_axis_off()
                continue
            binary = "score" in known
            # two classes: P(class 1) against the 0.5 threshold; more: P(the subject's own class), arg-max verdict
            cell_y, verdict_y = (known["score"].to_numpy(), verdicts["score"].to_numpy()) if binary else (
                _own_class_score(known), _own_class_score(verdicts))
            wrong = ((verdicts["score"] >= 0.5).astype(int) if binary else
                     predict_labels(verdicts.filter(like="score_").to_numpy())) != verdicts["label"]
            order = np.lexsort((verdicts["patient_id"].astype(str), verdict_y))
            verdicts, verdict_y, wrong = verdicts.iloc[order].reset_index(drop=True), verdict_y[order], wrong.iloc[order]
            place = {subject: k for k, subject in enumerate(verdicts["patient_id"])}
            jitter = np.random.default_rng(0).uniform(-0.18, 0.18, len(known))
            x = known["patient_id"].map(place).to_numpy() + jitter
            colours = np.asarray(OKABE_ITO, dtype=object)[known["label"].to_numpy() % len(OKABE_ITO)]
            ax.scatter(x, cell_y, s=6, c=list(colours), alpha=0.45, linewidths=0)
            ax.hlines(verdict_y, np.arange(len(verdicts)) - 0.32, np.arange(len(verdicts)) + 0.32,
                      color="black", linewidth=2)
            if binary:
                ax.axhline(0.5, linestyle="--", color=NEUTRAL, linewidth=1)
            ax.set_xticks(np.arange(len(verdicts)), verdicts["patient_id"].astype(str), rotation=90, fontsize=7)
            for tick, miss in zip(ax.get_xticklabels(), wrong):
                if miss:
                    tick.set_color("red")
                    tick.set_fontweight("bold")
            ax.set(xlim=(-0.6, len(verdicts) - 0.4), ylim=(-0.03, 1.03),
                   ylabel=f"P({class_names[1]})" if binary else "P(its own class)")
            ax.set_xlabel(f"{int(wrong.sum())} of {len(verdicts)} subjects misjudged", fontsize=8,
                          color="red" if wrong.any() else NEUTRAL)
            ax.grid(axis="y", alpha=0.3)
        if any(verdicts is not None for *_, verdicts, _ in panels):
            handles = [Line2D([], [], marker="o", linestyle="none", color=OKABE_ITO[k % len(OKABE_ITO)],
                              label=f"cells of {name} subjects") for k, name in enumerate(class_names)]
            handles += [Line2D([], [], color="black", linewidth=2, label=f"the subject's verdict ({aggregation})")]
            if len(class_names) == 2:
                handles.append(Line2D([], [], color=NEUTRAL, linestyle="--", label="threshold 0.5"))
            else:
                handles.append(Line2D([], [], linestyle="none", label="verdict: the class of the largest aggregate score"))
            fig.legend(handles=handles, loc="lower center", ncols=2, fontsize=8, frameon=False)
        fig.suptitle(title + "\n(subjects ordered by verdict; misjudged ones in red)")
        fig.tight_layout(rect=(0, 0.5 / fig.get_figheight(), 1, 1))
        save_png(fig, path)
    return fig


def _own_class_score(table: pd.DataFrame) -> np.ndarray:
    """Each row's score of its own class (``label``), from the ``score_<class>`` columns."""
    scores = table.filter(like="score_").to_numpy()
    return scores[np.arange(len(table)), table["label"].to_numpy().astype(int)]


def _draw_overlay_curve(ax: Axes, index: int, label: str, labels: np.ndarray, scores: np.ndarray) -> None:
    if scores.ndim == 1:
        positive, score, kind = labels == 1, scores, ""
    else:
        positive = (labels[:, None] == np.arange(scores.shape[1])).ravel()
        score, kind = scores.ravel(), "micro-avg. "
    size = f"n = {len(labels):,}"
    if positive.all() or not positive.any():
        ax.plot([], [], linestyle="none", label=f"{label}: undefined (one class only, {size})")
        return
    false_positive_rate, true_positive_rate, _ = roc_curve(positive, score)
    area = roc_auc_score(positive, score)
    style = _series_style(index)
    ax.plot(false_positive_rate, true_positive_rate, color=style["color"], linestyle=style["linestyle"],
            linewidth=2, label=f"{label}\n  {kind}AUC = {area:.3f}, {size}")


# ----------------------------------------------------------------------------- hyperparameter effects


def plot_hyperparameter_effects(
    metrics: pd.DataFrame,
    path: str | os.PathLike,
    metric: str = "f1",
    parameters: Sequence[str] = HYPERPARAMETERS,
) -> Figure:
    """One panel per hyperparameter that takes more than one value: ``metric`` against its values.

    Every row (trial) is a point with its 95 % interval as error bar, one colour/marker per model
    label (:func:`model_labels`), the series dodged sideways; trials of one series that share an
    x value (they differ in other parameters) are spread within the series' slot, and a line
    joins the series' mean per value. Values are sorted numerically when all are numbers. A row
    without the parameter (NaN, e.g. the optimizer of a classical trial) is left out of that
    panel; a parameter the table lacks counts as constant. With no varying parameter the figure
    is a single panel saying so. Requires ``approach``, ``metric``, ``<metric>_low`` and
    ``<metric>_high``. Returns the saved Figure.
    """
    parameters = [parameters] if isinstance(parameters, str) else list(parameters)
    table = metric_table(metrics, metric, other=("approach",))
    labels = model_labels(table)
    varying = [p for p in parameters if p in table.columns and table[p].nunique(dropna=True) > 1]
    series = _label_order(table, labels)
    values = {p: _sorted_values(table[p]) for p in varying}
    columns = min(max(len(varying), 1), MAX_PANEL_COLUMNS)
    rows = -(-max(len(varying), 1) // columns)
    panel_width = max([3.8] + [min(9.0, 1.6 + len(v) * (0.45 + 0.14 * len(series))) for v in values.values()])
    metric_label = METRIC_LABELS.get(metric, metric)
    with drawing():
        panel_height = PANEL_HEIGHT_IN if varying else PANEL_HEIGHT_IN / 1.5  # a text-only panel needs less
        fig = Figure(figsize=(panel_width * columns + 0.8, panel_height * rows + 0.9), dpi=DPI)
        grid = fig.subplots(rows, columns, sharey=True, squeeze=False)
        axes = list(grid.ravel())
        for ax in axes[max(len(varying), 1):]:
            fig.delaxes(ax)
        if not varying:
            _draw_nothing_varies(axes[0], table, parameters)
        for ax, parameter in zip(axes, varying):
            _draw_parameter_panel(ax, table, labels, series, parameter, values[parameter], metric)
            ax.set_ylim(*_comparison_limits(table, (metric, f"{metric}_low", f"{metric}_high")))
        for row in grid:
            if row[0] in fig.axes:
                row[0].set_ylabel(f"{metric_label}, test split\n(point, {CONFIDENCE_LABEL})")
        fig.suptitle(f"Effect of each hyperparameter on test {metric_label}")
        fig.tight_layout()
        if varying:
            handles = [Line2D([], [], markersize=6, linewidth=1.2, **_series_style(i))
                       for i in range(len(series))]
            fig.legend(handles, series, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                       ncols=min(len(series), 3), frameon=False,
                       title=f"one point per trial with its {CONFIDENCE_LABEL}; line: mean per value")
        save_png(fig, path)
    return fig


def _draw_parameter_panel(ax: Axes, table: pd.DataFrame, labels: pd.Series, series: list[str], parameter: str,
                          values: list, metric: str) -> None:
    positions = {value: index for index, value in enumerate(values)}
    has_value = table[parameter].notna()
    present = [(index, name) for index, name in enumerate(series) if (has_value & (labels == name)).any()]
    slot = SERIES_SLOT / len(present)  # dodge among the series this panel shows; colours stay global
    for place, (index, name) in enumerate(present):
        rows = table[(labels == name) & has_value]
        style = _series_style(index)
        centre = (place - (len(present) - 1) / 2) * slot
        base = rows[parameter].map(positions).to_numpy(dtype=float) + centre
        within = rows.groupby(parameter, sort=False).cumcount().to_numpy(dtype=float)
        count = rows.groupby(parameter, sort=False)[parameter].transform("size").to_numpy(dtype=float)
        spread = (within - (count - 1) / 2) * (0.7 * slot / count)
        ax.errorbar(base + spread, rows[metric], yerr=_error_bars(rows, metric), fmt=style["marker"],
                    color=style["color"], markersize=5, elinewidth=1, capsize=2, linestyle="none")
        means = rows.groupby(parameter)[metric].mean()
        order = np.argsort([positions[value] for value in means.index])
        ax.plot(np.array([positions[value] for value in means.index])[order] + centre, means.to_numpy()[order],
                color=style["color"], linestyle=style["linestyle"], linewidth=1.2, alpha=0.85)
    names = [format_value(value) for value in values]
    slanted = max(map(len, names)) > SLANT_NAMES_LONGER_THAN and len(names) > 2
    ax.set_xticks(range(len(values)), names, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel(PARAMETER_LABELS.get(parameter, parameter))
    ax.set_title(f"{parameter} ({table[parameter].notna().sum()} trials)")
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="y", labelleft=True)


def _draw_nothing_varies(ax: Axes, table: pd.DataFrame, parameters: list[str]) -> None:
    constant = [f"{p}={format_value(table[p].dropna().iloc[0])}" if p in table and table[p].notna().any()
                else f"{p}: not in the table" for p in parameters]
    text = (f"No hyperparameter takes more than one value\namong the {len(table)} test trial(s).\n\n"
            + "\n".join(textwrap.wrap("; ".join(constant), 60, break_long_words=False, break_on_hyphens=False)))
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11)
    ax.set_axis_off()


# ----------------------------------------------------------------------------- accuracy vs prediction time


def plot_accuracy_vs_time(
    metrics: pd.DataFrame,
    path: str | os.PathLike,
    metric: str = "accuracy",
) -> Figure:
    """``metric`` against prediction time per image (ms, log scale), one marker per approach.

    Time per image is ``1000 / images_per_second``; the error bars are the 95 % intervals. The
    trials of the Pareto front (:func:`pareto_front`: no other trial both faster and more accurate)
    are ringed, joined by a step line and numbered; a key below the axes gives each number's
    short label (:func:`model_labels`, with the keys that tell apart trials sharing one), value
    and time. Trials without a
    prediction time are left out (the subtitle counts them). Requires ``approach``,
    ``images_per_second``, ``metric``, ``<metric>_low`` and ``<metric>_high``. Returns the
    saved Figure.
    """
    table = metric_table(metrics, metric, numeric=("images_per_second",), other=("approach",))
    timed = np.isfinite(table["images_per_second"]) & (table["images_per_second"] > 0) & table[metric].notna()
    if not timed.any():
        raise ValueError(f"metrics: no row has both a positive images_per_second and a {metric}")
    left_out = int((~timed).sum())
    table = table[timed].assign(_ms=SECONDS_TO_MS / table.loc[timed, "images_per_second"],
                                _label=model_labels(table[timed]))
    front = table[pareto_front(table, metric)].sort_values("_ms")
    metric_label = METRIC_LABELS.get(metric, metric)
    with drawing():
        fig, (ax,) = new_figure(7.6, 5.4)
        _draw_approaches(ax, table, metric)
        ax.step(front["_ms"], front[metric], where="post", color=NEUTRAL, linestyle="--", linewidth=1,
                label="Pareto front", zorder=1)
        ax.plot(front["_ms"], front[metric], linestyle="none", marker="o", markersize=13, markerfacecolor="none",
                markeredgecolor=NEUTRAL, markeredgewidth=1.2, zorder=1)
        span = np.log10(table["_ms"].max() / table["_ms"].min())
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if span <= MAX_DECADES_WITH_STEPS else (1.0,)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        margin = 10 ** max(0.15, 0.08 * span)
        ax.set_xlim(table["_ms"].min() / margin, table["_ms"].max() * margin)
        low, high = _comparison_limits(table, (metric, f"{metric}_low", f"{metric}_high"))
        top = high + 0.06 * (high - low)  # room for the front's numbers
        ax.set_ylim(low, top)
        ax.set_yticks([tick for tick in ax.get_yticks() if low <= tick <= min(top, 1.0)])
        ax.set_xlabel("Prediction time per image (ms, log scale)")
        ax.set_ylabel(f"{metric_label}, test split\n(point, {CONFIDENCE_LABEL})")
        note = f"\n{left_out} trial(s) without a prediction time left out" if left_out else ""
        ax.set_title(f"{metric_label} vs prediction time, test split ({len(table)} trials){note}", loc="left")
        ax.grid(alpha=0.3, which="major")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="approach (trials)", alignment="left")
        fig.tight_layout()
        _annotate_front(fig, ax, front, metric)
        save_png(fig, path)
    return fig


def _draw_approaches(ax: Axes, table: pd.DataFrame, metric: str) -> None:
    approaches = sorted(table["approach"].astype(str).unique(),
                        key=lambda a: (APPROACH_ORDER.index(a) if a in APPROACH_ORDER else len(APPROACH_ORDER), a))
    for index, approach in enumerate(approaches):
        rows = table[table["approach"].astype(str) == approach]
        ax.errorbar(rows["_ms"], rows[metric], yerr=_error_bars(rows, metric),
                    fmt=APPROACH_MARKERS.get(approach, SERIES_MARKERS[index % len(SERIES_MARKERS)]),
                    color=OKABE_ITO[index % len(OKABE_ITO)], markersize=6, elinewidth=1, capsize=2,
                    alpha=0.9, label=f"{approach} ({len(rows)})", zorder=2)


def _distinct_labels(rows: pd.DataFrame) -> list[str]:
    """The rows' short labels, extended by the trial keys that tell apart rows sharing a label."""
    keys = [key for key in TRIAL_KEYS if key in rows.columns and key not in MODEL_NAME_COLUMNS]
    labels = list(rows["_label"])
    for label in {label for label in labels if labels.count(label) > 1}:
        same = rows[rows["_label"] == label]
        differing = [key for key in keys if same[key].nunique(dropna=False) > 1]
        for position, (_, row) in enumerate(rows.iterrows()):
            if row["_label"] == label:
                extra = ", ".join(f"{key}={format_value(row[key])}" for key in differing if not pd.isna(row[key]))
                labels[position] = f"{label}, {extra}" if extra else label
    return labels


def _annotate_front(fig: Figure, ax: Axes, front: pd.DataFrame, metric: str) -> None:
    """Number the front's points, fastest first, up-left of each (a region no trial occupies, by
    definition of the front), and list number, short label, value and time in a key below the axes.

    A number is moved up where it would overlap an earlier one.
    """
    annotations = [ax.annotate(str(number), (x, y), xytext=(-ANNOTATION_OFFSET_PT, ANNOTATION_OFFSET_PT),
                               textcoords="offset points", ha="center", va="center", fontsize=9,
                               fontweight="bold", color=NEUTRAL,
                               bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": NEUTRAL,
                                     "linewidth": 0.6, "alpha": 0.9})
                   for number, (x, y) in enumerate(zip(front["_ms"], front[metric]), start=1)]
    renderer = _renderer(fig)
    to_points = 72.0 / fig.dpi
    placed = []
    for annotation in annotations:
        for _ in range(len(annotations) + 1):
            box = annotation.get_window_extent(renderer)
            hit = next((other for other in placed if box.overlaps(other)), None)
            if hit is None:
                break
            dx, dy = annotation.xyann
            annotation.xyann = (dx, dy + (hit.y1 - box.y0 + 2) * to_points)
        placed.append(annotation.get_window_extent(renderer))
    entries = [f"{number}   {label}: {value:.3f} at {ms:.3g} ms" for number, (label, value, ms)
               in enumerate(zip(_distinct_labels(front), front[metric], front["_ms"]), start=1)]
    handles = [Line2D([], [], linestyle="none")] * len(entries)
    fig.legend(handles, entries, loc="upper left", bbox_to_anchor=(ax.get_position().x0, 0.0), frameon=False,
               handlelength=0, handletextpad=0, alignment="left",
               title=f"Pareto front, fastest first ({METRIC_LABELS.get(metric, metric)} at time per image)")


def _renderer(fig: Figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


# ----------------------------------------------------------------------------- leakage: subject vs random split


def plot_leakage(metrics: pd.DataFrame, path: str | os.PathLike, metric: str = "accuracy") -> Figure:
    """Same model, subject-disjoint vs cell-level random split: ``metric`` of each pair of trials.

    One row per pair (:func:`leakage_pairs`), largest difference at the top: the subject-disjoint
    and the random-split value, each with its 95 % interval, joined by a line, and the difference
    (random − subject) as text right of the axes. A positive difference is what leakage of one
    subject's cells across the split would produce. Raises ValueError when no pair exists.
    Returns the saved Figure.
    """
    pairs = leakage_pairs(metrics, metric)
    if pairs.empty:
        counts = metrics["split_method"].value_counts().to_dict()
        raise ValueError(f"metrics has no pair of trials differing only in split_method (subject vs random); "
                         f"rows per split_method: {counts}")
    pairs = pairs.iloc[::-1].reset_index(drop=True)  # largest difference on the top row
    labels = ["\n".join(textwrap.wrap(label, LABEL_WRAP_CHARS, break_long_words=False)) for label in pairs["label"]]
    longest = max(len(line) for label in labels for line in label.split("\n"))
    lines = max(label.count("\n") + 1 for label in labels)
    width = min(MAX_WIDTH_IN, PLOT_WIDTH_IN + 1.4 + CHAR_WIDTH_IN * longest)
    height = BASE_HEIGHT_IN + 0.9 + (PAIR_ROW_HEIGHT_IN + LINE_HEIGHT_IN * (lines - 1)) * max(len(pairs), 2)
    metric_label = METRIC_LABELS.get(metric, metric)
    keys = [key for key in (*TRIAL_KEYS, "split") if key in pairs.columns]
    fixed = {key: pairs[key].iloc[0] for key in keys
             if pairs[key].nunique(dropna=False) == 1 and not pd.isna(pairs[key].iloc[0])}
    with drawing():
        fig, (ax,) = new_figure(width, height)
        rows = np.arange(len(pairs))
        for (method, name), offset, colour, marker in zip(SPLIT_METHOD_NAMES.items(), (PAIR_ROW_OFFSET, -PAIR_ROW_OFFSET),
                                                          OKABE_ITO[:2], ("o", "s")):
            ax.hlines(rows + offset, pairs[f"{method}_low"], pairs[f"{method}_high"], color=colour, linewidth=2)
            ax.plot(pairs[method], rows + offset, linestyle="none", marker=marker, markersize=7, color=colour,
                    label=f"{name} split")
        for row, record in pairs.iterrows():
            ax.plot([record["subject"], record["random"]], [row + PAIR_ROW_OFFSET, row - PAIR_ROW_OFFSET],
                    color=NEUTRAL, linewidth=1, zorder=0)
        values = blended_transform_factory(ax.transAxes, ax.transData)
        for row, difference in zip(rows, pairs["difference"]):
            text = "undefined" if not np.isfinite(difference) else f"Δ = {difference:+.3f}"
            ax.text(1.02, row, text, transform=values, va="center", fontsize=10)
        ax.set_yticks(rows, labels)
        ax.set_ylim(-0.6, len(pairs) - 0.4)
        columns = tuple(method + suffix for method in SPLIT_METHOD_NAMES for suffix in ("", "_low", "_high"))
        ax.set_xlim(*_comparison_limits(pairs, columns))
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(f"{metric_label}, test split: point and {CONFIDENCE_LABEL}")
        heading = "\n".join(textwrap.wrap(
            f"{metric_label} (test): same model, subject-disjoint vs cell-level random split", 80))
        note = "\nΔ = random − subject-disjoint (Δ > 0: higher on the random split, as leakage would make it)"
        ax.set_title(heading + note + _fixed_subtitle(fixed), loc="left")
        fig.tight_layout()
        fig.legend(*ax.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncols=2, frameon=False)
        save_png(fig, path)
    return fig


def plot_seed_spread(metrics: pd.DataFrame, path: str | os.PathLike, metric: str = "accuracy") -> Figure:
    """How much another training seed moves each configuration trained with several (``repeats``):
    one row per configuration (:func:`leukobench.report.selection.seed_spread`), each seed's
    ``metric`` on the test split with its 95 % bootstrap interval, and the mean over the seeds. Seeds
    far apart, or intervals that do not overlap, say that one run of this configuration cannot be
    trusted alone. A seed that did not learn (metrics.csv's ``learned``) gets
    :data:`leukobench.style.NOT_LEARNED_MARKER`, explained in the legend, and the row's text counts
    them. Raises ValueError when no configuration has two seeds. Returns the saved Figure."""
    table = seed_spread(metrics, metric)
    if table.empty:
        raise ValueError("metrics has no configuration trained with more than one seed (grid.repeats or "
                         "classical.repeats, or several values in seed)")
    configurations = list(dict.fromkeys(table["label"]))[::-1]  # best mean on the top row
    rows = {label: row for row, label in enumerate(configurations)}
    labels = ["\n".join(textwrap.wrap(label, LABEL_WRAP_CHARS, break_long_words=False)) for label in configurations]
    longest = max(len(line) for label in labels for line in label.split("\n"))
    width = min(MAX_WIDTH_IN, PLOT_WIDTH_IN + 1.4 + CHAR_WIDTH_IN * longest)
    height = BASE_HEIGHT_IN + 0.9 + PAIR_ROW_HEIGHT_IN * max(len(configurations), 2)
    metric_label = METRIC_LABELS.get(metric, metric)
    failed = did_not_learn(table[LEARNED]).eq(1) if LEARNED in table else pd.Series(False, index=table.index)
    with drawing():
        fig, (ax,) = new_figure(width, height)
        handles = []
        for label, group in table.groupby("label", sort=False):
            seeds = len(group)
            offsets = np.linspace(-PAIR_ROW_OFFSET, PAIR_ROW_OFFSET, seeds) if seeds > 1 else np.zeros(1)
            y = rows[label] + offsets
            ax.hlines(y, group[f"{metric}_low"], group[f"{metric}_high"], color=OKABE_ITO[0], linewidth=1.2, alpha=0.7)
            ax.plot(group[metric], y, linestyle="none", marker="o", markersize=5, color=OKABE_ITO[0])
            handles = _mark_not_learned(ax, group[metric], y, failed[group.index]) or handles
            ax.plot([group[metric].mean()] * 2, [rows[label] - 0.35, rows[label] + 0.35], color=OKABE_ITO[1], linewidth=2)
            dead = int(failed[group.index].sum())
            ax.text(1.02, rows[label], f"{seeds} seeds: {group[metric].min():.3f}–{group[metric].max():.3f}"
                    + (f", {dead} did not learn" if dead else ""),
                    transform=blended_transform_factory(ax.transAxes, ax.transData), va="center", fontsize=9)
        ax.set_yticks(list(rows.values()), labels)
        ax.set_ylim(-0.6, len(configurations) - 0.4)
        ax.set_xlim(*_comparison_limits(table, (metric, f"{metric}_low", f"{metric}_high")))
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(f"{metric_label}, test split: each seed with its {CONFIDENCE_LABEL}; bar: mean over seeds")
        ax.set_title(f"{metric_label} (test) of each configuration over its training seeds", loc="left")
        fig.tight_layout()
        if handles:  # below the axes, clear of the seeds
            fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False)
        save_png(fig, path)
    return fig
