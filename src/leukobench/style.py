"""The look every figure shares: backend, resolution, palette, font sizes, the atomic PNG write.

Each figure module (the store's sample sheet in ``leukobench.data.samples``, a trial's figures in
``leukobench.report.figures.trial`` and its saliency sheet in ``leukobench.learn.saliency_sheet``, the grid's in
the other modules of ``leukobench.report.figures``, one per figure family) draws with these, each in a workflow rule that only draws: editing the
look redraws the figures and reruns no store, training, model pass, evaluation or table. Every
figure is one PNG (Agg backend, ``DPI`` dots per inch) with colour-blind-safe colours (the
Okabe-Ito palette, train/validation also told apart by line style), written atomically: to a
temporary file in the target folder, then ``os.replace``, so a failed plot leaves no half-written
file and keeps any earlier one. Figures are ``matplotlib.figure.Figure`` objects that pyplot never
sees, so none stays open; inputs are checked before drawing and bad input raises ``ValueError``
naming the argument or column. Ground floor: imports nothing from leukobench but ``leukobench.io``.

Every figure is made and saved inside :func:`drawing`, the one place the look is applied. Text is
text: names and notes that come from data or config (class folders, patients, studies, datasets)
are drawn as written, never parsed as markup, so ``$``, ``\\``, ``^`` or ``_`` in a name neither
stops a job in matplotlib's math-text parser nor changes what is shown (``text.parse_math`` off;
the project's own labels use no math text).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from leukobench.io import atomic_path  # noqa: E402

DPI = 130
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
LINE_STYLES = ("-", "--", "-.", ":")
NEUTRAL = "#555555"
STYLE = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "figure.titlesize": 14,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "text.parse_math": False,  # names from data or config are text: '$a$' is drawn as '$a$', never as math
}
SLANT_NAMES_LONGER_THAN = 6  # tick labels (class names, parameter values): slanted when any is longer
# a trial that did not learn (leukobench.learned), drawn over its point wherever a figure shows trials
NOT_LEARNED_MARKER = {"marker": "X", "markersize": 10, "markerfacecolor": OKABE_ITO[6], "markeredgecolor": "white",
                      "markeredgewidth": 0.8, "linestyle": "none", "zorder": 4}


@contextmanager
def drawing() -> Iterator[None]:
    """The shared look (:data:`STYLE`) for the block: make and save every figure inside it."""
    with matplotlib.rc_context(STYLE):
        yield


def save_png(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` as PNG to ``path`` atomically (temporary file in the same folder, then replace)."""
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)


def new_figure(width: float, height: float, panels: int = 1) -> tuple[Figure, list[Axes]]:
    """A ``width`` x ``height`` inch figure at ``DPI`` with ``panels`` axes side by side."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    return fig, list(np.atleast_1d(fig.subplots(1, panels)))
