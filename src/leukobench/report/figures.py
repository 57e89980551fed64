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
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402
from matplotlib.transforms import blended_transform_factory  # noqa: E402
from sklearn.metrics import confusion_matrix, roc_auc_score, roc_curve  # noqa: E402

from leukobench.keys import CELL_KEYS  # noqa: E402
from leukobench.io import atomic_path  # noqa: E402
from leukobench.metrics import INTERVAL_COLUMNS, METRIC_NAMES, check_inputs, n_classes, no_interval_text  # noqa: E402

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
    measured = {"n", metric, *METRIC_NAMES, *INTERVAL_COLUMNS}
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
    if np.isfinite(low) and np.isfinite(high):
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    return no_interval_text(value, record.get("interval_note"))


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


# ----------------------------------------------------------------------------- report figures over the grid
#
# The functions below read the report's metric table (``results/report/metrics.csv``, one row per
# evaluated cell; the caller passes the test rows), return the Figure they saved (for tests) and
# raise ValueError naming any required column the table lacks.

APPROACH_ORDER = ("cnn", "hybrid", "classical")
APPROACH_MARKERS = {"cnn": "o", "hybrid": "s", "classical": "^"}
SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
MODEL_NAME_COLUMNS = ("approach", "model", "features", "classifier")  # what the short label of a cell names
HYPERPARAMETERS = ("optimizer", "epochs", "size", "variant", "batch_size", "loss", "learning_rate", "split_method")
PARAMETER_LABELS = {
    "optimizer": "Optimizer", "epochs": "Training epochs", "size": "Image size (px per side)",
    "variant": "Dataset variant", "batch_size": "Batch size (images)", "loss": "Loss function",
    "learning_rate": "Learning rate", "split_method": "Split method", "fold": "Fold", "seed": "Random seed",
    "model": "Model", "features": "Features", "classifier": "Classifier", "dataset": "Dataset",
}
SPLIT_METHOD_NAMES = {"subject": "subject-disjoint", "random": "cell-level random"}
PANEL_HEIGHT_IN = 3.8  # hyperparameter figure: height of one row of panels
MAX_PANEL_COLUMNS = 3
SERIES_SLOT = 0.8  # hyperparameter figure: share of one x step taken by the dodged series
SECONDS_TO_MS = 1000.0
ANNOTATION_OFFSET_PT = 7  # accuracy-vs-time figure: offset of a front point's number from the point
MAX_DECADES_WITH_STEPS = 2.5  # accuracy-vs-time figure: ticks at 1, 2, 5 x 10^k up to this span, else decades
PAIR_ROW_OFFSET = 0.17  # leakage figure: vertical offset of the two points of one pair
PAIR_ROW_HEIGHT_IN = 0.55  # leakage figure: height per pair


def _formatted_columns(columns: Sequence[str]) -> str:
    return ", ".join(map(repr, columns))


def _metric_table(metrics: pd.DataFrame, metric: str, numeric: Sequence[str] = (),
                  other: Sequence[str] = ()) -> pd.DataFrame:
    """``metrics`` checked to hold ``metric`` with its interval, ``numeric`` and ``other`` columns."""
    bounds = (metric, f"{metric}_low", f"{metric}_high")
    if not isinstance(metrics, pd.DataFrame):
        raise ValueError(f"metrics must be a pandas DataFrame, got {type(metrics).__name__}")
    missing = [column for column in (*bounds, *numeric, *other) if column not in metrics.columns]
    if missing:
        raise ValueError(f"metrics lacks column(s) {_formatted_columns(missing)}; it has {list(metrics.columns)}")
    return _checked_frame(metrics, "metrics", (*bounds, *numeric))


def model_labels(metrics: pd.DataFrame) -> pd.Series:
    """Short label of each row: approach, model (or features) and classifier.

    E.g. ``"cnn varol_cnn1"``, ``"hybrid varol_cnn1 + svm"``, ``"classical hog_pca + lr"``; a
    column the table lacks or a NaN (a key this kind of cell does not have) is left out.
    """
    if "approach" not in metrics.columns:
        raise ValueError(f"metrics lacks column 'approach'; it has {list(metrics.columns)}")

    def value(row: pd.Series, column: str) -> str | None:
        item = row.get(column)
        return None if item is None or pd.isna(item) else _format_value(item)

    labels = []
    for _, row in metrics.iterrows():
        name = value(row, "model") or value(row, "features")
        label = " ".join(part for part in (value(row, "approach"), name) if part)
        classifier = value(row, "classifier")
        labels.append(f"{label} + {classifier}" if classifier else label)
    return pd.Series(labels, index=metrics.index, dtype=object)


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
    return sorted(distinct, key=lambda value: _format_value(value))


def _error_bars(table: pd.DataFrame, metric: str) -> np.ndarray:
    """Asymmetric error bars (2, n) from the interval columns; 0 where the interval is undefined."""
    value = table[metric].to_numpy(dtype=float)
    below = value - table[f"{metric}_low"].to_numpy(dtype=float)
    above = table[f"{metric}_high"].to_numpy(dtype=float) - value
    return np.nan_to_num(np.clip(np.vstack([below, above]), 0, None))


def _series_style(index: int) -> dict:
    return {"color": OKABE_ITO[index % len(OKABE_ITO)], "marker": SERIES_MARKERS[index % len(SERIES_MARKERS)],
            "linestyle": LINE_STYLES[index % len(LINE_STYLES)]}


# ----------------------------------------------------------------------------- ROC overlay


def plot_roc_overlay(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    title: str,
) -> Figure:
    """ROC curves of several cells (e.g. the best of one dataset) on one axes, AUC in the legend.

    Args:
        curves: ``(label, y_true, y_score)`` per cell; ``y_score`` of shape ``(n,)`` (binary,
            probability of label 1) or ``(n, k)``. A multi-class cell is drawn as its
            micro-average one-vs-rest curve (all classes' indicator/score pairs pooled), and its
            legend entry and the title say so.
        path: the PNG to write.
        title: the figure title.

    Colour and line style both change from one curve to the next (28 distinct combinations).
    Returns the saved Figure.
    """
    if isinstance(curves, (str, bytes)) or not len(curves):
        raise ValueError("curves is empty: give at least one (label, y_true, y_score) triple")
    prepared = []
    for index, curve in enumerate(curves):
        try:
            label, y_true, y_score = curve
        except (TypeError, ValueError) as error:
            raise ValueError(f"curves[{index}] must be a (label, y_true, y_score) triple") from error
        try:
            labels, scores = check_inputs(y_true, y_score)
        except ValueError as error:
            raise ValueError(f"curves[{index}] ({label}): {error}") from error
        prepared.append((str(label), labels, scores))
    multiclass = any(scores.ndim == 2 for _, _, scores in prepared)
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _new_figure(5.8, 5.6)
        for index, (label, labels, scores) in enumerate(prepared):
            _draw_overlay_curve(ax, index, label, labels, scores)
        ax.plot([0, 1], [0, 1], linestyle="--", color=NEUTRAL, linewidth=1, label="chance (AUC = 0.500)")
        ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal")
        ax.set_title(title + ("\nmulti-class cells: micro-average one-vs-rest ROC" if multiclass else ""))
        ax.set_xlabel("False positive rate (1 − specificity)")
        ax.set_ylabel("True positive rate (sensitivity)")
        ax.grid(alpha=0.3)
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.03, 1.0), title="test split (n = images)",
                           framealpha=0.9, alignment="left")
        legend.set_in_layout(False)  # beside the axes: the layout keeps the axes' size, ...
        fig.tight_layout()
        legend.set_in_layout(True)  # ... and the saved image grows to hold the legend
        _save(fig, path)
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


# ----------------------------------------------------------------------------- hyperparameter effects


def plot_hyperparameter_effects(
    metrics: pd.DataFrame,
    path: str | os.PathLike,
    metric: str = "f1",
    parameters: Sequence[str] = HYPERPARAMETERS,
) -> Figure:
    """One panel per hyperparameter that takes more than one value: ``metric`` against its values.

    Every row (cell) is a point with its 95 % interval as error bar, one colour/marker per model
    label (:func:`model_labels`), the series dodged sideways; cells of one series that share an
    x value (they differ in other parameters) are spread within the series' slot, and a line
    joins the series' mean per value. Values are sorted numerically when all are numbers. A row
    without the parameter (NaN, e.g. the optimizer of a classical cell) is left out of that
    panel; a parameter the table lacks counts as constant. With no varying parameter the figure
    is a single panel saying so. Requires ``approach``, ``metric``, ``<metric>_low`` and
    ``<metric>_high``. Returns the saved Figure.
    """
    parameters = [parameters] if isinstance(parameters, str) else list(parameters)
    table = _metric_table(metrics, metric, other=("approach",))
    labels = model_labels(table)
    varying = [p for p in parameters if p in table.columns and table[p].nunique(dropna=True) > 1]
    series = _label_order(table, labels)
    values = {p: _sorted_values(table[p]) for p in varying}
    columns = min(max(len(varying), 1), MAX_PANEL_COLUMNS)
    rows = -(-max(len(varying), 1) // columns)
    panel_width = max([3.8] + [min(9.0, 1.6 + len(v) * (0.45 + 0.14 * len(series))) for v in values.values()])
    metric_label = METRIC_LABELS.get(metric, metric)
    with matplotlib.rc_context(STYLE):
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
            ax.set_ylim(*_comparison_limits(table, (metric, f"{metric}_low", f"{metric}_high"), None))
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
                       title=f"one point per cell with its {CONFIDENCE_LABEL}; line: mean per value")
        _save(fig, path)
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
    names = [_format_value(value) for value in values]
    slanted = max(map(len, names)) > SLANT_NAMES_LONGER_THAN and len(names) > 2
    ax.set_xticks(range(len(values)), names, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel(PARAMETER_LABELS.get(parameter, parameter))
    ax.set_title(f"{parameter} ({table[parameter].notna().sum()} cells)")
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="y", labelleft=True)


def _draw_nothing_varies(ax: Axes, table: pd.DataFrame, parameters: list[str]) -> None:
    constant = [f"{p}={_format_value(table[p].dropna().iloc[0])}" if p in table and table[p].notna().any()
                else f"{p}: not in the table" for p in parameters]
    text = (f"No hyperparameter takes more than one value\namong the {len(table)} test cell(s).\n\n"
            + "\n".join(textwrap.wrap("; ".join(constant), 60, break_long_words=False, break_on_hyphens=False)))
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11)
    ax.set_axis_off()


# ----------------------------------------------------------------------------- accuracy vs prediction time


def pareto_front(metrics: pd.DataFrame, metric: str = "accuracy") -> pd.Series:
    """Whether each row is on the speed/``metric`` Pareto front.

    A row is on the front when no other row is at least as fast (``images_per_second``) and at
    least as good on ``metric``, and strictly better in one of the two. Rows with a missing or
    non-positive speed or a missing ``metric`` are never on the front. Returns a boolean Series
    aligned with ``metrics``.
    """
    missing = [column for column in (metric, "images_per_second") if column not in metrics.columns]
    if missing:
        raise ValueError(f"metrics lacks column(s) {_formatted_columns(missing)}; it has {list(metrics.columns)}")
    speed = pd.to_numeric(metrics["images_per_second"], errors="coerce").to_numpy(dtype=float)
    score = pd.to_numeric(metrics[metric], errors="coerce").to_numpy(dtype=float)
    valid = np.isfinite(speed) & (speed > 0) & np.isfinite(score)
    speed, score = np.where(valid, speed, -np.inf), np.where(valid, score, -np.inf)
    at_least = (speed[None, :] >= speed[:, None]) & (score[None, :] >= score[:, None])
    better = (speed[None, :] > speed[:, None]) | (score[None, :] > score[:, None])
    dominated = (at_least & better & valid[None, :]).any(axis=1)
    return pd.Series(valid & ~dominated, index=metrics.index, name="pareto_front")


def plot_accuracy_vs_time(
    metrics: pd.DataFrame,
    path: str | os.PathLike,
    metric: str = "accuracy",
) -> Figure:
    """``metric`` against prediction time per image (ms, log scale), one marker per approach.

    Time per image is ``1000 / images_per_second``; the error bars are the 95 % intervals. The
    cells of the Pareto front (:func:`pareto_front`: no other cell both faster and more accurate)
    are ringed, joined by a step line and numbered; a key below the axes gives each number's
    short label (:func:`model_labels`, with the keys that tell apart cells sharing one), value
    and time. Cells without a
    prediction time are left out (the subtitle counts them). Requires ``approach``,
    ``images_per_second``, ``metric``, ``<metric>_low`` and ``<metric>_high``. Returns the
    saved Figure.
    """
    table = _metric_table(metrics, metric, numeric=("images_per_second",), other=("approach",))
    timed = np.isfinite(table["images_per_second"]) & (table["images_per_second"] > 0) & table[metric].notna()
    if not timed.any():
        raise ValueError(f"metrics: no row has both a positive images_per_second and a {metric}")
    left_out = int((~timed).sum())
    table = table[timed].assign(_ms=SECONDS_TO_MS / table.loc[timed, "images_per_second"],
                                _label=model_labels(table[timed]))
    front = table[pareto_front(table, metric)].sort_values("_ms")
    metric_label = METRIC_LABELS.get(metric, metric)
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _new_figure(7.6, 5.4)
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
        low, high = _comparison_limits(table, (metric, f"{metric}_low", f"{metric}_high"), None)
        top = high + 0.06 * (high - low)  # room for the front's numbers
        ax.set_ylim(low, top)
        ax.set_yticks([tick for tick in ax.get_yticks() if low <= tick <= min(top, 1.0)])
        ax.set_xlabel("Prediction time per image (ms, log scale)")
        ax.set_ylabel(f"{metric_label}, test split\n(point, {CONFIDENCE_LABEL})")
        note = f"\n{left_out} cell(s) without a prediction time left out" if left_out else ""
        ax.set_title(f"{metric_label} vs prediction time, test split ({len(table)} cells){note}", loc="left")
        ax.grid(alpha=0.3, which="major")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), title="approach (cells)", alignment="left")
        fig.tight_layout()
        _annotate_front(fig, ax, front, metric)
        _save(fig, path)
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
    """The rows' short labels, extended by the cell keys that tell apart rows sharing a label."""
    keys = [key for key in CELL_KEYS if key in rows.columns and key not in MODEL_NAME_COLUMNS]
    labels = list(rows["_label"])
    for label in {label for label in labels if labels.count(label) > 1}:
        same = rows[rows["_label"] == label]
        differing = [key for key in keys if same[key].nunique(dropna=False) > 1]
        for position, (_, row) in enumerate(rows.iterrows()):
            if row["_label"] == label:
                extra = ", ".join(f"{key}={_format_value(row[key])}" for key in differing if not pd.isna(row[key]))
                labels[position] = f"{label}, {extra}" if extra else label
    return labels


def _annotate_front(fig: Figure, ax: Axes, front: pd.DataFrame, metric: str) -> None:
    """Number the front's points, fastest first, up-left of each (a region no cell occupies, by
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


# ----------------------------------------------------------------------------- leakage: subject vs random split


def leakage_pairs(metrics: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Pairs of cells that differ only in ``split_method`` (``subject`` vs ``random``).

    Cells are matched on every cell key the table has (:data:`leukobench.keys.CELL_KEYS`, and
    ``split`` when present) except ``split_method``, a missing value matching a missing value.
    A cell without a partner is left out. Returns one row per pair: the keys, ``label`` (the
    short model label and the keys that vary between pairs), ``subject``, ``subject_low``,
    ``subject_high``, ``random``, ``random_low``, ``random_high`` and ``difference`` (random −
    subject), largest difference first. Raises ValueError when a key combination repeats
    within one split method (the pairing would be ambiguous).
    """
    table = _metric_table(metrics, metric, other=("split_method",))
    keys = [key for key in (*CELL_KEYS, "split") if key in table.columns and key != "split_method"]
    bounds = {metric: "", f"{metric}_low": "_low", f"{metric}_high": "_high"}
    parts = []
    for method in SPLIT_METHOD_NAMES:
        part = table[table["split_method"] == method]
        repeated = part.duplicated(keys, keep=False) if keys else pd.Series(len(part) > 1, index=part.index)
        if repeated.any():
            raise ValueError(f"metrics has {int(repeated.sum())} split_method={method!r} rows sharing all cell keys "
                             f"({', '.join(keys)}); cannot pair them unambiguously")
        parts.append(part[[*keys, *bounds]].rename(columns={c: method + s for c, s in bounds.items()}))
    pairs = parts[0].merge(parts[1], on=keys, how="inner") if keys else parts[0].merge(parts[1], how="cross")
    pairs = pairs.assign(difference=pairs["random"] - pairs["subject"])
    pairs = pairs.sort_values("difference", ascending=False, kind="stable").reset_index(drop=True)
    return pairs.assign(label=_pair_labels(pairs, keys)) if len(pairs) else pairs.assign(label=pd.Series(dtype=object))


def _pair_labels(pairs: pd.DataFrame, keys: list[str]) -> list[str]:
    named = "approach" in pairs.columns
    base = list(model_labels(pairs)) if named else [""] * len(pairs)
    varying = [key for key in keys if (key not in MODEL_NAME_COLUMNS or not named)
               and pairs[key].nunique(dropna=True) > 1]  # NaN: a key this kind of cell does not have
    labels = []
    for head, (_, row) in zip(base, pairs.iterrows()):
        extra = ", ".join(f"{key}={_format_value(row[key])}" for key in varying if not pd.isna(row[key]))
        labels.append(", ".join(part for part in (head, extra) if part) or "pair")
    return labels


def plot_leakage(metrics: pd.DataFrame, path: str | os.PathLike, metric: str = "accuracy") -> Figure:
    """Same model, subject-disjoint vs cell-level random split: ``metric`` of each pair of cells.

    One row per pair (:func:`leakage_pairs`), largest difference at the top: the subject-disjoint
    and the random-split value, each with its 95 % interval, joined by a line, and the difference
    (random − subject) as text right of the axes. A positive difference is what leakage of one
    subject's cells across the split would produce. Raises ValueError when no pair exists.
    Returns the saved Figure.
    """
    pairs = leakage_pairs(metrics, metric)
    if pairs.empty:
        counts = metrics["split_method"].value_counts().to_dict()
        raise ValueError(f"metrics has no pair of cells differing only in split_method (subject vs random); "
                         f"rows per split_method: {counts}")
    pairs = pairs.iloc[::-1].reset_index(drop=True)  # largest difference on the top row
    labels = ["\n".join(textwrap.wrap(label, LABEL_WRAP_CHARS, break_long_words=False)) for label in pairs["label"]]
    longest = max(len(line) for label in labels for line in label.split("\n"))
    lines = max(label.count("\n") + 1 for label in labels)
    width = min(MAX_WIDTH_IN, PLOT_WIDTH_IN + 1.4 + CHAR_WIDTH_IN * longest)
    height = BASE_HEIGHT_IN + 0.9 + (PAIR_ROW_HEIGHT_IN + LINE_HEIGHT_IN * (lines - 1)) * max(len(pairs), 2)
    metric_label = METRIC_LABELS.get(metric, metric)
    keys = [key for key in (*CELL_KEYS, "split") if key in pairs.columns]
    fixed = {key: pairs[key].iloc[0] for key in keys
             if pairs[key].nunique(dropna=False) == 1 and not pd.isna(pairs[key].iloc[0])}
    with matplotlib.rc_context(STYLE):
        fig, (ax,) = _new_figure(width, height)
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
        ax.set_xlim(*_comparison_limits(pairs, columns, None))
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(f"{metric_label}, test split: point and {CONFIDENCE_LABEL}")
        heading = "\n".join(textwrap.wrap(
            f"{metric_label} (test): same model, subject-disjoint vs cell-level random split", 80))
        note = "\nΔ = random − subject-disjoint (Δ > 0: higher on the random split, as leakage would make it)"
        ax.set_title(heading + note + _fixed_subtitle(fixed), loc="left")
        fig.tight_layout()
        fig.legend(*ax.get_legend_handles_labels(), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncols=2, frameon=False)
        _save(fig, path)
    return fig
