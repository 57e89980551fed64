"""The comparison chart: one row per trial with its metric and 95 % interval, best at the top,
against the majority-class rate; pretrained and not-learned trials marked."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from leukobench.learned import LEARNED, LEARNED_NOTE
from leukobench.metrics import (INTERVAL_COLUMNS, MAJORITY_RATE, METRIC_NAMES, SALIENCY_COLUMNS, checked_frame,
                                no_interval_text)
from leukobench.report.figures.common import (BASE_HEIGHT_IN, CHAR_WIDTH_IN, CONFIDENCE_LABEL, LABEL_WRAP_CHARS,
                                              LINE_HEIGHT_IN, MAX_WIDTH_IN, METRIC_LABELS, PLOT_WIDTH_IN,
                                              _comparison_limits, _fixed_subtitle, _mark_not_learned)
from leukobench.report.selection import DID_NOT_LEARN, did_not_learn, format_value
from leukobench.style import NEUTRAL, OKABE_ITO, drawing, new_figure, save_png

ROW_HEIGHT_IN = 0.3  # comparison chart: height per row
VALUE_COLUMN_IN = 2.4  # comparison chart: the "value [low, high]" column right of the axes
MIN_ROWS = 3  # comparison chart: height never below that of three rows


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
