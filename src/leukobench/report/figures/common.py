"""What the grid's figures share: metric names on axes, the sizes of the one-row-per-configuration
charts, the approaches' order and the series' markers, axis limits, error bars, the "fixed:" subtitle,
the mark of a trial that did not learn, and the check of ``(label, y_true, y_score)`` curves."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from leukobench.learned import NOT_LEARNED_LABEL
from leukobench.metrics import check_inputs
from leukobench.report.selection import format_value
from leukobench.style import LINE_STYLES, NOT_LEARNED_MARKER, OKABE_ITO

CONFIDENCE_LABEL = "95 % bootstrap CI"
METRIC_LABELS = {
    "accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1 score",
    "weighted_f1": "Weighted F1 score", "balanced_accuracy": "Balanced accuracy",
    "auc": "ROC AUC", "sensitivity": "Sensitivity", "specificity": "Specificity",
}
BASE_HEIGHT_IN = 1.6  # comparison chart: title, axis and margins
PLOT_WIDTH_IN = 5.0  # comparison chart: width of the axes
CHAR_WIDTH_IN = 0.075  # comparison chart: width of one label character
LINE_HEIGHT_IN = 0.18  # comparison chart: extra row height per extra label line
LABEL_WRAP_CHARS = 90  # comparison chart: longer row labels are wrapped
MAX_WIDTH_IN = 20.0
SUBTITLE_WIDTH_CHARS = 110
APPROACH_ORDER = ("cnn", "hybrid", "classical")
SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
PAIR_ROW_OFFSET = 0.17  # leakage figure: vertical offset of the two points of one pair
PAIR_ROW_HEIGHT_IN = 0.55  # leakage figure: height per pair


def _fixed_subtitle(fixed: dict) -> str:
    if not fixed:
        return ""
    text = "fixed: " + ", ".join(f"{c}={format_value(v)}" for c, v in fixed.items())
    return "\n" + "\n".join(textwrap.wrap(text, SUBTITLE_WIDTH_CHARS))


def _mark_not_learned(ax: Axes, values: pd.Series, rows: np.ndarray, failed: pd.Series) -> list[Line2D]:
    """The trials that did not learn (``failed``): :data:`NOT_LEARNED_MARKER` over their points at
    ``(values, rows)``; the legend entry, or none when every trial learned."""
    chosen = np.asarray(failed, dtype=bool)
    if not chosen.any():
        return []
    ax.plot(np.asarray(values, dtype=float)[chosen], np.asarray(rows, dtype=float)[chosen], **NOT_LEARNED_MARKER)
    return [Line2D([], [], **{**NOT_LEARNED_MARKER, "zorder": None}, label=NOT_LEARNED_LABEL)]


def _comparison_limits(
    table: pd.DataFrame, bounds: tuple[str, str, str], references: np.ndarray | None = None
) -> tuple[float, float]:
    values = np.append(table[list(bounds)].to_numpy(dtype=float).ravel(), [] if references is None else references)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    margin = 0.05 * max(values.max() - values.min(), 0.1)
    return max(0.0, values.min() - margin), min(1.0, values.max()) + margin


def _error_bars(table: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars (2, n) from the interval columns; 0 where the interval is undefined."""
    value = table[metric].to_numpy(dtype=float)
    below = value - table[f"{metric}_low"].to_numpy(dtype=float)
    above = table[f"{metric}_high"].to_numpy(dtype=float) - value
    return np.nan_to_num(np.clip(np.vstack([below, above]), 0, None))


def _series_style(index: int) -> dict:
    return {"color": OKABE_ITO[index % len(OKABE_ITO)], "marker": SERIES_MARKERS[index % len(SERIES_MARKERS)],
            "linestyle": LINE_STYLES[index % len(LINE_STYLES)]}


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
