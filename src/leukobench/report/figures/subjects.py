"""The subjects' verdicts: per trial (the best of one dataset), each subject's cells' scores and its
verdict, the misjudged subjects named."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from leukobench.metrics import subject_scores, subjects_of_two_labels
from leukobench.predictions import predict_labels
from leukobench.style import DPI, NEUTRAL, OKABE_ITO, drawing, save_png
from leukobench.subjects import unknown_subjects

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

    A cell whose images name no subject gets a panel saying so, and one whose subjects carry two
    labels that they have no truth to judge by; where no cell has a verdict (a dataset without
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
