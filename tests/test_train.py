"""Training options: losses and heads, class weights, early stopping, resuming, normalisation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import leukobench.learn.backup as backup_module
import leukobench.learn.train as train_module
from conftest import tiny_cnmc_split
from leukobench.learn.saved_model import predict_store
from leukobench.data.splits import assign_splits
from leukobench.data.store import Preparation, build_store, load_store
from leukobench.learn.backup import BACKUP_DIR, PARTIAL_HISTORY, STATE
from leukobench.learn.saved_model import TrainedModel
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


def train(store, tmp_path, trial=None, code=None, **options):
    spec = TrainingSpec(model="abed_cnn", epochs=options.pop("epochs", 2), batch_size=8, **options)
    record = train_from_store(store, spec, tmp_path / "model.keras", tmp_path / "history.csv", trial=trial, code=code)
    return record, pd.read_csv(tmp_path / "history.csv")


def killed_at_epoch_2(monkeypatch, store, tmp_path, **options):
    """Train 5 epochs and interrupt after the third was logged and backed up (as the resume test does)."""
    import keras

    def die(epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(train_module, "epoch_logger", lambda epochs: keras.callbacks.LambdaCallback(on_epoch_end=die))
    with pytest.raises(KeyboardInterrupt):
        train(store, tmp_path, epochs=5, **options)
    assert (tmp_path / BACKUP_DIR / STATE).is_file() and not (tmp_path / "history.csv").exists()


def recording_epochs(monkeypatch) -> dict[int, float]:
    """From now on, the loss of each epoch the training runs, by epoch."""
    import keras

    losses = {}
    monkeypatch.setattr(train_module, "epoch_logger", lambda epochs: keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs=None: losses.__setitem__(epoch, logs["loss"])))
    return losses


def saved_weight_groups(model_path) -> list[str]:
    """The top-level groups of the weights file inside a ``.keras`` file (Keras writes ``optimizer`` beside
    ``layers`` and ``vars`` when the model it saves is compiled)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(model_path) as archive, archive.open("model.weights.h5") as weights:
        with h5py.File(io.BytesIO(weights.read()), "r") as groups:
            return sorted(groups.keys())


@pytest.mark.slow
def test_binary_cross_entropy_gives_one_sigmoid_score_and_categorical_a_softmax(tiny_store, tmp_path):
    train(tiny_store["none"], tmp_path / "b")
    assert TrainedModel.load(tmp_path / "b" / "model.keras").model.output.shape[-1] == 1
    # the model saved holds its weights, not Adam's two moments per weight: a third of the file
    groups = saved_weight_groups(tmp_path / "b" / "model.keras")
    assert "optimizer" not in groups and "layers" in groups
    train(tiny_store["none"], tmp_path / "c", loss="categorical_crossentropy")
    model = TrainedModel.load(tmp_path / "c" / "model.keras")
    assert model.model.output.shape[-1] == 2
    predictions, _ = predict_store(model, tiny_store["none"])
    assert {"score_hem", "score_all"} <= set(predictions.columns)
    np.testing.assert_allclose(predictions[["score_hem", "score_all"]].sum(axis=1), 1, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["plain", "reference"])
def test_a_training_traces_its_train_step_once_and_trains_as_it_would_twice(tiny_store, tmp_path, monkeypatch, recipe):
    """Keras creates the optimizer's and the metrics' variables in the first trace of the train step unless
    they exist, and TensorFlow then traces it again: the whole graph built twice (ResNet50: 13 s more).
    Built first, the step is traced once, and the training is the one Keras alone gives."""
    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    traces = []
    real_step = TensorFlowTrainer.train_step
    monkeypatch.setattr(TensorFlowTrainer, "train_step", lambda self, data: traces.append(1) or real_step(self, data))
    options = {**REFERENCE_RECIPE, "epochs": 2} if recipe == "reference" else {"model": "abed_cnn", "epochs": 2}
    spec = TrainingSpec(**{"batch_size": 8, **options})
    histories = {}
    for built_first in (True, False):
        if not built_first:
            monkeypatch.setattr(train_module, "build_before_tracing", lambda *args: None)
        traces.clear()
        folder = tmp_path / str(built_first)
        train_from_store(tiny_store["none"], spec, folder / "model.keras", folder / "history.csv")
        histories[built_first] = (pd.read_csv(folder / "history.csv"), len(traces))
    assert histories[True][1] == 1 and histories[False][1] == 2
    pd.testing.assert_frame_equal(histories[True][0], histories[False][0])
    assert len(histories[True][0]) == 2


def test_class_weights_are_inverse_class_frequencies():
    weights = _class_weights(np.array([0] * 10 + [1] * 30))
    assert weights[0] == pytest.approx(2.0) and weights[1] == pytest.approx(2 / 3)


def backed_up_epochs(monkeypatch) -> list[int]:
    """From now on, the epochs done of each state the backup writes."""
    written = []
    real_write_state = backup_module.write_state
    monkeypatch.setattr(backup_module, "write_state",
                        lambda path, state: written.append(state.epochs_done) or real_write_state(path, state))
    return written


@pytest.mark.slow
def test_early_stopping_stops_before_the_last_epoch_on_noise(tiny_store, tmp_path, monkeypatch):
    written = backed_up_epochs(monkeypatch)
    _, history = train(tiny_store["none"], tmp_path, epochs=30, early_stopping_patience=1, learning_rate=0.01)
    assert len(history) < 30
    assert written == list(range(1, len(history)))  # not the epoch after which early stopping ended it


@pytest.mark.slow
def test_every_epoch_but_the_last_is_backed_up(tiny_store, tmp_path, monkeypatch):
    """The end state of a training is its saved model: a backup after the last epoch would only be removed."""
    written = backed_up_epochs(monkeypatch)
    train(tiny_store["none"], tmp_path, epochs=3)
    assert written == [1, 2] and not (tmp_path / BACKUP_DIR).exists()


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
    "trial": ({"trial": {"split_seed": 0}}, {"trial": {"split_seed": 1}}, "trial parameters (split_seed)"),
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
    options = {"code": "digest-a", "trial": {"split_seed": 0}, "model_options": {"trainable_layers": 2}}
    killed_at_epoch_2(monkeypatch, tiny_store["none"], tmp_path, **options)
    losses = recording_epochs(monkeypatch)
    _, history = train(tiny_store["none"], tmp_path, epochs=5, **options)
    assert list(losses) == [3, 4] and history["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert "set aside" not in capsys.readouterr().out and not list(tmp_path.glob(f"{BACKUP_DIR}.discarded-*"))


@pytest.mark.slow
def test_a_backup_cut_short_is_set_aside_and_training_starts_at_epoch_1(tiny_store, tmp_path, monkeypatch, capsys):
    killed_at_epoch_2(monkeypatch, tiny_store["none"], tmp_path)
    weights = tmp_path / BACKUP_DIR / STATE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a file cut short by other means
    capsys.readouterr()
    losses = recording_epochs(monkeypatch)
    _, history = train(tiny_store["none"], tmp_path, epochs=5)
    assert list(losses) == [0, 1, 2, 3, 4] and history["epoch"].tolist() == [0, 1, 2, 3, 4]
    lines = [line for line in capsys.readouterr().out.splitlines() if "set aside" in line]
    assert len(lines) == 1 and "unreadable" in lines[0] and STATE in lines[0], lines
    assert (next(tmp_path.glob(f"{BACKUP_DIR}.discarded-*")) / STATE).is_file()  # kept, not deleted


@pytest.mark.slow
def test_a_backup_that_fails_to_restore_all_the_same_is_set_aside_before_the_run_fails(tiny_store, tmp_path,
                                                                                      monkeypatch):
    killed_at_epoch_2(monkeypatch, tiny_store["none"], tmp_path)
    real_restore = train_module.restore

    def failing_restore(model, state, stopper=None):
        model.variables[0].assign(np.zeros(model.variables[0].shape))  # some variables already overwritten
        raise OSError("disk gone")
    monkeypatch.setattr(train_module, "restore", failing_restore)  # the checks miss it
    with pytest.raises(RuntimeError, match="could not be restored and was set aside"):
        train(tiny_store["none"], tmp_path, epochs=5)
    assert not (tmp_path / BACKUP_DIR).exists() and len(list(tmp_path.glob(f"{BACKUP_DIR}.discarded-*"))) == 1
    monkeypatch.setattr(train_module, "restore", real_restore)
    losses = recording_epochs(monkeypatch)
    train(tiny_store["none"], tmp_path, epochs=5)  # the next run starts afresh
    assert list(losses) == [0, 1, 2, 3, 4]


# --- a kill at any instant resumes to the training never killed -----------------------------------

KILLABLE_TRAINING = r"""
import os, sys, json
import keras
import leukobench.learn.backup as backup
import leukobench.learn.train as train
from leukobench.learn.train import TrainingSpec, train_from_store

# the trainings run one after another in this process: [folder, options] pairs; a kill ends the process
store, phase, epoch, trainings = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
die = lambda: os._exit(3)  # like SIGKILL: no clean-up, no finally
current = {}

class Killer(keras.callbacks.Callback):  # listed last, after early stopping and the backup
    def on_epoch_begin(self, e, logs=None):
        current["epoch"] = e
    def on_train_batch_end(self, batch, logs=None):
        if phase == "mid_batch" and current["epoch"] == epoch and batch == 1:
            die()
    def on_epoch_end(self, e, logs=None):
        if phase == "after_epoch_callbacks" and e == epoch:
            die()
    def on_train_end(self, logs=None):
        if phase == "after_training_before_save":
            die()

write_state = backup.write_state
def killing_write_state(path, state):
    if state.epochs_done == epoch + 1 and phase == "before_backup":  # early stopping judged it, nothing written
        die()
    if state.epochs_done == epoch + 1 and phase == "mid_backup":  # the new state half-written beside the old
        (path.parent / f".{path.name}.half.tmp").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
        die()
    write_state(path, state)
backup.write_state = killing_write_state

if phase != "none":
    train.epoch_logger = lambda epochs: Killer()
for folder, options in trainings:
    spec = TrainingSpec(**options)
    train_from_store(store, spec, os.path.join(folder, "model.keras"), os.path.join(folder, "history.csv"))
"""
STOPPING_EARLY = {"model": "abed_cnn", "epochs": 8, "batch_size": 8, "learning_rate": 0.01, "early_stopping_patience": 2}
# the reference recipe: dropout and online augmentation draw from random streams, the schedule from the optimizer's step
REFERENCE_RECIPE = {"model": "reference_resnet_small", "epochs": 4, "batch_size": 8, "early_stopping_patience": 4,
                    "optimizer": "adamw", "weight_decay": 0.05, "augmentation": True, "lr_schedule": "cosine",
                    "warmup_epochs": 1, "label_smoothing": 0.1}


def run_trainings(store, trainings, phase="none", epoch=0) -> int:
    """The trainings (folder, options) one after another in one new Python process (TensorFlow started
    once for them all), the Killer ending it at ``phase`` of ``epoch``: 3 when killed, 0 when all finished."""
    result = subprocess.run([sys.executable, "-c", KILLABLE_TRAINING, str(store), phase, str(epoch),
                             json.dumps([[str(folder), options] for folder, options in trainings])],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 3), result.stderr[-3000:]
    return result.returncode


def run_training(store, folder, phase="none", epoch=0, options=STOPPING_EARLY) -> int:
    return run_trainings(store, [(folder, options)], phase, epoch)


@pytest.fixture(scope="module")
def never_killed_trainings(tiny_store, tmp_path_factory):
    """Each recipe's training run once without a kill, in one process (each training seeds itself afresh:
    a training run after another gives what it gives alone, which the resumed trainings below confirm)."""
    folders = {"stopping_early": tmp_path_factory.mktemp("never_killed"),
               "reference": tmp_path_factory.mktemp("never_killed_reference")}
    assert run_trainings(tiny_store["none"], [(folders["stopping_early"], STOPPING_EARLY),
                                              (folders["reference"], REFERENCE_RECIPE)]) == 0
    return folders


@pytest.fixture(scope="module")
def never_killed(never_killed_trainings):
    """The early-stopping training never killed: early stopping ends it before its last epoch."""
    folder = never_killed_trainings["stopping_early"]
    history = pd.read_csv(folder / "history.csv")
    best_epoch = json.loads((folder / "model.json").read_text())["best_epoch"]
    assert 3 <= len(history) < 8 and best_epoch < len(history)  # it stopped early, on a best epoch before the last
    return folder, history, best_epoch


KILL_PHASES = {  # where in an epoch the kill falls, and at which (0-based) epoch: "stop" = the one early stopping ends
    "mid-batch, early epoch": ("mid_batch", 1),
    "early stopping judged, state not written": ("before_backup", 1),
    "state half-written": ("mid_backup", 2),
    "after the epoch's callbacks, early stopping decided": ("after_epoch_callbacks", "stop"),
    "after training, before the model is saved": ("after_training_before_save", 0),
}
REFERENCE_KILL = ("mid_batch", 1)  # the reference recipe killed mid-epoch: its random streams and schedule resume


@pytest.fixture(scope="module")
def killed_then_rerun(tiny_store, never_killed, tmp_path_factory):
    """Each kill of KILL_PHASES (and the reference recipe's) in a process of its own; what each kill left
    (its exit code, whether a history was written); then every killed training rerun, one after another
    in one process, as a user reruns after a crash."""
    _, history, _ = never_killed
    kills = {}
    for kill, (phase, epoch) in [*KILL_PHASES.items(), ("reference", REFERENCE_KILL)]:
        folder = tmp_path_factory.mktemp("killed")
        options = REFERENCE_RECIPE if kill == "reference" else STOPPING_EARLY
        epoch = len(history) - 1 if epoch == "stop" else epoch
        code = run_training(tiny_store["none"], folder, phase, epoch, options)
        kills[kill] = {"folder": folder, "options": options, "code": code,
                       "history_before_rerun": (folder / "history.csv").exists()}
    rerun = run_trainings(tiny_store["none"], [(kill["folder"], kill["options"]) for kill in kills.values()])
    return kills, rerun


@pytest.mark.parametrize("kill", KILL_PHASES)
@pytest.mark.slow
def test_a_training_killed_at_any_phase_resumes_to_the_same_history_best_epoch_and_weights(never_killed,
                                                                                           killed_then_rerun, kill):
    import keras

    folder, history, best_epoch = never_killed
    kills, rerun = killed_then_rerun
    killed = kills[kill]["folder"]
    assert kills[kill]["code"] == 3  # killed
    assert not kills[kill]["history_before_rerun"]
    assert rerun == 0  # the rerun
    resumed = pd.read_csv(killed / "history.csv")
    assert resumed["epoch"].tolist() == history["epoch"].tolist()
    pd.testing.assert_frame_equal(resumed, history, rtol=1e-6)
    assert json.loads((killed / "model.json").read_text())["best_epoch"] == best_epoch
    for mine, theirs in zip(keras.models.load_model(killed / "model.keras").get_weights(),
                            keras.models.load_model(folder / "model.keras").get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-7)
    assert not (killed / BACKUP_DIR).exists() and not list(killed.glob(f"{BACKUP_DIR}.discarded-*"))
    assert sorted(p.name for p in killed.iterdir()) == ["history.csv", "model.json", "model.keras"]


@pytest.mark.slow
def test_a_killed_reference_recipe_resumes_its_random_streams_and_schedule(never_killed_trainings, killed_then_rerun):
    """Augmentation and dropout draw again exactly what they drew in the training never killed."""
    kills, rerun = killed_then_rerun
    assert kills["reference"]["code"] == 3 and rerun == 0
    pd.testing.assert_frame_equal(pd.read_csv(kills["reference"]["folder"] / "history.csv"),
                                  pd.read_csv(never_killed_trainings["reference"] / "history.csv"), rtol=1e-6)


def test_the_state_of_an_older_layout_is_set_aside(tiny_store, tmp_path, capsys):
    """Keras' own BackupAndRestore files (what the backup held before it was one file) are not misread."""
    (tmp_path / BACKUP_DIR).mkdir()
    (tmp_path / BACKUP_DIR / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    _, history = train(tiny_store["none"], tmp_path, epochs=3)
    assert history["epoch"].tolist() == [0, 1, 2]
    line = next(line for line in capsys.readouterr().out.splitlines() if "set aside" in line)
    assert "training_metadata.json" in line and "another layout" in line


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


@pytest.mark.slow
def test_grad_cam_shows_the_trials_own_predictions_and_refuses_those_of_another_split(tiny_store, tmp_path):
    """The sheet's verdicts and scores are the predictions the training wrote (no second prediction pass),
    so predictions of the same images split otherwise (another split.seed) are refused, and nothing is written."""
    from leukobench.learn.saliency import saliency_of_trial

    for name in ("none", "resplit"):
        spec = TrainingSpec(model="abed_cnn", epochs=1, batch_size=8)
        train_from_store(tiny_store[name], spec, tmp_path / name / "model.keras", tmp_path / name / "history.csv",
                         predictions_path=tmp_path / name / "predictions.parquet")
    model, own, other = (tmp_path / "none/model.keras", tmp_path / "none/predictions.parquet",
                         tmp_path / "resplit/predictions.parquet")
    summary = saliency_of_trial(model, tiny_store["none"], own, tmp_path / "saliency.json", tmp_path / "panels.npz")
    test_images = (load_store(tiny_store["none"]).frame["split"] == "test").sum()
    assert summary["images"] == test_images and (tmp_path / "panels.npz").is_file()
    with pytest.raises(ValueError, match=r"holds other test images than .*resplit/predictions\.parquet: train the trial again"):
        saliency_of_trial(model, tiny_store["none"], other, tmp_path / "refused.json", tmp_path / "refused.npz")
    assert not (tmp_path / "refused.json").exists() and not (tmp_path / "refused.npz").exists()
