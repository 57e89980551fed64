"""Training options: losses and heads, class weights, early stopping, resuming, normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import leukobench.train as train_module
from conftest import tiny_cnmc_split
from leukobench.evaluate import predict_store
from leukobench.store import Preparation, build_store, load_store
from leukobench.train import BACKUP_DIR, TrainedModel, TrainingSpec, _class_weights, train_from_store


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    manifest, splits = tiny_cnmc_split(root / "raw", cells_per_subject=6)
    paths = {}
    for normalization in ("none", "per_channel", "mean_image"):
        paths[normalization] = root / f"{normalization}.parquet"
        build_store(manifest, splits, Preparation(size=24, normalization=normalization), paths[normalization])
    return paths


def train(store, tmp_path, **options):
    spec = TrainingSpec(model="abed_cnn", epochs=options.pop("epochs", 2), batch_size=8, **options)
    bundle = train_from_store(store, spec, tmp_path / "model.keras", tmp_path / "history.csv")
    return bundle, pd.read_csv(tmp_path / "history.csv")


def test_binary_cross_entropy_gives_one_sigmoid_score_and_categorical_a_softmax(tiny_store, tmp_path):
    train(tiny_store["none"], tmp_path / "b")
    assert TrainedModel.load(tmp_path / "b" / "model.keras").model.output.shape[-1] == 1
    train(tiny_store["none"], tmp_path / "c", loss="categorical_crossentropy")
    model = TrainedModel.load(tmp_path / "c" / "model.keras")
    assert model.model.output.shape[-1] == 2
    predictions, _ = predict_store(model, tiny_store["none"])
    assert {"score_hem", "score_all"} <= set(predictions.columns)
    np.testing.assert_allclose(predictions[["score_hem", "score_all"]].sum(axis=1), 1, rtol=1e-5)


def test_class_weights_are_inverse_class_frequencies():
    weights = _class_weights(np.array([0] * 10 + [1] * 30))
    assert weights[0] == pytest.approx(2.0) and weights[1] == pytest.approx(2 / 3)


def test_early_stopping_stops_before_the_last_epoch_on_noise(tiny_store, tmp_path):
    _, history = train(tiny_store["none"], tmp_path, epochs=30, early_stopping_patience=1, learning_rate=0.01)
    assert len(history) < 30


def test_a_killed_training_resumes_from_its_last_finished_epoch(tiny_store, tmp_path, monkeypatch):
    real_logger = train_module.epoch_logger

    def dying_logger(epochs):
        import keras

        def die(epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt("killed")
        return keras.callbacks.LambdaCallback(on_epoch_end=die)

    monkeypatch.setattr(train_module, "epoch_logger", dying_logger)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_store["none"], tmp_path, epochs=5)
    assert (tmp_path / BACKUP_DIR).is_dir() and not (tmp_path / "model.keras").exists()
    monkeypatch.setattr(train_module, "epoch_logger", real_logger)
    resumed_epochs = []
    monkeypatch.setattr(train_module, "epoch_logger", lambda epochs: __import__("keras").callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs=None: resumed_epochs.append(epoch)))
    _, history = train(tiny_store["none"], tmp_path, epochs=5)
    assert resumed_epochs == [3, 4]  # epochs 0-2 were finished and backed up before the kill
    assert history["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert not (tmp_path / BACKUP_DIR).exists()


@pytest.mark.parametrize("normalization", ["per_channel", "mean_image"])
def test_normalisation_travels_with_the_model(tiny_store, tmp_path, normalization):
    train(tiny_store[normalization], tmp_path)
    model = TrainedModel.load(tmp_path / "model.keras")
    layer = model.model.get_layer("normalize")
    stats = load_store(tiny_store[normalization]).metadata["normalization"]
    np.testing.assert_allclose(np.ravel(layer.mean), np.ravel(stats["mean"]), rtol=1e-5)


def test_models_with_their_own_preprocessing_refuse_a_normalised_store(tiny_store, tmp_path):
    spec = TrainingSpec(model="vgg16", epochs=1, model_options={"weights": None})
    with pytest.raises(ValueError, match="vgg16 applies its own input preprocessing"):
        train_from_store(tiny_store["per_channel"], spec, tmp_path / "m.keras", tmp_path / "h.csv")


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "adagrad"}, "optimizer 'adagrad'"), ({"loss": "hinge"}, "loss 'hinge'"),
    ({"epochs": 0}, "epochs must be a positive"), ({"learning_rate": 0}, "learning_rate must be > 0"),
])
def test_bad_training_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingSpec(model="abed_cnn", **kwargs)
