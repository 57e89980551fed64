"""The leakage pairs: the same model on the subject-disjoint and the cell-level random split."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from leukobench.keys import TRIAL_KEYS
from leukobench.report.figures.common import (BASE_HEIGHT_IN, CHAR_WIDTH_IN, CONFIDENCE_LABEL, LABEL_WRAP_CHARS,
                                              LINE_HEIGHT_IN, MAX_WIDTH_IN, METRIC_LABELS, PAIR_ROW_HEIGHT_IN,
                                              PAIR_ROW_OFFSET, PLOT_WIDTH_IN, _comparison_limits, _fixed_subtitle)
from leukobench.report.selection import SPLIT_METHOD_NAMES, leakage_pairs
from leukobench.style import NEUTRAL, OKABE_ITO, drawing, new_figure, save_png


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
