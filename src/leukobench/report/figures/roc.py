"""The ROC overlay: the ROC curves of several trials (the best of one dataset) on one axes, AUC in the legend."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from leukobench.report.figures.common import _checked_curves, _series_style
from leukobench.style import NEUTRAL, drawing, new_figure, save_png


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
