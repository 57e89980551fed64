"""The figures of one trial: ROC curve, confusion matrix and training curves of its test split.

Drawn by the workflow's rule ``trial_figures`` from the trial's predictions and history, not by its
evaluation, with the shared look of :mod:`leukobench.style` (one PNG each, written atomically, no
pyplot state; bad input raises ``ValueError`` naming the argument or column): editing them or the
look reruns no evaluation. Reaches the ground floor only, none of the grid's report modules.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve

from leukobench.learned import read_history
from leukobench.metrics import check_inputs, checked_frame, n_classes
from leukobench.predictions import checked_labels, scores_of
from leukobench.style import (LINE_STYLES, NEUTRAL, OKABE_ITO, SLANT_NAMES_LONGER_THAN, drawing,
                              new_figure, save_png)

EPOCH_PAD = 0.5  # x-axis margin of the training curves, in epochs
MAX_MARKED_EPOCHS = 30  # draw a marker at every epoch up to this many
HISTORY_COLUMNS = ("epoch", "loss", "accuracy")  # val_loss, val_accuracy when there is a validation split


# ----------------------------------------------------------------------------- ROC


def plot_roc(
    y_true: np.ndarray,
    y_score: np.ndarray,
    path: str | os.PathLike,
    title: str,
    class_names: Sequence[str] | None = None,
) -> None:
    """ROC curve with its AUC: one curve for binary scores, one-vs-rest per class for ``(n, k)``."""
    labels, scores = check_inputs(y_true, y_score)
    names = _class_names(class_names, n_classes(scores))
    with drawing():
        fig, (ax,) = new_figure(5.8, 5.6)
        drawn = _draw_roc_curves(ax, labels, scores, names)
        ax.plot([0, 1], [0, 1], linestyle="--", color=NEUTRAL, linewidth=1, label="chance (AUC = 0.500)")
        if not drawn:
            ax.text(0.5, 0.6, "ROC undefined:\ny_true holds a single class", ha="center", fontsize=12)
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal", title=title)
        ax.set_xlabel("False positive rate (1 − specificity)")
        ax.set_ylabel("True positive rate (sensitivity)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", title=f"n = {len(labels):,} images", framealpha=0.9)
        fig.tight_layout()
        save_png(fig, path)


def _class_names(class_names: Sequence[str] | None, k: int) -> list[str]:
    if class_names is None:
        return [f"class {c}" for c in range(k)]
    names = [str(name) for name in class_names]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names but the scores have {k} classes")
    return names


def _draw_roc_curves(ax: Axes, labels: np.ndarray, scores: np.ndarray, names: list[str]) -> int:
    """Draw the curves that are defined; return how many were drawn."""
    if scores.ndim == 1:
        curves = [(f"{names[1]} vs {names[0]}", labels == 1, scores)]
    else:
        curves = [(f"{name} vs rest", labels == c, scores[:, c]) for c, name in enumerate(names)]
    drawn = 0
    for index, (name, is_positive, score) in enumerate(curves):
        if is_positive.all() or not is_positive.any():
            ax.plot([], [], linestyle="none", label=f"{name}: undefined (one class only)")
            continue
        false_positive_rate, true_positive_rate, _ = roc_curve(is_positive, score)
        area = roc_auc_score(is_positive, score)
        ax.plot(false_positive_rate, true_positive_rate, color=OKABE_ITO[index % len(OKABE_ITO)],
                linestyle=LINE_STYLES[index // len(OKABE_ITO) % len(LINE_STYLES)], linewidth=2,
                label=f"{name} (AUC = {area:.3f})")
        drawn += 1
    return drawn


# ----------------------------------------------------------------------------- confusion matrix


def plot_confusion(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: list[str],
    path: str | os.PathLike,
    title: str,
) -> None:
    """Confusion matrix: count and row-normalised percentage (share of the true class) per trial."""
    names = [str(name) for name in class_names]
    if not names:
        raise ValueError("class_names is empty")
    truth, predicted = checked_labels(y_true, "y_true", len(names)), checked_labels(y_pred, "y_pred", len(names))
    if len(truth) != len(predicted):
        raise ValueError(f"y_pred has {len(predicted)} entries but y_true has {len(truth)}")
    counts = confusion_matrix(truth, predicted, labels=list(range(len(names))))
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.full(counts.shape, np.nan), where=row_totals > 0)
    side = max(4.8, 2.6 + 1.1 * len(names))
    with drawing():
        fig, (ax,) = new_figure(side + 1.2, side)
        image = ax.imshow(np.nan_to_num(shares), cmap="Blues", vmin=0, vmax=1)
        _annotate_cells(ax, counts, shares)
        colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        colorbar.set_label("Share of the true class (%)")
        colorbar.set_ticks(np.linspace(0, 1, 6), labels=[f"{p:.0f}" for p in np.linspace(0, 100, 6)])
        _label_confusion_axes(ax, names)
        ax.set_title(f"{title}\n(n = {len(truth):,} images)")
        fig.tight_layout()
        save_png(fig, path)


def _label_confusion_axes(ax: Axes, names: list[str]) -> None:
    ticks = np.arange(len(names))
    slanted = max(map(len, names)) > SLANT_NAMES_LONGER_THAN
    ax.set_xticks(ticks, names, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.spines[:].set_visible(False)


def _annotate_cells(ax: Axes, counts: np.ndarray, shares: np.ndarray) -> None:
    font_size = max(7, 13 - len(counts))
    for (row, column), count in np.ndenumerate(counts):
        share = shares[row, column]
        text = f"{count:,}\n{share * 100:.1f} %" if np.isfinite(share) else f"{count:,}\n–"
        colour = "white" if np.isfinite(share) and share > 0.55 else "black"
        ax.text(column, row, text, ha="center", va="center", color=colour, fontsize=font_size)


# ----------------------------------------------------------------------------- training history


def plot_history(history: pd.DataFrame, path: str | os.PathLike, title: str) -> None:
    """Loss and accuracy per epoch, training and validation, from a Keras ``CSVLogger`` table.

    Keras counts epochs from 0; the figure counts them from 1, as the training log does.
    """
    table = checked_frame(history, "history", HISTORY_COLUMNS).sort_values("epoch")
    table = table.assign(epoch=table["epoch"] + 1)
    for column in ("val_loss", "val_accuracy"):
        if column not in table:
            table = table.assign(**{column: np.nan})
    best = table.loc[table["val_loss"].idxmin()] if table["val_loss"].notna().any() else None
    with drawing():
        fig, axes = new_figure(11.0, 4.4, panels=2)
        for ax, quantity, label in zip(axes, ("loss", "accuracy"), ("Loss", "Accuracy (fraction correct)")):
            _draw_history_panel(ax, table, quantity, label, best)
        fig.suptitle(title)
        fig.tight_layout()
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=len(names), frameon=False)
        save_png(fig, path)


def _draw_history_panel(
    ax: Axes, table: pd.DataFrame, quantity: str, label: str, best: pd.Series | None
) -> None:
    marker = "o" if len(table) <= MAX_MARKED_EPOCHS else None
    series = (("", "training", OKABE_ITO[0], "-"), ("val_", "validation", OKABE_ITO[1], "--"))
    for prefix, name, colour, style in series:
        if table[prefix + quantity].isna().all():
            continue
        ax.plot(table["epoch"], table[prefix + quantity], color=colour, linestyle=style,
                marker=marker, markersize=4, linewidth=2, label=name)
    if best is not None:
        ax.axvline(best["epoch"], color=NEUTRAL, linestyle=":", linewidth=1.2,
                   label=f"lowest val. loss (epoch {best['epoch']:g})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(table["epoch"].min() - EPOCH_PAD, table["epoch"].max() + EPOCH_PAD)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(label)
    ax.set_title(label.split(" (")[0])
    ax.grid(alpha=0.3)


def plot_trial(predictions: pd.DataFrame, metadata: dict, history_path: str | os.PathLike,
              roc_path: str | os.PathLike, confusion_path: str | os.PathLike, curves_path: str | os.PathLike) -> None:
    """A Keras trial's three figures: the ROC and the confusion matrix of its test split, from its
    predictions (:func:`leukobench.predictions.read_predictions`), and its training curves."""
    trial = metadata["trial"]
    title = f"{trial['model']}, {trial['size']} px, {trial['optimizer']}, {trial['epochs']} epochs"
    test = predictions[predictions["split"] == "test"]
    names = metadata["class_names"]
    plot_roc(test["label"].to_numpy(), scores_of(test), roc_path, title=f"ROC, test split: {title}", class_names=names)
    plot_confusion(test["label"].to_numpy(), test["pred"].to_numpy(), names, confusion_path, title=f"Test split: {title}")
    plot_history(read_history(history_path), curves_path, title=f"Training: {title}")
