"""The seeds' spread: each configuration trained with several seeds, every seed's metric and the mean."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from leukobench.learned import LEARNED
from leukobench.report.figures.common import (BASE_HEIGHT_IN, CHAR_WIDTH_IN, CONFIDENCE_LABEL, LABEL_WRAP_CHARS,
                                              MAX_WIDTH_IN, METRIC_LABELS, PAIR_ROW_HEIGHT_IN, PAIR_ROW_OFFSET,
                                              PLOT_WIDTH_IN, _comparison_limits, _mark_not_learned)
from leukobench.report.selection import did_not_learn, seed_spread
from leukobench.style import OKABE_ITO, drawing, new_figure, save_png


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
