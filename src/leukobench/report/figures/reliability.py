"""The reliability sheet: a reliability diagram per trial (the best of one dataset), with its
temperature-scaled scores beside the model's own."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from leukobench.metrics import calibration_bins, point_metrics
from leukobench.report.figures.common import _checked_curves
from leukobench.style import DPI, NEUTRAL, OKABE_ITO, drawing, save_png

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
