"""The reference recipe (presets/reference.yaml): each training option does what it says, reaches
only the trials that take it, survives a killed training, and the preset is a valid run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

import leukobench.learn.recipe as recipe
import leukobench.learn.train as train_module
from conftest import tiny_cnmc_split
from leukobench.data.store import Preparation, build_store, load_store
from leukobench.learn.backup import BACKUP_DIR, STATE
from leukobench.learn.saved_model import TrainedModel, predict_store
from leukobench.models import list_models, recipe_models, transfer_models
from leukobench.learn.train import TrainingSpec, _loss_and_targets, _optimizer, train_from_store
from leukobench.plan.config import RECIPE_OPTIONS, check_config, keras_trials, training_options

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
PRESET = REPO / "presets" / "reference.yaml"
RECIPE = {"optimizer": "adamw", "weight_decay": 0.05, "augmentation": True, "lr_schedule": "cosine",
          "warmup_epochs": 1, "label_smoothing": 0.1}


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    manifest, splits = tiny_cnmc_split(root / "raw", cells_per_subject=6)
    path = root / "24px.parquet"
    build_store(manifest, splits, Preparation(size=24), path)
    return path


def images(n=6, size=24, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


# --- online augmentation ---------------------------------------------------------------------

def test_augmentation_is_the_identity_outside_training():
    layer = recipe.cell_augmentation(seed=0)
    x = images()
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x.astype("float32"))
    changed = np.asarray(layer(x, training=True))
    assert changed.shape == x.shape and changed.min() >= 0 and changed.max() <= 255
    assert not np.allclose(changed, x)


def test_augmentation_without_jitter_gives_one_of_the_eight_symmetries_of_each_image(monkeypatch):
    monkeypatch.setattr(recipe, "BRIGHTNESS", 0.0)
    monkeypatch.setattr(recipe, "CONTRAST", 0.0)
    monkeypatch.setattr(recipe, "CHANNEL_GAIN", 0.0)
    x = images(n=32).astype("float32")
    out = np.asarray(recipe.cell_augmentation(seed=3)(x, training=True))
    seen = set()
    for original, augmented in zip(x, out):
        symmetries = [np.rot90(flipped, k) for flipped in (original, original[:, ::-1]) for k in range(4)]
        matches = [i for i, s in enumerate(symmetries) if np.allclose(s, augmented, atol=1e-3)]
        assert matches, "an augmented image is no flip or quarter turn of its image"
        seen.add(matches[0])
    assert len(seen) >= 5  # random: most of the eight appear among 32 images


@pytest.mark.slow
def test_a_model_trained_with_augmentation_is_saved_without_it_and_predicts_the_same_twice(tiny_store, tmp_path):
    spec = TrainingSpec(model="reference_resnet_small", epochs=2, batch_size=8, **RECIPE)
    train_from_store(tiny_store, spec, tmp_path / "model.keras", tmp_path / "history.csv", trial={"model": spec.model})
    trained = TrainedModel.load(tmp_path / "model.keras")
    assert not any("augment" in layer.name for layer in trained.model.layers)
    first, _ = predict_store(trained, tiny_store)
    second, _ = predict_store(TrainedModel.load(tmp_path / "model.keras"), tiny_store)
    pd.testing.assert_frame_equal(first, second)
    x = load_store(tiny_store).part("test")[0]
    np.testing.assert_array_equal(trained.model.predict(x, verbose=0), trained.model.predict(x, verbose=0))
    assert json.loads((tmp_path / "model.json").read_text())["training"]["augmentation"] is True


# --- learning-rate schedule, optimizer, label smoothing --------------------------------------

def test_the_cosine_schedule_warms_up_linearly_then_decays_to_zero():
    schedule = recipe.learning_rate("cosine", 1e-3, epochs=10, steps_per_epoch=10, warmup_epochs=2)
    rates = np.array([float(schedule(step)) for step in range(101)])
    assert rates[0] == pytest.approx(0.0, abs=1e-12)
    assert rates[10] == pytest.approx(0.5e-3, rel=1e-4)  # half-way up the warm-up
    assert rates[20] == pytest.approx(1e-3, rel=1e-4) and rates.max() == pytest.approx(1e-3, rel=1e-4)
    assert np.all(np.diff(rates[:21]) > 0) and np.all(np.diff(rates[20:]) < 0)
    assert rates[60] == pytest.approx(0.5e-3, rel=1e-3)  # half-way down the cosine
    assert rates[100] == pytest.approx(0.0, abs=1e-9)
    assert recipe.learning_rate("constant", 1e-3, 10, 10) == 1e-3  # off: the plain number, as before
    flat = recipe.learning_rate("constant", 1e-3, 10, 10, warmup_epochs=1)
    assert float(flat(0)) == 0 and float(flat(10)) == pytest.approx(1e-3) and float(flat(99)) == pytest.approx(1e-3)


def test_adamw_takes_the_weight_decay_and_the_schedule():
    import keras

    optimizer = _optimizer(TrainingSpec(model="reference_resnet_small", epochs=5, **RECIPE), steps=4)
    assert isinstance(optimizer, keras.optimizers.AdamW) and optimizer.weight_decay == pytest.approx(0.05)
    assert isinstance(optimizer._learning_rate, keras.optimizers.schedules.CosineDecay)
    plain = _optimizer(TrainingSpec(model="abed_cnn", learning_rate=1e-3), steps=4)
    assert type(plain) is keras.optimizers.Adam and float(plain.learning_rate) == pytest.approx(1e-3)
    assert plain.weight_decay is None


@pytest.mark.parametrize("n_classes, loss", [(2, "auto"), (3, "auto"), (2, "categorical_crossentropy")])
def test_label_smoothing_reaches_the_loss(n_classes, loss):
    spec = TrainingSpec(model="reference_resnet_small", loss=loss, label_smoothing=0.2)
    loss_fn, targets = _loss_and_targets(spec, n_classes)
    assert loss_fn.get_config()["label_smoothing"] == pytest.approx(0.2)
    labels = np.arange(4) % n_classes
    confident = targets(labels)  # a prediction that is exactly the (unsmoothed) targets
    if n_classes == 2 and loss == "auto":
        confident = confident[:, None]
    smoothed = float(loss_fn(targets(labels) if confident.ndim == 1 else targets(labels).reshape(confident.shape),
                             np.clip(confident, 1e-7, 1 - 1e-7)))
    assert smoothed > 0.1  # without smoothing this loss would be ~0
    assert _loss_and_targets(TrainingSpec(model="abed_cnn"), 2)[0] == "binary_crossentropy"  # off: as before


# --- early stopping: the best validation epoch's weights, also across a resume -----------------

@pytest.mark.slow
def test_early_stopping_saves_the_weights_of_the_best_validation_epoch(tiny_store, tmp_path):
    import keras

    spec = TrainingSpec(model="abed_cnn", epochs=8, batch_size=8, learning_rate=0.01, early_stopping_patience=8)
    train_from_store(tiny_store, spec, tmp_path / "model.keras", tmp_path / "history.csv")
    history = pd.read_csv(tmp_path / "history.csv")
    assert len(history) == 8  # patience as long as the training: it ran to the end
    model = keras.models.load_model(tmp_path / "model.keras")
    model.compile(loss="binary_crossentropy")
    x_val, y_val, _ = load_store(tiny_store).part("val")
    val_loss = float(np.ravel(model.evaluate(x_val, y_val.astype("float32"), verbose=0, batch_size=len(x_val)))[0])
    best = history["val_loss"].idxmin()
    assert val_loss == pytest.approx(history["val_loss"].min(), abs=2e-6)
    assert json.loads((tmp_path / "model.json").read_text())["best_epoch"] == best + 1
    if abs(history["val_loss"].iloc[-1] - history["val_loss"].min()) > 1e-5:  # not the last epoch's weights
        assert val_loss < history["val_loss"].iloc[-1] - 5e-6


@pytest.mark.slow
def test_a_killed_reference_training_resumes(monkeypatch, tiny_store, tmp_path):
    """The recipe's callbacks and schedule with Keras' BackupAndRestore: killed after epoch 3 of 5,
    the rerun trains epochs 4 and 5 only and writes the model."""
    import keras

    spec = TrainingSpec(model="reference_resnet_small", epochs=5, batch_size=8, early_stopping_patience=5, **RECIPE)

    def die(epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train_module, "epoch_logger", lambda epochs: keras.callbacks.LambdaCallback(on_epoch_end=die))
    with pytest.raises(KeyboardInterrupt):
        train_from_store(tiny_store, spec, tmp_path / "model.keras", tmp_path / "history.csv")
    assert (tmp_path / BACKUP_DIR / STATE).is_file()
    epochs, steps_done = [], []

    class Recorder(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps_done.append(int(self.model.optimizer.iterations))  # the schedule's position

        def on_epoch_end(self, epoch, logs=None):
            epochs.append(epoch)

    monkeypatch.setattr(train_module, "epoch_logger", lambda n: Recorder())
    train_from_store(tiny_store, spec, tmp_path / "model.keras", tmp_path / "history.csv")
    assert epochs == [3, 4]
    steps = recipe.steps_per_epoch(len(load_store(tiny_store).part("train")[0]), spec.batch_size)
    assert steps_done == [3 * steps, 4 * steps]  # the optimizer resumed too: no second warm-up
    assert list(pd.read_csv(tmp_path / "history.csv")["epoch"]) == [0, 1, 2, 3, 4]
    assert not (tmp_path / BACKUP_DIR).exists()


def test_bad_recipe_options_are_refused():
    with pytest.raises(ValueError, match="lr_schedule 'step' unknown"):
        TrainingSpec(model="reference_resnet_small", lr_schedule="step")
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainingSpec(model="reference_resnet_small", epochs=3, warmup_epochs=-1)
    short = recipe.learning_rate("cosine", 1e-3, epochs=2, steps_per_epoch=5, warmup_epochs=2)  # a smoke run's
    assert float(short(9)) == pytest.approx(1e-3)  # the warm-up ends one step before the training
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainingSpec(model="reference_resnet_small", label_smoothing=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        TrainingSpec(model="reference_resnet_small", weight_decay=-0.1)


# --- what reaches which trial ------------------------------------------------------------------

def test_recipe_options_reach_only_the_reference_models_and_weight_decay_only_adamw():
    """The train rule's params: the studies' trials get exactly the options they had before the
    recipe existed, so turning the recipe on (or adding the preset's grid) retrains none of them."""
    defaults = {"class_weight": False, "early_stopping_patience": 0, "weights": "imagenet", "trainable_layers": 0,
                "augmentation": False, "lr_schedule": "constant", "warmup_epochs": 0, "label_smoothing": 0.0,
                "weight_decay": 0.004}
    changed = {**defaults, "augmentation": True, "lr_schedule": "cosine", "warmup_epochs": 2,
               "label_smoothing": 0.1, "weight_decay": 0.05}
    for model in list_models():
        for optimizer in ("adam", "adamw"):
            before, after = training_options(defaults, model, optimizer), training_options(changed, model, optimizer)
            takes_recipe = model in recipe_models()
            assert (before == after) == (not takes_recipe and optimizer == "adam"), (model, optimizer)
            assert set(RECIPE_OPTIONS) <= set(after) if takes_recipe else not set(RECIPE_OPTIONS) & set(after)
            assert ("weight_decay" in after) == (optimizer == "adamw")
            TrainingSpec(model=model, optimizer=optimizer, epochs=5, **after)  # the keywords the train script passes
        if model not in recipe_models():
            assert set(training_options(changed, model)) == {"class_weight", "early_stopping_patience", "model_options"}


# --- the preset --------------------------------------------------------------------------------

def preset_config() -> dict:
    """The preset on top of the default config, as snakemake --configfile merges them."""
    def merge(base, top):
        return {**base, **{k: merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                           for k, v in top.items()}}

    config = merge(yaml.safe_load((REPO / "config.yaml").read_text()), yaml.safe_load(PRESET.read_text()))
    validate(config, str(SCHEMA))
    return config


def test_the_reference_preset_is_valid_and_runs_the_reference_beside_a_studies_cnn():
    config = preset_config()
    check_config(config)
    trials, _ = keras_trials(config)
    models = set(trials["model"])
    assert models & set(recipe_models()) and models - set(recipe_models()), "the reference and a study's CNN"
    assert set(trials["split_method"]) == {"subject"}
    reference = trials[trials["model"].isin(recipe_models())]
    studies = trials[~trials["model"].isin(recipe_models())]
    assert set(reference["optimizer"]) == {"adamw"} and set(studies["optimizer"]) == {"adam"}
    assert set(reference["epochs"]) == set(studies["epochs"])  # the same budget
    training = config["training"]
    assert training["augmentation"] and training["lr_schedule"] == "cosine" and training["label_smoothing"] > 0
    # the best validation epoch is kept, and no trial stops before its cosine schedule has run out
    assert training["early_stopping_patience"] >= max(config["grid"]["epochs"])


def test_the_presets_gpu_switch_adds_efficientnet_from_scratch_and_fine_tuned():
    """The documented switch: the commented grid line `model:` under `>>> GPU`."""
    lines = PRESET.read_text().splitlines()
    switch = [line for line in lines if line.lstrip().startswith("# model:") and "GPU" in line]
    assert len(switch) == 1, "one commented grid.model line marked GPU"
    models = yaml.safe_load(switch[0].split("#", 1)[1].split("#")[0])["model"]
    assert {"efficientnetv2b0", "efficientnetv2b0_scratch"} <= set(models)
    config = copy.deepcopy(preset_config())
    config["grid"]["model"] = models
    trials, _ = keras_trials(config)
    assert {"efficientnetv2b0", "efficientnetv2b0_scratch"} <= set(trials["model"])
    assert "efficientnetv2b0" in transfer_models() and config["training"]["weights"] == "imagenet"


# --- the comparison figure --------------------------------------------------------------------

def test_the_comparison_figure_marks_the_trials_that_used_pretrained_weights(tmp_path, monkeypatch):
    import matplotlib.axes

    from leukobench.report.figures.comparison import PRETRAINED_MARKER, plot_comparison

    table = pd.DataFrame({"approach": ["cnn"] * 3, "model": ["abed_cnn", "efficientnetv2b0", "efficientnetv2b0_scratch"],
                          "accuracy": [0.7, 0.8, 0.75], "accuracy_low": [0.6, 0.7, 0.65],
                          "accuracy_high": [0.8, 0.9, 0.85], "pretrained": [False, True, False]})
    legends = []
    original = matplotlib.axes.Axes.legend
    monkeypatch.setattr(matplotlib.axes.Axes, "legend", lambda ax, *a, **k: legends.append(
        (ax, [h.get_label() for h in k["handles"]])) or original(ax, *a, **k))
    plot_comparison(table, tmp_path / "comparison.png", pretrained="pretrained")
    assert (tmp_path / "comparison.png").stat().st_size > 0
    ax, labels = legends[0]
    assert labels == ["trained from scratch", "pretrained weights (ImageNet)"]
    diamonds = [line for line in ax.get_lines() if line.get_marker() == PRETRAINED_MARKER and len(line.get_xdata())]
    assert len(diamonds) == 1 and list(diamonds[0].get_xdata()) == [0.8]
    assert "pretrained" not in " ".join(t.get_text() for t in ax.get_yticklabels())  # not a label column
    legends.clear()
    plot_comparison(table.assign(pretrained=False), tmp_path / "none.png", pretrained="pretrained")
    assert legends == []  # nothing pretrained: no legend
