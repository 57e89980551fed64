"""Accuracy against prediction time per image, the Pareto front of the trials numbered."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from leukobench.keys import TRIAL_KEYS
from leukobench.report.figures.common import (APPROACH_ORDER, CONFIDENCE_LABEL, METRIC_LABELS, SERIES_MARKERS,
                                              _comparison_limits, _error_bars)
from leukobench.report.selection import MODEL_NAME_COLUMNS, format_value, metric_table, model_labels, pareto_front
from leukobench.style import NEUTRAL, OKABE_ITO, drawing, new_figure, save_png

APPROACH_MARKERS = {"cnn": "o", "hybrid": "s", "classical": "^"}
SECONDS_TO_MS = 1000.0
ANNOTATION_OFFSET_PT = 7  # accuracy-vs-time figure: offset of a front point's number from the point
MAX_DECADES_WITH_STEPS = 2.5  # accuracy-vs-time figure: ticks at 1, 2, 5 x 10^k up to this span, else decades


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
