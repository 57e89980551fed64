"""Figures of the report: ROC curves, confusion matrices, training curves and the grid comparison.

Every function draws one PNG (Agg backend, ``DPI`` dots per inch) with colour-blind-safe
colours (the Okabe-Ito palette, train/validation also told apart by line style) and writes it
atomically: to a temporary file in the target folder, then ``os.replace``, so a failed plot
leaves no half-written file and keeps any earlier one. Figures are ``matplotlib.figure.Figure``
objects that pyplot never sees, so none stays open; inputs are checked before drawing and bad
input raises ``ValueError`` naming the argument or column.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve  # noqa: E402

from leukobench.io import atomic_path  # noqa: E402
from leukobench.metrics import METRIC_NAMES, check_inputs, n_classes  # noqa: E402

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
}
SLANT_NAMES_LONGER_THAN = 6  # confusion matrix: slant the column names when any is longer
CHANCE_RATE = 0.5  # chance AUC, and the majority-class rate of a balanced binary task
CONFIDENCE_LABEL = "95 % bootstrap CI"
EPOCH_PAD = 0.5  # x-axis margin of the training curves, in epochs
MAX_MARKED_EPOCHS = 30  # draw a marker at every epoch up to this many
HISTORY_COLUMNS = ("epoch", "loss", "accuracy")  # val_loss, val_accuracy when there is a validation split
METRIC_LABELS = {
    "accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1 score",
    "weighted_f1": "Weighted F1 score", "balanced_accuracy": "Balanced accuracy",
    "auc": "ROC AUC", "sensitivity": "Sensitivity", "specificity": "Specificity",
}
ROW_HEIGHT_IN = 0.3  # comparison chart: height per row
BASE_HEIGHT_IN = 1.6  # comparison chart: title, axis and margins
PLOT_WIDTH_IN = 5.0  # comparison chart: width of the axes
CHAR_WIDTH_IN = 0.075  # comparison chart: width of one label character
VALUE_COLUMN_IN = 2.4  # comparison chart: the "value [low, high]" column right of the axes
LINE_HEIGHT_IN = 0.18  # comparison chart: extra row height per extra label line
LABEL_WRAP_CHARS = 90  # comparison chart: longer row labels are wrapped
MIN_ROWS = 3  # comparison chart: height never below that of three rows
MAX_WIDTH_IN = 20.0
SUBTITLE_WIDTH_CHARS = 110


# ----------------------------------------------------------------------------- writing


def _save(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` as PNG to ``path`` atomically (temporary file in the same folder, then replace)."""
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)


def _new_figure(width: float, height: float, panels: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), dpi=DPI)
    return fig, list(np.atleast_1d(fig.subplots(1, panels)))


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
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _new_figure(5.8, 5.6)
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
        _save(fig, path)


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
    """Confusion matrix: count and row-normalised percentage (share of the true class) per cell."""
    names = [str(name) for name in class_names]
    if not names:
        raise ValueError("class_names is empty")
    truth, predicted = _checked_labels(y_true, "y_true", len(names)), _checked_labels(y_pred, "y_pred", len(names))
    if len(truth) != len(predicted):
        raise ValueError(f"y_pred has {len(predicted)} entries but y_true has {len(truth)}")
    counts = confusion_matrix(truth, predicted, labels=list(range(len(names))))
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.full(counts.shape, np.nan), where=row_totals > 0)
    side = max(4.8, 2.6 + 1.1 * len(names))
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _new_figure(side + 1.2, side)
        image = ax.imshow(np.nan_to_num(shares), cmap="Blues", vmin=0, vmax=1)
        _annotate_cells(ax, counts, shares)
        colorbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        colorbar.set_label("Share of the true class (%)")
        colorbar.set_ticks(np.linspace(0, 1, 6), labels=[f"{p:.0f}" for p in np.linspace(0, 100, 6)])
        _label_confusion_axes(ax, names)
        ax.set_title(f"{title}\n(n = {len(truth):,} images)")
        fig.tight_layout()
        _save(fig, path)


def _label_confusion_axes(ax: Axes, names: list[str]) -> None:
    ticks = np.arange(len(names))
    slanted = max(map(len, names)) > SLANT_NAMES_LONGER_THAN
    ax.set_xticks(ticks, names, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.spines[:].set_visible(False)


def _checked_labels(values: np.ndarray, argument: str, k: int) -> np.ndarray:
    labels = np.asarray(values)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"{argument} must be a non-empty 1-D array of class labels, got shape {labels.shape}")
    if not (labels.dtype == bool or np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"{argument} must hold integer class labels, got dtype {labels.dtype}")
    outside = (labels < 0) | (labels >= k)
    if outside.any():
        raise ValueError(f"{argument} holds label {labels[outside][0]}, outside 0..{k - 1} (class_names has {k})")
    return labels.astype(np.int64)


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
    table = _checked_frame(history, "history", HISTORY_COLUMNS).sort_values("epoch")
    table = table.assign(epoch=table["epoch"] + 1)
    for column in ("val_loss", "val_accuracy"):
        if column not in table:
            table = table.assign(**{column: np.nan})
    best = table.loc[table["val_loss"].idxmin()] if table["val_loss"].notna().any() else None
    with matplotlib.rc_context(STYLE):
        fig, axes = _new_figure(11.0, 4.4, panels=2)
        for ax, quantity, label in zip(axes, ("loss", "accuracy"), ("Loss", "Accuracy (fraction correct)")):
            _draw_history_panel(ax, table, quantity, label, best)
        fig.suptitle(title)
        fig.tight_layout()
        handles, names = axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=len(names), frameon=False)
        _save(fig, path)


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


def _checked_frame(frame: pd.DataFrame, argument: str, required: Sequence[str]) -> pd.DataFrame:
    """A copy of ``frame`` with ``required`` columns present, non-empty and numeric."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{argument} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"{argument} lacks column(s) {', '.join(map(repr, missing))}; it has {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{argument} has no rows")
    table = frame.copy()
    for column in required:
        try:
            table[column] = pd.to_numeric(table[column])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{argument} column {column!r} must be numeric: {error}") from error
    return table


# ----------------------------------------------------------------------------- grid comparison


def plot_comparison(
    metrics: pd.DataFrame,
    path: str | os.PathLike,
    metric: str = "accuracy",
    label_columns: list[str] | None = None,
    *,
    reference: float | None = CHANCE_RATE,
    title: str | None = None,
) -> None:
    """Dot plot of ``metric`` per grid cell with its 95 % interval, best at the top.

    Rows are labelled by ``label_columns`` (default: the non-metric columns that vary); the
    constant ones are listed under the title. ``reference`` draws a dashed line (chance /
    majority-class rate, 0.5 for a balanced binary task; ``None`` for none).
    """
    bounds = (metric, f"{metric}_low", f"{metric}_high")
    table = _checked_frame(metrics, "metrics", bounds)
    if label_columns is not None:
        missing = [column for column in label_columns if column not in table.columns]
        if missing:
            raise ValueError(f"metrics lacks label column(s) {', '.join(map(repr, missing))}")
    labels, fixed = _row_labels(table, metric, label_columns)
    labels = ["\n".join(textwrap.wrap(label, LABEL_WRAP_CHARS, break_long_words=False)) for label in labels]
    table = table.assign(_label=labels).sort_values(metric, na_position="first", kind="stable")
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _new_figure(*_comparison_size(labels))
        _draw_intervals(ax, table, bounds)
        _draw_reference(ax, reference)
        ax.set_xlim(*_comparison_limits(table, bounds, reference))
        ax.set_xlabel(_comparison_axis_label(metric, reference))
        heading = title or f"{METRIC_LABELS.get(metric, metric)} per configuration, test split"
        ax.set_title(heading + _fixed_subtitle(fixed), loc="left")
        fig.tight_layout()
        _save(fig, path)


def _comparison_size(labels: list[str]) -> tuple[float, float]:
    """Figure width from the longest label line, height from the number of rows and their lines."""
    lines = [label.split("\n") for label in labels]
    longest = max(len(line) for label_lines in lines for line in label_lines)
    width = min(MAX_WIDTH_IN, PLOT_WIDTH_IN + VALUE_COLUMN_IN + CHAR_WIDTH_IN * longest)
    row_height = ROW_HEIGHT_IN + LINE_HEIGHT_IN * (max(map(len, lines)) - 1)
    return width, BASE_HEIGHT_IN + row_height * max(len(labels), MIN_ROWS)


def _comparison_axis_label(metric: str, reference: float | None) -> str:
    label = f"{METRIC_LABELS.get(metric, metric)}: point estimate and {CONFIDENCE_LABEL}"
    return label if reference is None else f"{label}\ndashed line: chance / majority-class rate {reference:g}"


def _non_metric_columns(table: pd.DataFrame, metric: str) -> list[str]:
    measured = {"n", metric, *METRIC_NAMES}
    measured |= {f"{name}{suffix}" for name in measured for suffix in ("_low", "_high")}
    return [column for column in table.columns
            if column not in measured and not str(column).endswith(("_low", "_high"))]


def _row_labels(table: pd.DataFrame, metric: str, label_columns: list[str] | None) -> tuple[list[str], dict]:
    """A label per row, and the constant parameters (shown once, under the title)."""
    candidates = _non_metric_columns(table, metric)
    varying = [c for c in candidates if table[c].nunique(dropna=False) > 1]
    columns = label_columns if label_columns is not None else (varying or candidates)
    fixed = {c: table[c].iloc[0] for c in candidates if c not in columns and c not in varying}
    # a parameter a row does not have (NaN: e.g. the optimizer of a classical cell) is left out
    labels = [", ".join(f"{c}={_format_value(row[c])}" for c in columns if not pd.isna(row[c]))
              for _, row in table.iterrows()]
    labels = [label or f"row {i}" for i, label in enumerate(labels)]
    repeated = {label for label in labels if labels.count(label) > 1}
    labels = [f"{label} [row {i}]" if label in repeated else label for i, label in enumerate(labels)]
    return labels, fixed


def _format_value(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _fixed_subtitle(fixed: dict) -> str:
    if not fixed:
        return ""
    text = "fixed: " + ", ".join(f"{c}={_format_value(v)}" for c, v in fixed.items())
    return "\n" + "\n".join(textwrap.wrap(text, SUBTITLE_WIDTH_CHARS))


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


def _interval_text(record: pd.Series, bounds: tuple[str, str, str]) -> str:
    value, low, high = (record[b] for b in bounds)
    if not np.isfinite(value):
        return "undefined"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if np.isfinite(low) and np.isfinite(high) else f"{value:.3f}"


def _draw_reference(ax: Axes, reference: float | None) -> None:
    if reference is not None:
        ax.axvline(reference, color=NEUTRAL, linestyle="--", linewidth=1.2)


def _comparison_limits(
    table: pd.DataFrame, bounds: tuple[str, str, str], reference: float | None
) -> tuple[float, float]:
    values = table[list(bounds)].to_numpy(dtype=float).ravel()
    values = values[np.isfinite(values)]
    if reference is not None:
        values = np.append(values, reference)
    if values.size == 0:
        return 0.0, 1.0
    margin = 0.05 * max(values.max() - values.min(), 0.1)
    return max(0.0, values.min() - margin), min(1.0, values.max()) + margin


SAMPLES_PER_ROW = 8


def plot_sample_sheet(frame: pd.DataFrame, images: np.ndarray, class_names: Sequence[str], path: str | os.PathLike,
                      title: str, seed: int = 0) -> None:
    """What the models are fed: per class, a row of original images and a row of augmented ones.

    Args:
        frame: the store's rows (``label``, ``split``, ``augmented``), aligned with ``images``.
        images: uint8 (n, H, W, C) pixels as stored (RGB or gray).
        class_names: names of the labels 0..k-1.
        path: the PNG to write.
        title: the figure title.
        seed: which images are shown.
    """
    missing = [column for column in ("label", "split", "augmented") if column not in frame]
    if missing:
        raise ValueError(f"frame: missing column(s) {missing}")
    rng = np.random.default_rng(seed)
    rows = []
    for label, name in enumerate(class_names):
        for augmented in (False, True):
            chosen = np.flatnonzero((frame["label"].to_numpy() == label) & (frame["augmented"].to_numpy() == augmented))
            if len(chosen):
                picked = np.sort(rng.choice(chosen, size=min(SAMPLES_PER_ROW, len(chosen)), replace=False))
                rows.append((f"{name}\n{'augmented' if augmented else 'original'}", picked))
    if not rows:
        raise ValueError("frame: no images to show")
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(1.3 * SAMPLES_PER_ROW + 1.2, 1.4 * len(rows) + 0.6))
        axes = fig.subplots(len(rows), SAMPLES_PER_ROW, squeeze=False)
        for (label, picked), row_axes in zip(rows, axes):
            for k, ax in enumerate(row_axes):
                ax.set_xticks([])
                ax.set_yticks([])
                ax.spines[:].set_visible(False)
                if k < len(picked):
                    image = images[picked[k]]
                    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
                    ax.set_title(frame["split"].iloc[picked[k]], fontsize=8)
            row_axes[0].set_ylabel(label, rotation=0, ha="right", va="center")
        fig.suptitle(title)
        _save(fig, path)
