"""The hyperparameter effects: one panel per hyperparameter that varies, the metric against its values."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from leukobench.report.figures.common import (APPROACH_ORDER, CONFIDENCE_LABEL, METRIC_LABELS, _comparison_limits,
                                              _error_bars, _series_style)
from leukobench.report.selection import format_value, metric_table, model_labels
from leukobench.style import DPI, SLANT_NAMES_LONGER_THAN, drawing, save_png

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
