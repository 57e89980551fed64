"""Training options: losses and heads, class weights, early stopping, resuming, normalisation."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import leukobench.learn.train as train_module
from conftest import tiny_cnmc_split
from leukobench.learn.bundle import predict_store
from leukobench.data.splits import assign_splits
from leukobench.data.store import Preparation, build_store, load_store
from leukobench.learn.backup import BACKUP_DIR, BACKUP_WEIGHTS, PARTIAL_HISTORY, keep_history_before
from leukobench.learn.bundle import TrainedModel
from leukobench.learn.train import TrainingSpec, _class_weights, train_from_store


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    manifest, splits = tiny_cnmc_split(root / "raw", cells_per_subject=6)
    paths = {}
    for normalization in ("none", "per_channel", "mean_image"):
        paths[normalization] = root / f"{normalization}.parquet"
        build_store(manifest, splits, Preparation(size=24, normalization=normalization), paths[normalization])
    # the same images and preparation, other subjects in each split: what a changed split.seed gives
    resplit = assign_splits(manifest, "subject", {"train": 0.5, "val": 0.25, "test": 0.25}, seed=1)
    paths["resplit"] = root / "resplit.parquet"
    build_store(manifest, resplit, Preparation(size=24, normalization="none"), paths["resplit"])
    return paths


def train(store, tmp_path, cell=None, code=None, **options):
    spec = TrainingSpec(model="abed_cnn", epochs=options.pop("epochs", 2), batch_size=8, **options)
    bundle = train_from_store(store, spec, tmp_path / "model.keras", tmp_path / "history.csv", cell=cell, code=code)
    return bundle, pd.read_csv(tmp_path / "history.csv")


def killed_at_epoch_2(monkeypatch, store, tmp_path, **options):
    """Train 5 epochs and interrupt after the third was logged and backed up (as the resume test does)."""
    import keras

    def die(epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train_module, "epoch_logger", lambda epochs: keras.callbacks.LambdaCallback(on_epoch_end=die))
    with pytest.raises(KeyboardInterrupt):
        train(store, tmp_path, epochs=5, **options)
    assert (tmp_path / BACKUP_DIR / BACKUP_WEIGHTS).is_file() and (tmp_path / PARTIAL_HISTORY).is_file()


def recording_epochs(monkeypatch) -> dict[int, float]:
    """From now on, the loss of each epoch the training runs, by epoch."""
    import keras

    losses = {}
    monkeypatch.setattr(train_module, "epoch_logger", lambda epochs: keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs=None: losses.__setitem__(epoch, logs["loss"])))
    return losses


@pytest.mark.slow
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


@pytest.mark.slow
def test_early_stopping_stops_before_the_last_epoch_on_noise(tiny_store, tmp_path):
    _, history = train(tiny_store["none"], tmp_path, epochs=30, early_stopping_patience=1, learning_rate=0.01)
    assert len(history) < 30


@pytest.mark.slow
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


RESUME_CHANGES = {  # what changed between the killed training and its rerun, and how the log line names it
    "store": ({}, {"store": "resplit"}, "store content"),
    "learning_rate": ({}, {"learning_rate": 0.01}, "training spec (learning_rate)"),
    "model_options": ({}, {"model_options": {"trainable_layers": 2}}, "training spec (model_options)"),
    "code": ({"code": "digest-a"}, {"code": "digest-b"}, "code digest"),
    "cell": ({"cell": {"split_seed": 0}}, {"cell": {"split_seed": 1}}, "cell parameters (split_seed)"),
}


@pytest.mark.parametrize("change", RESUME_CHANGES)
@pytest.mark.slow
def test_a_backup_of_another_training_is_set_aside_and_training_starts_at_epoch_1(tiny_store, tmp_path, monkeypatch,
                                                                                   capsys, change):
    before, after, named = RESUME_CHANGES[change]
    store = tmp_path / "store.parquet"  # the rule's input path; its content changes with split.seed
    shutil.copy(tiny_store["none"], store)
    killed_at_epoch_2(monkeypatch, store, tmp_path, **before)
    if "store" in after:
        shutil.copy(tiny_store[after.pop("store")], store)
    capsys.readouterr()
    losses = recording_epochs(monkeypatch)
    _, history = train(store, tmp_path, epochs=5, **after)
    assert list(losses) == [0, 1, 2, 3, 4]  # nothing of the backup was used
    assert history["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert history["loss"].tolist() == pytest.approx([losses[e] for e in range(5)], rel=1e-6)  # the new run's only
    lines = [line for line in capsys.readouterr().out.splitlines() if "set aside" in line]
    assert len(lines) == 1 and named in lines[0] and "epoch 1" in lines[0], lines
    discarded = list(tmp_path.glob(f"{BACKUP_DIR}.discarded-*"))
    assert len(discarded) == 1 and str(discarded[0]) in lines[0]
    assert len(pd.read_csv(discarded[0] / PARTIAL_HISTORY)) == 3  # the old run's epochs, kept aside, not mixed in
    assert not (tmp_path / BACKUP_DIR).exists() and not (tmp_path / PARTIAL_HISTORY).exists()


@pytest.mark.slow
def test_a_matching_backup_resumes_without_setting_anything_aside(tiny_store, tmp_path, monkeypatch, capsys):
    options = {"code": "digest-a", "cell": {"split_seed": 0}, "model_options": {"trainable_layers": 2}}
    killed_at_epoch_2(monkeypatch, tiny_store["none"], tmp_path, **options)
    losses = recording_epochs(monkeypatch)
    _, history = train(tiny_store["none"], tmp_path, epochs=5, **options)
    assert list(losses) == [3, 4] and history["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert "set aside" not in capsys.readouterr().out and not list(tmp_path.glob(f"{BACKUP_DIR}.discarded-*"))


@pytest.mark.slow
def test_a_backup_cut_short_is_set_aside_and_training_starts_at_epoch_1(tiny_store, tmp_path, monkeypatch, capsys):
    killed_at_epoch_2(monkeypatch, tiny_store["none"], tmp_path)
    weights = tmp_path / BACKUP_DIR / BACKUP_WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a kill during Keras' backup write
    capsys.readouterr()
    losses = recording_epochs(monkeypatch)
    _, history = train(tiny_store["none"], tmp_path, epochs=5)
    assert list(losses) == [0, 1, 2, 3, 4] and history["epoch"].tolist() == [0, 1, 2, 3, 4]
    lines = [line for line in capsys.readouterr().out.splitlines() if "set aside" in line]
    assert len(lines) == 1 and "unreadable" in lines[0] and BACKUP_WEIGHTS in lines[0], lines
    assert (next(tmp_path.glob(f"{BACKUP_DIR}.discarded-*")) / BACKUP_WEIGHTS).is_file()  # kept, not deleted


@pytest.mark.slow
def test_a_backup_keras_fails_to_restore_all_the_same_is_set_aside_before_the_run_fails(tiny_store, tmp_path,
                                                                                        monkeypatch):
    killed_at_epoch_2(monkeypatch, tiny_store["none"], tmp_path)
    weights = tmp_path / BACKUP_DIR / BACKUP_WEIGHTS
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    monkeypatch.setattr(train_module, "backup_problem", lambda backup, fingerprint: None)  # the checks miss it
    with pytest.raises(RuntimeError, match="could not be restored and was set aside"):
        train(tiny_store["none"], tmp_path, epochs=5)
    assert not (tmp_path / BACKUP_DIR).exists() and len(list(tmp_path.glob(f"{BACKUP_DIR}.discarded-*"))) == 1
    monkeypatch.undo()
    losses = recording_epochs(monkeypatch)
    train(tiny_store["none"], tmp_path, epochs=5)  # the next run starts afresh
    assert list(losses) == [0, 1, 2, 3, 4]


def test_the_history_keeps_only_the_epochs_the_backup_holds(tmp_path):
    path = tmp_path / "history.csv"
    # epoch 2 logged twice (killed between its log row and its backup, then repeated), a row cut short by a kill
    path.write_bytes(b"epoch,loss\r\n0,0.9\r\n1,0.8\r\n2,0.7\r\n2,0.6\r\n3,0.")
    keep_history_before(path, 2)
    assert path.read_bytes() == b"epoch,loss\r\n0,0.9\r\n1,0.8\r\n"
    keep_history_before(path, 0)
    assert not path.exists()


def test_labels_outside_the_head_are_refused(tiny_store, tmp_path):
    table = pq.read_table(tiny_store["none"])
    labels = table.column("label").to_numpy() + 1  # 1 and 2 for two class names
    bad = tmp_path / "bad.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label",
                                    pa.array(labels, type=table.schema.field("label").type)), bad)
    with pytest.raises(ValueError, match=r"bad\.parquet: labels \[2\] are outside .*\['hem', 'all'\]"):
        train(bad, tmp_path / "model")
    assert not (tmp_path / "model" / "model.keras").exists()
    train(tiny_store["none"], tmp_path / "good", epochs=1)
    with pytest.raises(ValueError, match=r"labels \[2\] are outside"):
        predict_store(TrainedModel.load(tmp_path / "good" / "model.keras"), bad)


@pytest.mark.parametrize("normalization", ["per_channel", "mean_image"])
@pytest.mark.slow
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
