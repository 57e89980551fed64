"""Tests of the figures, by audience: a trial's (leukobench.report.figures.trial), the store's sample sheet
(leukobench.data.samples) and the grid's (the other modules of leukobench.report.figures, one per figure
family, with the tables they draw from leukobench.report.selection). Every figure is a valid PNG, written atomically, with no figure left open."""

from __future__ import annotations

import itertools

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from leukobench.data.samples import plot_sample_sheet
from leukobench.report.figures import accuracy_vs_time, comparison, hyperparameters, leakage, reliability, roc
from leukobench.report.figures import subjects as subject_verdicts
from leukobench.report.figures import trial as trial_figures
from leukobench.report import selection

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


# ---------------------------------------------------------------- a trial's figures (leukobench.report.figures.trial)


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


def test_plot_roc_binary(tmp_path):
    y, score = binary_scores()
    path = tmp_path / "nested" / "roc.png"  # parent folder is created
    trial_figures.plot_roc(y, score, path, "ROC", class_names=["hem", "all"])
    assert_png(path)


def test_plot_roc_multiclass_and_single_class(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 150)
    proba = rng.dirichlet(np.ones(3), 150)
    trial_figures.plot_roc(y, proba, tmp_path / "roc3.png", "ROC one-vs-rest", class_names=["a", "b", "c"])
    assert_png(tmp_path / "roc3.png")
    trial_figures.plot_roc(np.ones(5, dtype=int), np.linspace(0, 1, 5), tmp_path / "roc1.png", "undefined ROC")
    assert_png(tmp_path / "roc1.png")


def test_plot_confusion(tmp_path):
    y, score = binary_scores()
    trial_figures.plot_confusion(y, (score >= 0.5).astype(int), ["hem", "all"], tmp_path / "cm.png", "Confusion")
    assert_png(tmp_path / "cm.png")
    empty_row = np.array([0, 0, 2, 2])  # class 1 never occurs: its row shows "–", no division error
    trial_figures.plot_confusion(empty_row, np.array([0, 1, 2, 1]), ["a", "b", "c"], tmp_path / "cm3.png", "Confusion")
    assert_png(tmp_path / "cm3.png")


@pytest.mark.parametrize("epochs", [1, 12, 80])
def test_plot_history(tmp_path, epochs):
    path = tmp_path / f"history_{epochs}.png"
    trial_figures.plot_history(history_frame(epochs), path, "Training history")
    assert_png(path)


@pytest.mark.parametrize("column", ["epoch", "loss", "accuracy"])
def test_plot_history_missing_column_raises_naming_it(tmp_path, column):
    with pytest.raises(ValueError, match=column):
        trial_figures.plot_history(history_frame().drop(columns=column), tmp_path / "h.png", "History")
    assert not list(tmp_path.iterdir())


def test_plot_history_without_a_validation_split(tmp_path):
    trial_figures.plot_history(history_frame().drop(columns=["val_loss", "val_accuracy"]), tmp_path / "h.png",
                              "History")
    assert mpimg.imread(tmp_path / "h.png").shape[0] > 100


def test_bad_labels_and_scores_raise(tmp_path):
    y, score = binary_scores()
    with pytest.raises(ValueError, match="y_score"):
        trial_figures.plot_roc(y, score[:-1], tmp_path / "r.png", "ROC")
    with pytest.raises(ValueError, match="class_names"):
        trial_figures.plot_roc(y, score, tmp_path / "r.png", "ROC", class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="y_pred"):
        trial_figures.plot_confusion(y, np.full_like(y, 2), ["hem", "all"], tmp_path / "c.png", "Confusion")
    with pytest.raises(ValueError, match="y_pred"):
        trial_figures.plot_confusion(y, y[:-1], ["hem", "all"], tmp_path / "c.png", "Confusion")
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
        trial_figures.plot_roc(y, score, path, "ROC")
    assert list(tmp_path.iterdir()) == []

    path.write_bytes(b"earlier figure")
    with pytest.raises(OSError, match="disk full"):
        trial_figures.plot_history(history_frame(), path, "History")
    assert list(tmp_path.iterdir()) == [path]
    assert path.read_bytes() == b"earlier figure"


# ---------------------------------------------------------------- the store's sample sheet (leukobench.data.samples)


def test_sample_sheet_shows_originals_and_augmented_rows(tmp_path):
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


# ------------------------------------------------------- the grid's comparison (leukobench.report.figures.comparison)


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


@pytest.mark.parametrize("rows", [1, 40])
def test_plot_comparison(tmp_path, rows):
    path = tmp_path / f"comparison_{rows}.png"
    comparison.plot_comparison(comparison_frame(rows), path)
    assert_png(path)


def test_plot_comparison_height_grows_with_rows(tmp_path):
    comparison.plot_comparison(comparison_frame(5), tmp_path / "few.png")
    comparison.plot_comparison(comparison_frame(40), tmp_path / "many.png")
    few, many = mpimg.imread(tmp_path / "few.png"), mpimg.imread(tmp_path / "many.png")
    assert many.shape[0] > 3 * few.shape[0]


def test_plot_comparison_other_metric_explicit_labels_and_undefined_values(tmp_path):
    frame = comparison_frame(8)
    frame.loc[0, ["auc", "auc_low", "auc_high"]] = np.nan
    frame.loc[1, "auc_low"] = frame.loc[1, "auc"] + 0.01  # point outside its percentile interval
    comparison.plot_comparison(frame, tmp_path / "auc.png", metric="auc", label_columns=["model"], reference=None)
    assert_png(tmp_path / "auc.png")


def test_the_comparison_draws_each_rows_majority_class_rate_not_a_fixed_half(tmp_path, monkeypatch):
    """What accuracy is to beat is the test split's majority-class rate: 0.25 for four balanced classes
    (Aria), 0.5 for two; one dashed line when the rows share it, a tick per row when they do not.
    Measured columns (saliency) are not configuration: never listed as fixed under the title."""
    saved = []
    monkeypatch.setattr(comparison, "save_png", lambda fig, path: saved.append(fig))
    frame = comparison_frame(4).assign(majority_rate=0.25, saliency_on_cell=1.0, cell_area=1.0)
    comparison.plot_comparison(frame, tmp_path / "c.png")
    ax = saved[-1].axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_xdata()[0] for line in dashed] == [0.25] and "majority-class rate" in ax.get_xlabel()
    assert "0.25" in ax.get_xlabel() and "saliency" not in ax.get_title() and "cell_area" not in ax.get_title()
    frame["majority_rate"] = [0.25, 0.5, 0.25, 0.5]
    frame["dataset"] = ["aria", "cnmc", "aria", "cnmc"]
    comparison.plot_comparison(frame, tmp_path / "c.png")
    ax = saved[-1].axes[0]
    ticks = [line for line in ax.get_lines() if line.get_marker() == "|" and line.get_color() == comparison.NEUTRAL]
    order = frame.sort_values("accuracy", kind="stable")["majority_rate"].tolist()  # rows bottom to top
    assert len(ticks) == 1 and ticks[0].get_xdata().tolist() == order and "grey ticks" in ax.get_xlabel()
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    comparison.plot_comparison(frame.drop(columns="majority_rate"), tmp_path / "c.png")  # an older metrics.csv
    assert "dashed" not in saved[-1].axes[0].get_xlabel()


def test_comparison_labels_name_varying_columns_only():
    frame = comparison_frame(4)  # model fixed (resnet50), weights/augmentation vary
    labels, fixed = comparison._row_labels(frame, "accuracy", None)
    assert all("model=" not in label and "weights=" in label for label in labels)
    assert fixed == {"dataset": "cnmc", "model": "resnet50", "learning_rate": 1e-3}
    assert len(set(labels)) == len(labels)


@pytest.mark.parametrize("column", ["accuracy", "accuracy_low", "accuracy_high"])
def test_plot_comparison_missing_column_raises_naming_it(tmp_path, column):
    with pytest.raises(ValueError, match=column):
        comparison.plot_comparison(comparison_frame(4).drop(columns=column), tmp_path / "c.png")
    assert not list(tmp_path.iterdir())


def test_plot_comparison_missing_label_column_and_empty_frame(tmp_path):
    with pytest.raises(ValueError, match="optimizer"):
        comparison.plot_comparison(comparison_frame(4), tmp_path / "c.png", label_columns=["model", "optimizer"])
    with pytest.raises(ValueError, match="no rows"):
        comparison.plot_comparison(comparison_frame(4).iloc[:0], tmp_path / "c.png")
    with pytest.raises(ValueError, match="no rows"):
        trial_figures.plot_history(history_frame().iloc[:0], tmp_path / "h.png", "History")


# -------------------------------------- report figures over the grid, and their tables (leukobench.report.selection)

REPORT_METRICS = ("accuracy", "f1", "auc")


def _trial_rows(rng, trial: dict, quality: float, images_per_second: float) -> list[dict]:
    """A val and a test row of one trial, with metrics near ``quality`` and their intervals."""
    rows = []
    for split in ("val", "test"):
        row = {**trial, "split": split, "n": 200, "train_seconds": 30.0, "predict_seconds": 200 / images_per_second,
               "images_per_second": images_per_second, "leaky": False}
        for metric in REPORT_METRICS:
            value = float(np.clip(quality + rng.normal(0, 0.02), 0.3, 0.995))
            row.update({metric: value, f"{metric}_low": value - rng.uniform(0.03, 0.1),
                        f"{metric}_high": min(1.0, value + rng.uniform(0.02, 0.06))})
        rows.append(row)
    return rows


def report_frame(seed: int = 0) -> pd.DataFrame:
    """A metrics.csv-like table: cnn, hybrid and classical trials, both split methods, val and test rows."""
    rng = np.random.default_rng(seed)
    nan = np.nan
    keras = {"dataset": "synthetic", "variant": "balanced", "learning_rate": 1e-3, "loss": "auto",
             "batch_size": 32.0, "seed": 0}
    rows = []
    for model, size, epochs, optimizer, method in itertools.product(
            ["varol_cnn1", "abed_cnn"], [32, 48], [10.0, 20.0], ["adam", "sgd"], ["subject", "random"]):
        trial = {"approach": "cnn", **keras, "split_method": method, "size": size, "model": model,
                "optimizer": optimizer, "epochs": epochs, "features": nan, "classifier": nan}
        quality = (0.8 + 0.04 * (model == "varol_cnn1") + 0.02 * (size == 48) + 0.03 * (epochs == 20)
                   - 0.05 * (optimizer == "sgd") + 0.06 * (method == "random"))
        rows += _trial_rows(rng, trial, quality, 9000.0 / size * (2.5 if model == "abed_cnn" else 1.0))
    for classifier, size, method in itertools.product(["svm", "lr"], [32, 48], ["subject", "random"]):
        trial = {"approach": "hybrid", **keras, "split_method": method, "size": size, "model": "varol_cnn1",
                "optimizer": "adam", "epochs": 20.0, "features": nan, "classifier": classifier}
        rows += _trial_rows(rng, trial, 0.83 + 0.05 * (method == "random"), 7000.0 / size)
    for features, classifier, size, method in itertools.product(
            ["hog_pca", "pixels"], ["lr", "rf"], [32, 48], ["subject", "random"]):
        trial = {"approach": "classical", "dataset": "synthetic", "variant": "balanced", "seed": 0,
                "split_method": method, "size": size, "model": nan, "optimizer": nan, "learning_rate": nan,
                "loss": nan, "epochs": nan, "batch_size": nan, "features": features, "classifier": classifier}
        quality = 0.62 + 0.08 * (features == "hog_pca") + 0.04 * (method == "random")
        rows += _trial_rows(rng, trial, quality, (60000.0 if classifier == "lr" else 4000.0) / size)
    return pd.DataFrame(rows)


def report_test_rows(**kwargs) -> pd.DataFrame:
    frame = report_frame(**kwargs)
    return frame[frame["split"] == "test"].reset_index(drop=True)


def test_model_labels_name_approach_model_or_features_and_classifier():
    frame = pd.DataFrame({"approach": ["cnn", "hybrid", "classical"], "model": ["varol_cnn1", "varol_cnn1", np.nan],
                          "features": [np.nan, np.nan, "hog_pca"], "classifier": [np.nan, "svm", "lr"]})
    assert list(selection.model_labels(frame)) == ["cnn varol_cnn1", "hybrid varol_cnn1 + svm",
                                                   "classical hog_pca + lr"]


def test_plot_roc_overlay_binary_and_multiclass(tmp_path):
    rng = np.random.default_rng(2)
    curves = [(f"cnn model{i}", *binary_scores(seed=i)) for i in range(10)]
    fig = roc.plot_roc_overlay(curves, tmp_path / "roc.png", "Best trials")
    assert_png(tmp_path / "roc.png")
    entries = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert len(entries) == 11 and all("AUC = " in entry for entry in entries)
    styles = {(line.get_color(), line.get_linestyle()) for line in fig.axes[0].get_lines()[:10]}
    assert len(styles) == 10  # every curve has its own colour + line style

    y = rng.integers(0, 3, 150)
    proba = rng.dirichlet(np.ones(3), 150)
    proba[np.arange(150), y] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    fig = roc.plot_roc_overlay([("three classes", y, proba), ("binary", *binary_scores())],
                                        tmp_path / "m.png", "Mixed")
    assert_png(tmp_path / "m.png")
    assert "micro-average" in fig.axes[0].get_title()
    assert "micro-avg. AUC" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_the_reliability_diagram_puts_a_calibrated_trial_on_the_diagonal_and_an_over_confident_one_below(tmp_path):
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.95, 4000)
    y = (rng.random(4000) < p).astype(int)  # labels drawn with the scores' own probabilities
    curves = [("calibrated", y, p), ("over-confident", y, np.where(p >= 0.5, 0.99, 0.01))]
    fig = reliability.plot_reliability(curves, tmp_path / "rel.png", "Best trials")
    assert_png(tmp_path / "rel.png")
    calibrated, confident = (np.column_stack(ax.get_lines()[1].get_data()) for ax in fig.axes[:2])  # [0]: diagonal
    assert np.abs(calibrated[:, 0] - calibrated[:, 1]).max() < 0.1  # each bin's score is about its hit rate
    assert len(confident) == 1 and confident[0, 0] - confident[0, 1] > 0.2  # 0.99 claimed, right about 3 in 4
    assert len(fig.axes) == 2 and all("ECE = " in ax.get_title() for ax in fig.axes)
    with pytest.raises(ValueError, match=r"curves\[0\].*y_score"):
        reliability.plot_reliability([("a", y, p[:-1])], tmp_path / "bad.png", "x")
    assert not (tmp_path / "bad.png").exists()


def test_the_reliability_diagram_shows_calibrated_scores_beside_the_given_ones(tmp_path):
    rng = np.random.default_rng(6)
    p = rng.uniform(0.05, 0.95, 4000)
    y = (rng.random(4000) < p).astype(int)
    confident = np.where(p >= 0.5, 0.99, 0.01)
    fig = reliability.plot_reliability([("over-confident", y, confident), ("other", y, p)], tmp_path / "rel.png",
                                        "Best trials", calibrated=[("recalibrated", p), None])
    assert_png(tmp_path / "rel.png")
    first, second = fig.axes
    assert [line.get_label() for line in first.get_lines()[1:]] == ["as given", "recalibrated"]
    before, after = (float(x) for x in first.get_title().split("ECE = ")[1].split(",")[0].split(" → "))
    assert after < before / 3  # the drawn ECEs are the two series' own
    assert len(second.get_lines()) == 2 and "→" not in second.get_title()  # diagonal and its one series


def test_plot_roc_overlay_bad_input(tmp_path):
    y, score = binary_scores()
    with pytest.raises(ValueError, match="empty"):
        roc.plot_roc_overlay([], tmp_path / "r.png", "ROC")
    with pytest.raises(ValueError, match=r"curves\[1\].*y_score"):
        roc.plot_roc_overlay([("a", y, score), ("b", y, score[:-1])], tmp_path / "r.png", "ROC")
    with pytest.raises(ValueError, match="triple"):
        roc.plot_roc_overlay([("a", y)], tmp_path / "r.png", "ROC")
    assert not list(tmp_path.iterdir())


def test_plot_hyperparameter_effects_one_panel_per_varying_parameter(tmp_path):
    frame = report_test_rows()  # optimizer, epochs, size, split_method vary; variant, loss, ... do not
    fig = hyperparameters.plot_hyperparameter_effects(frame, tmp_path / "h.png")
    assert_png(tmp_path / "h.png")
    assert [ax.get_xlabel() for ax in fig.axes] == [hyperparameters.PARAMETER_LABELS[p]
                                                    for p in ("optimizer", "epochs", "size", "split_method")]
    assert [tick.get_text() for tick in fig.axes[1].get_xticklabels()] == ["10", "20"]
    assert "F1 score" in fig.get_suptitle()
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend[:3] == ["cnn abed_cnn", "cnn varol_cnn1", "hybrid varol_cnn1 + lr"]
    assert len(legend) == 2 + 2 + 4

    fig = hyperparameters.plot_hyperparameter_effects(frame, tmp_path / "two.png", metric="accuracy",
                                            parameters=("size", "loss", "fold"))  # fold: not in the table
    assert len(fig.axes) == 1


def test_hyperparameter_values_sort_numerically():
    assert hyperparameters._sorted_values(pd.Series([64, 128, 32, np.nan, 32])) == [32, 64, 128]
    assert hyperparameters._sorted_values(pd.Series([1e-2, 1e-4, 1e-3])) == [1e-4, 1e-3, 1e-2]
    assert hyperparameters._sorted_values(pd.Series(["sgd", "adam", np.nan])) == ["adam", "sgd"]


def test_plot_hyperparameter_effects_nothing_varies(tmp_path):
    frame = report_test_rows().iloc[:1]
    fig = hyperparameters.plot_hyperparameter_effects(frame, tmp_path / "none.png")
    assert_png(tmp_path / "none.png")
    assert len(fig.axes) == 1 and "No hyperparameter" in fig.axes[0].texts[0].get_text()


def test_pareto_front_of_a_known_table():
    frame = pd.DataFrame({
        "images_per_second": [1000, 500, 100, 100, 50, 2000, np.nan, 10],
        "accuracy":          [0.80, 0.85, 0.90, 0.88, 0.90, 0.70, 0.99, 0.95],
    })
    # 0, 1, 2, 5, 7 are not beaten on both; 3 is beaten by 2 (as fast, more accurate), 4 by 2
    # (faster, as accurate); 6 has no speed
    assert list(selection.pareto_front(frame)) == [True, True, True, False, False, True, False, True]
    assert selection.pareto_front(frame.iloc[[0]]).tolist() == [True]


def test_plot_accuracy_vs_time(tmp_path):
    frame = report_test_rows()
    frame.loc[0, "images_per_second"] = np.nan  # left out, and said so
    fig = accuracy_vs_time.plot_accuracy_vs_time(frame, tmp_path / "t.png")
    assert_png(tmp_path / "t.png")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "ms" in ax.get_xlabel()
    assert "1 trial(s) without a prediction time" in ax.get_title(loc="left")
    front = frame[selection.pareto_front(frame)]
    assert len(ax.texts) == len(front) > 0  # one label per front trial
    with pytest.raises(ValueError, match="images_per_second"):
        accuracy_vs_time.plot_accuracy_vs_time(frame.drop(columns="images_per_second"), tmp_path / "x.png")
    with pytest.raises(ValueError, match="positive images_per_second"):
        accuracy_vs_time.plot_accuracy_vs_time(frame.assign(images_per_second=np.nan), tmp_path / "x.png")


def leakage_frame() -> pd.DataFrame:
    """3 models x 2 split methods, and one subject-only trial without a partner."""
    rows = []
    for model, method in itertools.product(["varol_cnn1", "abed_cnn", "resnet50"], ["subject", "random"]):
        value = 0.8 + 0.05 * (method == "random") + 0.01 * len(model)
        rows.append({"approach": "cnn", "dataset": "cnmc", "split_method": method, "size": 64, "model": model,
                     "features": np.nan, "classifier": np.nan, "optimizer": "adam", "accuracy": value,
                     "accuracy_low": value - 0.05, "accuracy_high": value + 0.03})
    lone = {**rows[0], "size": 128}
    classical = {**rows[0], "approach": "classical", "model": np.nan, "features": "hog_pca", "classifier": "lr",
                 "optimizer": np.nan}
    return pd.DataFrame([*rows, lone, classical, {**classical, "split_method": "random", "accuracy": 0.9}])


def test_leakage_pairs_match_trials_differing_only_in_split_method():
    pairs = selection.leakage_pairs(leakage_frame())
    assert len(pairs) == 4  # 3 cnn models and the classical trial (NaN keys match NaN); size=128 has no partner
    assert set(pairs["label"]) == {"cnn varol_cnn1", "cnn abed_cnn", "cnn resnet50", "classical hog_pca + lr"}
    assert (pairs["size"] == 64).all()
    assert np.allclose(pairs["difference"], pairs["random"] - pairs["subject"])
    assert pairs["difference"].is_monotonic_decreasing
    cnn = selection.leakage_pairs(leakage_frame().iloc[:7])
    assert len(cnn) == 3 and np.allclose(cnn["difference"], 0.05)


def test_leakage_pairs_no_pair_duplicates_and_missing_columns(tmp_path):
    frame = leakage_frame()
    with pytest.raises(ValueError, match="no pair"):
        leakage.plot_leakage(frame[frame["split_method"] == "subject"], tmp_path / "l.png")
    with pytest.raises(ValueError, match="split_method"):
        selection.leakage_pairs(frame.drop(columns="split_method"))
    with pytest.raises(ValueError, match="accuracy_high"):
        leakage.plot_leakage(frame.drop(columns="accuracy_high"), tmp_path / "l.png")
    with pytest.raises(ValueError, match="ambiguous"):
        selection.leakage_pairs(pd.concat([frame, frame.iloc[[0]]]))
    assert not list(tmp_path.iterdir())


def test_plot_leakage(tmp_path):
    fig = leakage.plot_leakage(report_test_rows(), tmp_path / "leak.png")
    image = assert_png(tmp_path / "leak.png")
    ax = fig.axes[0]
    assert len(ax.get_yticks()) == 28  # every trial of report_frame has a partner
    assert len(ax.texts) == 28 and all(text.get_text().startswith("Δ = ") for text in ax.texts)
    assert "subject-disjoint vs cell-level random split" in " ".join(ax.get_title(loc="left").split())
    small = leakage.plot_leakage(leakage_frame(), tmp_path / "small.png", metric="accuracy")
    assert len(small.axes[0].get_yticks()) == 4
    assert mpimg.imread(tmp_path / "small.png").shape[0] < image.shape[0]


MISSING_COLUMN_CASES = [
    *((function, column)
      for function in (hyperparameters.plot_hyperparameter_effects, accuracy_vs_time.plot_accuracy_vs_time)
      for column in ("approach", "accuracy", "accuracy_low", "accuracy_high")),
    (accuracy_vs_time.plot_accuracy_vs_time, "images_per_second"),
    *((leakage.plot_leakage, column)
      for column in ("split_method", "accuracy", "accuracy_low", "accuracy_high")),
]


@pytest.mark.parametrize(("function", "column"), MISSING_COLUMN_CASES,
                         ids=[f"{f.__name__}-{c}" for f, c in MISSING_COLUMN_CASES])
def test_report_figures_missing_column_raises_naming_it(tmp_path, function, column):
    frame = report_test_rows().drop(columns=column)
    with pytest.raises(ValueError, match=column):
        function(frame, tmp_path / "x.png", metric="accuracy")
    assert not list(tmp_path.iterdir())


def test_a_value_without_an_interval_is_labelled_so_and_its_note_is_no_parameter():
    frame = comparison_frame(4).assign(interval_groups=12, interval_note="")
    frame.loc[0, ["accuracy_low", "accuracy_high"]] = np.nan
    frame.loc[0, ["interval_groups", "interval_note"]] = [4, "not computed: 4 subjects in this split, fewer than 10"]
    texts = [comparison._interval_text(row, ("accuracy", "accuracy_low", "accuracy_high"))
             for _, row in frame.iterrows()]
    assert texts[0] == f"{frame.loc[0, 'accuracy']:.3f} (no interval: 4 subjects)"
    assert all(text.endswith("]") for text in texts[1:])
    labels, fixed = comparison._row_labels(frame, "accuracy", None)
    assert not any("interval" in label for label in labels) and not any("interval" in key for key in fixed)


def test_the_subject_sheet_of_three_classes_judges_by_the_arg_max_and_plots_each_subjects_own_class(tmp_path):
    subjects = np.repeat(["a1", "b1", "c1"], 10)
    labels = np.repeat([0, 1, 2], 10)
    own = {"a1": [0.7, 0.2, 0.1], "b1": [0.5, 0.4, 0.1], "c1": [0.1, 0.2, 0.7]}  # b1 (class 1) looks like class 0
    scores = np.array([own[s] for s in subjects])
    cells = pd.DataFrame({"patient_id": subjects, "label": labels, "score_x": scores[:, 0], "score_y": scores[:, 1],
                          "score_z": scores[:, 2]})
    fig = subject_verdicts.plot_subject_verdicts([("cnn", cells)], tmp_path / "s3.png", "Best trials", class_names=("x", "y", "z"))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_color() == "red"] == ["b1"]
    assert ax.get_ylabel() == "P(its own class)" and ax.get_xlabel() == "1 of 3 subjects misjudged"
    bars = sorted(np.round(segment[0][1], 3) for segment in ax.collections[-1].get_segments())
    assert bars == [0.4, 0.7, 0.7]  # each verdict at the subject's own class's aggregate score
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]  # no 0.5 threshold


def test_the_subject_sheet_names_the_misjudged_subjects_and_says_when_there_are_none_to_judge(tmp_path):
    rng = np.random.default_rng(8)
    subjects = np.repeat(["s1", "s2", "s3", "s4"], 20)
    labels = np.repeat([1, 1, 0, 0], 20)
    scores = np.clip(np.repeat([0.8, 0.3, 0.2, 0.1], 20) + rng.normal(0, 0.05, 80), 0, 1)  # s2: an ALL subject called healthy
    cells = pd.DataFrame({"patient_id": subjects, "label": labels, "score": scores})
    anonymous = cells.assign(patient_id="")
    mixed = cells.assign(label=np.tile([0, 1], 40))
    fig = subject_verdicts.plot_subject_verdicts([("cnn", cells), ("no subjects", anonymous), ("mixed", mixed)],
                                             tmp_path / "s.png", "Best trials", class_names=("hem", "all"))
    assert_png(tmp_path / "s.png")
    ax = fig.axes[0]
    red = [tick.get_text() for tick in ax.get_xticklabels() if tick.get_color() == "red"]
    assert red == ["s2"] and ax.get_xlabel() == "1 of 4 subjects misjudged"
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["s4", "s3", "s2", "s1"]  # ordered by verdict
    assert "name no subject" in fig.axes[1].texts[0].get_text()
    assert "cells of two labels" in fig.axes[2].texts[0].get_text()
    # a dataset without subjects (Aria): one panel says so, not one per trial, and no legend of verdicts
    fig = subject_verdicts.plot_subject_verdicts([("cnn", anonymous), ("rf", anonymous)], tmp_path / "n.png", "Best trials")
    assert_png(tmp_path / "n.png")
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 1 and "name no subject" in shown[0].texts[0].get_text() and not fig.legends
    with pytest.raises(ValueError, match="trials is empty"):
        subject_verdicts.plot_subject_verdicts([], tmp_path / "e.png", "x")


def test_the_comparison_marks_the_trials_that_did_not_learn_and_says_so_in_its_legend(tmp_path, monkeypatch):
    from leukobench.learned import NOT_LEARNED_LABEL
    from leukobench.style import NOT_LEARNED_MARKER

    saved = []
    monkeypatch.setattr(comparison, "save_png", lambda fig, path: saved.append(fig))
    frame = comparison_frame(5).assign(learned=[True, False, True, False, True], learned_note="why")
    comparison.plot_comparison(frame, tmp_path / "c.png")
    ax = saved[-1].axes[0]
    marks = [line for line in ax.get_lines() if line.get_marker() == NOT_LEARNED_MARKER["marker"]]
    assert len(marks) == 1 and sorted(marks[0].get_xdata()) == sorted(frame.loc[[1, 3], "accuracy"])
    order = frame.sort_values("accuracy", kind="stable").index.tolist()  # rows bottom to top
    assert sorted(marks[0].get_ydata()) == sorted(order.index(i) for i in (1, 3))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [NOT_LEARNED_LABEL]
    shown = ax.get_title() + " ".join(t.get_text() for t in ax.get_yticklabels())
    assert "learned" not in shown and "why" not in shown  # a verdict, not a parameter of the configuration
    comparison.plot_comparison(frame.assign(learned=True), tmp_path / "c.png")
    assert saved[-1].axes[0].get_legend() is None


# ------------------------------------------------------------- names from data and config are text, never markup

MARKUP_NAMES = ("blast$\\foo$ <&>", "$\\foo$P1", "a_b^c $x", "\\alpha & <b>")  # $, \, <, >, & and math-text syntax


def test_names_holding_math_text_syntax_are_drawn_as_written_in_every_figure_family(tmp_path):
    """A class folder `blast$\\foo$` or a patient `$\\foo$P1` used to stop the job in matplotlib's math-text parser."""
    names = list(MARKUP_NAMES[:2])
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"label": [0, 1] * 4, "split": ["train"] * 8, "augmented": [False] * 8})
    plot_sample_sheet(frame, rng.integers(0, 256, (8, 12, 12, 3), dtype=np.uint8), names, tmp_path / "sheet.png",
                      title=f"{MARKUP_NAMES[2]} sheet")
    y, score = binary_scores(60)
    trial_figures.plot_roc(y, score, tmp_path / "roc.png", title=MARKUP_NAMES[3], class_names=names)
    trial_figures.plot_confusion(y, (score > 0.5).astype(int), names, tmp_path / "confusion.png", title="c")
    patients = np.repeat(["$\\foo$P1", "$\\bar$P2", "P3 <&>", "P_4^"], 15)
    cells = pd.DataFrame({"patient_id": patients, "label": np.repeat([1, 0, 1, 0], 15),
                          "score": rng.uniform(0, 1, 60)})
    fig = subject_verdicts.plot_subject_verdicts([(MARKUP_NAMES[0], cells)], tmp_path / "subjects.png", "$x$ subjects",
                                             class_names=names)
    for name in ("sheet", "roc", "confusion", "subjects"):
        assert_png(tmp_path / f"{name}.png", min_height=100)
    shown = {text.get_text() for ax in fig.axes for text in ax.get_xticklabels()}
    assert {"$\\foo$P1", "P3 <&>", "P_4^"} <= shown
    parsed = [text for ax in fig.axes for text in (*ax.get_xticklabels(), ax.title) if text.get_parse_math()]
    assert not parsed, "a label of a name is parsed as math text"


def test_every_figure_is_made_and_saved_inside_the_style_modules_one_context():
    """leukobench.style.drawing is the one place the look (math text off included) is applied: every save_png call
    lies inside `with drawing():`, and no module sets matplotlib's rcParams on its own."""
    import ast
    from pathlib import Path

    import leukobench

    package = Path(leukobench.__file__).parent
    calls = 0
    for module in package.rglob("*.py"):
        text = module.read_text()
        if module.name == "style.py" and module.parent == package:
            continue
        assert "rc_context" not in text and "rcParams" not in text, f"{module}: sets matplotlib's look itself"
        tree = ast.parse(text)
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "save_png":
                calls += 1
                up = node
                while up in parents and not (isinstance(up, ast.With) and any(
                        isinstance(item.context_expr, ast.Call)
                        and getattr(item.context_expr.func, "id", getattr(item.context_expr.func, "attr", None)) == "drawing"
                        for item in up.items)):
                    up = parents[up]
                assert isinstance(up, ast.With), f"{module}:{node.lineno}: save_png outside `with drawing():`"
    assert calls >= 10  # the sample sheet, a trial's figures, the saliency sheet, the grid's figures
