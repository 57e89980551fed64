"""Tests of leukobench.plots: every figure is a valid PNG, written atomically, with no figure left open."""

from __future__ import annotations

import itertools

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from leukobench import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_SIDE_PX = 200


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot function left a figure open"


def assert_png(path, min_height: int = MIN_SIDE_PX) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] >= min_height and image.shape[1] >= MIN_SIDE_PX
    assert image[..., :3].std() > 0.01, "image is blank"
    assert not list(path.parent.glob(".*.tmp")), "temporary file left behind"
    return image


def binary_scores(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return y, np.clip(0.4 * y + 0.6 * rng.random(n), 0, 1)


def history_frame(epochs: int = 12) -> pd.DataFrame:
    epoch = np.arange(epochs)
    return pd.DataFrame({
        "epoch": epoch,
        "accuracy": 1 - 0.5 * np.exp(-epoch / 4),
        "loss": 0.7 * np.exp(-epoch / 5) + 0.1,
        "val_accuracy": 0.9 - 0.4 * np.exp(-epoch / 4),
        "val_loss": 0.6 * np.exp(-epoch / 5) + 0.2 + 0.002 * epoch**2,
        "learning_rate": 1e-3,
    })


def comparison_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    grid = itertools.islice(itertools.product(["resnet50", "vgg16", "mobilenetv2", "densenet121", "efficientnetb0"],
                                              [1e-3, 1e-4], ["none", "flip"], ["imagenet", "scratch"]), rows)
    records = []
    for model, rate, augmentation, weights in grid:
        value, half = rng.uniform(0.55, 0.95), rng.uniform(0.01, 0.04)
        records.append({"dataset": "cnmc", "model": model, "learning_rate": rate, "augmentation": augmentation,
                        "weights": weights, "n": 500, "accuracy": value, "accuracy_low": value - half,
                        "accuracy_high": min(1.0, value + half), "auc": value, "auc_low": value - half,
                        "auc_high": value + half})
    return pd.DataFrame(records)


# ----------------------------------------------------------------------------- each figure


def test_plot_roc_binary(tmp_path):
    y, score = binary_scores()
    path = tmp_path / "nested" / "roc.png"  # parent folder is created
    plots.plot_roc(y, score, path, "ROC", class_names=["hem", "all"])
    assert_png(path)


def test_plot_roc_multiclass_and_single_class(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 150)
    proba = rng.dirichlet(np.ones(3), 150)
    plots.plot_roc(y, proba, tmp_path / "roc3.png", "ROC one-vs-rest", class_names=["a", "b", "c"])
    assert_png(tmp_path / "roc3.png")
    plots.plot_roc(np.ones(5, dtype=int), np.linspace(0, 1, 5), tmp_path / "roc1.png", "undefined ROC")
    assert_png(tmp_path / "roc1.png")


def test_plot_confusion(tmp_path):
    y, score = binary_scores()
    plots.plot_confusion(y, (score >= 0.5).astype(int), ["hem", "all"], tmp_path / "cm.png", "Confusion")
    assert_png(tmp_path / "cm.png")
    empty_row = np.array([0, 0, 2, 2])  # class 1 never occurs: its row shows "–", no division error
    plots.plot_confusion(empty_row, np.array([0, 1, 2, 1]), ["a", "b", "c"], tmp_path / "cm3.png", "Confusion")
    assert_png(tmp_path / "cm3.png")


@pytest.mark.parametrize("epochs", [1, 12, 80])
def test_plot_history(tmp_path, epochs):
    path = tmp_path / f"history_{epochs}.png"
    plots.plot_history(history_frame(epochs), path, "Training history")
    assert_png(path)


@pytest.mark.parametrize("rows", [1, 40])
def test_plot_comparison(tmp_path, rows):
    path = tmp_path / f"comparison_{rows}.png"
    plots.plot_comparison(comparison_frame(rows), path)
    assert_png(path)


def test_plot_comparison_height_grows_with_rows(tmp_path):
    plots.plot_comparison(comparison_frame(5), tmp_path / "few.png")
    plots.plot_comparison(comparison_frame(40), tmp_path / "many.png")
    few, many = mpimg.imread(tmp_path / "few.png"), mpimg.imread(tmp_path / "many.png")
    assert many.shape[0] > 3 * few.shape[0]


def test_plot_comparison_other_metric_explicit_labels_and_undefined_values(tmp_path):
    frame = comparison_frame(8)
    frame.loc[0, ["auc", "auc_low", "auc_high"]] = np.nan
    frame.loc[1, "auc_low"] = frame.loc[1, "auc"] + 0.01  # point outside its percentile interval
    plots.plot_comparison(frame, tmp_path / "auc.png", metric="auc", label_columns=["model"], reference=None)
    assert_png(tmp_path / "auc.png")


def test_comparison_labels_name_varying_columns_only():
    frame = comparison_frame(4)  # model fixed (resnet50), weights/augmentation vary
    labels, fixed = plots._row_labels(frame, "accuracy", None)
    assert all("model=" not in label and "weights=" in label for label in labels)
    assert fixed == {"dataset": "cnmc", "model": "resnet50", "learning_rate": 1e-3}
    assert len(set(labels)) == len(labels)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("column", ["epoch", "loss", "accuracy"])
def test_plot_history_missing_column_raises_naming_it(tmp_path, column):
    with pytest.raises(ValueError, match=column):
        plots.plot_history(history_frame().drop(columns=column), tmp_path / "h.png", "History")
    assert not list(tmp_path.iterdir())


def test_plot_history_without_a_validation_split(tmp_path):
    plots.plot_history(history_frame().drop(columns=["val_loss", "val_accuracy"]), tmp_path / "h.png", "History")
    assert mpimg.imread(tmp_path / "h.png").shape[0] > 100


@pytest.mark.parametrize("column", ["accuracy", "accuracy_low", "accuracy_high"])
def test_plot_comparison_missing_column_raises_naming_it(tmp_path, column):
    with pytest.raises(ValueError, match=column):
        plots.plot_comparison(comparison_frame(4).drop(columns=column), tmp_path / "c.png")
    assert not list(tmp_path.iterdir())


def test_plot_comparison_missing_label_column_and_empty_frame(tmp_path):
    with pytest.raises(ValueError, match="optimizer"):
        plots.plot_comparison(comparison_frame(4), tmp_path / "c.png", label_columns=["model", "optimizer"])
    with pytest.raises(ValueError, match="no rows"):
        plots.plot_comparison(comparison_frame(4).iloc[:0], tmp_path / "c.png")
    with pytest.raises(ValueError, match="no rows"):
        plots.plot_history(history_frame().iloc[:0], tmp_path / "h.png", "History")


def test_bad_labels_and_scores_raise(tmp_path):
    y, score = binary_scores()
    with pytest.raises(ValueError, match="y_score"):
        plots.plot_roc(y, score[:-1], tmp_path / "r.png", "ROC")
    with pytest.raises(ValueError, match="class_names"):
        plots.plot_roc(y, score, tmp_path / "r.png", "ROC", class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="y_pred"):
        plots.plot_confusion(y, np.full_like(y, 2), ["hem", "all"], tmp_path / "c.png", "Confusion")
    with pytest.raises(ValueError, match="y_pred"):
        plots.plot_confusion(y, y[:-1], ["hem", "all"], tmp_path / "c.png", "Confusion")
    assert not list(tmp_path.iterdir())


def test_failing_save_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    def write_half_then_fail(self, fname, *args, **kwargs):
        with open(fname, "wb") as handle:
            handle.write(PNG_SIGNATURE)
        raise OSError("disk full")

    path = tmp_path / "roc.png"
    monkeypatch.setattr(Figure, "savefig", write_half_then_fail)
    y, score = binary_scores()
    with pytest.raises(OSError, match="disk full"):
        plots.plot_roc(y, score, path, "ROC")
    assert list(tmp_path.iterdir()) == []

    path.write_bytes(b"earlier figure")
    with pytest.raises(OSError, match="disk full"):
        plots.plot_history(history_frame(), path, "History")
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"earlier figure"


def test_sample_sheet_shows_originals_and_augmented_rows(tmp_path):
    from leukobench.plots import plot_sample_sheet

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"label": [0] * 10 + [1] * 10, "split": ["train"] * 20, "augmented": [False, True] * 10})
    images = rng.integers(0, 256, size=(20, 16, 16, 3), dtype=np.uint8)
    out = tmp_path / "sheet.png"
    plot_sample_sheet(frame, images, ["hem", "all"], out, title="sheet")
    picture = mpimg.imread(out)
    assert picture.shape[0] > 100 and picture.shape[1] > 100
    gray = tmp_path / "gray.png"
    plot_sample_sheet(frame.assign(augmented=False), images[..., :1], ["hem", "all"], gray, title="gray")
    assert mpimg.imread(gray).shape[0] < picture.shape[0]  # two rows instead of four
    with pytest.raises(ValueError, match="missing column"):
        plot_sample_sheet(frame.drop(columns="augmented"), images, ["hem", "all"], tmp_path / "x.png", title="x")
    assert not (tmp_path / "x.png").exists()
