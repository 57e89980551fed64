"""Train one Keras trial of the grid: the workflow's one TensorFlow job per trial.

A trial is trained with ``compile`` + ``fit`` on the store's train split, validated on its val
split each epoch (logged, never used to pick the reported weights: the model of the last epoch is
the one evaluated, as in the studies), and saved as ``model.keras`` beside ``model.json``, which
holds what is needed to apply it to new images: the preparation, the class names and the trial.
:func:`train_from_store`, the job, then applies the model still in memory to the store: the
predictions of the evaluated splits, which the evaluation reads without loading a model, and for
the trials of hybrid models their conv features.

The reference recipe's options (:mod:`leukobench.learn.recipe`; all off by default, and taken only
by the reference models, :func:`leukobench.models.recipe_models`) add online augmentation,
a learning-rate schedule with warm-up and label smoothing; the optimizer ``adamw`` (a grid value)
takes ``weight_decay``; with ``early_stopping_patience`` the weights of the best validation epoch
are the ones saved and evaluated (the validation split chooses, the test split only reports).

The training's chance loss (:func:`leukobench.learned.chance_loss`: the loss of answering the
training split's class shares, under this training's loss) is recorded in ``model.json`` and in
the predictions' metadata, and the log's last line says whether the trial learned
(:func:`leukobench.learned.judge_keras`, the verdict the evaluation writes into metrics.csv).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from leukobench.data.store import Store, load_store
from leukobench.io import atomic_path
from leukobench.learn.backup import (
    BACKUP_DIR,
    UnusableBackup,
    one_line,
    read_backup,
    remove_temporaries,
    restore,
    set_aside,
    training_backup,
    training_fingerprint,
    write_history,
)
from leukobench.learn.saved_model import TrainedModel, model_record_path, check_labels, predict_store
from leukobench.learn.cnn_features import write_conv_features
from leukobench.learn.devices import configure_runtime
from leukobench.models import create_model
from leukobench.learn.recipe import LR_SCHEDULES, learning_rate, resumable_early_stopping, steps_per_epoch, for_fitting
from leukobench.learned import chance_loss, judge_keras, read_history
from leukobench.predictions import write_predictions

OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")
DEFAULT_LEARNING_RATES = {"adam": 1e-3, "sgd": 1e-2, "rmsprop": 1e-3, "adamw": 1e-3}  # Keras' own
LOSSES = ("auto", "binary_crossentropy", "categorical_crossentropy")


@dataclass(frozen=True)
class TrainingSpec:
    """The hyperparameters of one Keras trial."""

    model: str
    optimizer: str = "adam"
    learning_rate: float | str = 1e-3  # or "default": the optimizer's own Keras default
    loss: str = "auto"
    epochs: int = 10
    batch_size: int = 32
    seed: int = 0
    class_weight: bool = False
    early_stopping_patience: int = 0
    model_options: dict = field(default_factory=dict)  # e.g. weights, trainable_layers of transfer models
    weight_decay: float = 0.004  # optimizer adamw only: decoupled weight decay (Keras' AdamW default)
    augmentation: bool = False  # the reference recipe (leukobench.learn.recipe): online augmentation,
    lr_schedule: str = "constant"  # constant or cosine (to 0 at the last step),
    warmup_epochs: int = 0  # a linear warm-up from 0 over these first epochs,
    label_smoothing: float = 0.0  # targets pulled this far towards uniform

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer '{self.optimizer}' unknown; allowed: {', '.join(OPTIMIZERS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss '{self.loss}' unknown; allowed: {', '.join(LOSSES)}")
        if self.early_stopping_patience < 0:
            raise ValueError(f"early_stopping_patience must be >= 0, got {self.early_stopping_patience}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule '{self.lr_schedule}' unknown; allowed: {', '.join(LR_SCHEDULES)}")
        if self.warmup_epochs < 0:  # one as long as the training is cut short (a smoke run's fewer epochs)
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.learning_rate != "default" and not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0 or 'default', got {self.learning_rate}")


def _optimizer(spec: TrainingSpec, steps: int = 1):
    """The optimizer, its learning rate scheduled over ``steps`` per epoch (:func:`leukobench.learn.recipe.learning_rate`)."""
    import keras

    cls = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop,
           "adamw": keras.optimizers.AdamW}
    extra = {"weight_decay": spec.weight_decay} if spec.optimizer == "adamw" else {}
    if spec.learning_rate == "default" and spec.lr_schedule == "constant" and not spec.warmup_epochs:
        return cls[spec.optimizer](**extra)
    rate = DEFAULT_LEARNING_RATES[spec.optimizer] if spec.learning_rate == "default" else spec.learning_rate
    return cls[spec.optimizer](learning_rate=learning_rate(spec.lr_schedule, rate, spec.epochs, steps, spec.warmup_epochs),
                               **extra)


def sigmoid_head(spec: TrainingSpec, n_classes: int) -> bool:
    """One sigmoid unit for two classes with binary cross-entropy; a softmax over the classes otherwise."""
    return n_classes == 2 and spec.loss in ("auto", "binary_crossentropy")


def _loss_and_targets(spec: TrainingSpec, n_classes: int):
    """The Keras loss and a function making its targets from integer labels.

    ``binary_crossentropy`` with more than two classes is Zhang's choice: softmax outputs,
    one-hot targets, each output scored as its own binary problem. With ``label_smoothing`` the loss
    is Keras' loss object with that smoothing (sparse categorical becomes categorical on one-hot
    targets, the one that smooths).
    """
    import keras

    smoothing = spec.label_smoothing
    if sigmoid_head(spec, n_classes):
        loss = keras.losses.BinaryCrossentropy(label_smoothing=smoothing) if smoothing else "binary_crossentropy"
        return loss, lambda labels: labels.astype("float32")
    if spec.loss == "auto" and not smoothing:
        return "sparse_categorical_crossentropy", lambda labels: labels.astype("int32")
    if smoothing:
        loss_class = keras.losses.BinaryCrossentropy if spec.loss == "binary_crossentropy" else keras.losses.CategoricalCrossentropy
        return loss_class(label_smoothing=smoothing), lambda labels: np.eye(n_classes, dtype="float32")[labels]
    return spec.loss, lambda labels: np.eye(n_classes, dtype="float32")[labels]


def training_chance_loss(spec: TrainingSpec, train_labels: np.ndarray, n_classes: int) -> float:
    """The loss this training reaches by answering every image with its training split's class
    shares (:func:`leukobench.learned.chance_loss`, under this spec's loss, label smoothing and
    class weights)."""
    per_output_binary = not sigmoid_head(spec, n_classes) and spec.loss == "binary_crossentropy"
    return chance_loss(train_labels, n_classes, per_output_binary=per_output_binary,
                       label_smoothing=spec.label_smoothing, class_weight=spec.class_weight)


def _class_weights(labels: np.ndarray) -> dict[int, float]:
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.unique(labels)
    return dict(zip(classes.tolist(), compute_class_weight("balanced", classes=classes, y=labels).tolist()))


def _model_kwargs(spec: TrainingSpec, n_classes: int, normalization: dict | None) -> dict:
    """Builder keywords: the head, normalisation and the options the builder takes."""
    from leukobench.models import builder_parameters

    accepted = builder_parameters(spec.model)
    unknown = set(spec.model_options) - accepted
    kwargs = {key: value for key, value in spec.model_options.items() if key in accepted}
    if unknown:
        print(f"{spec.model} takes no {sorted(unknown)}; ignored")
    kwargs["head"] = "sigmoid" if sigmoid_head(spec, n_classes) else "softmax"
    if normalization is not None:
        if "normalization" not in accepted:
            raise ValueError(f"{spec.model} applies its own input preprocessing; use a variant with normalization: none")
        kwargs["normalization"] = normalization
    return kwargs


def build_before_tracing(model, x_batch: np.ndarray, y_batch: np.ndarray) -> None:
    """Create every variable the compiled ``model``'s training step needs (layers, loss, metrics,
    optimizer slots) before ``fit`` traces that step.

    Without a distribution strategy, Keras' TensorFlow trainer defers them to the first trace of its
    train function, and a ``tf.function`` that creates variables is traced a second time: the whole
    forward and backward graph built twice (ResNet50 at 32 px on 2 cores: its first epoch 32 s, and 19 s
    built first). The variables are those ``fit`` would create, with the same
    initial values, so the training is the same. ``_symbolic_build`` is Keras' own (the path ``fit``
    takes under a distribution strategy); keras is pinned (pyproject.toml)."""
    model._symbolic_build(data_batch=(x_batch, y_batch))


def epoch_logger(epochs: int):
    """A callback printing one line per epoch (the training log's progress)."""
    import keras

    started = {}

    def begin(epoch, logs=None):
        started["at"] = time.perf_counter()

    def end(epoch, logs=None):
        values = " ".join(f"{name}={value:.4f}" for name, value in sorted((logs or {}).items()))
        print(f"epoch {epoch + 1}/{epochs}: {values} ({time.perf_counter() - started['at']:.1f} s)", flush=True)

    return keras.callbacks.LambdaCallback(on_epoch_begin=begin, on_epoch_end=end)


def train_trial(store: Store, spec: TrainingSpec, model_path: str | os.PathLike, history_path: str | os.PathLike,
               trial: dict | None = None, *, code: str | None = None,
               store_path: str | os.PathLike | None = None) -> TrainedModel:
    """Train, then save the model and its record (model.json) and the per-epoch history.

    A training killed mid-way resumes at its last backed-up epoch with everything it was then
    (:mod:`leukobench.learn.backup`), so its history and best epoch are those of a training never
    killed; but only from a backup the same training made: its fingerprint (the store's content,
    the spec, the trial, the code digest) must match and its file must read back in full; otherwise
    the backup is set aside and training starts afresh.

    Args:
        store: the loaded image store (train and val splits are used).
        spec: the hyperparameters.
        model_path: ``model.keras``; ``model.json`` is written beside it.
        history_path: per-epoch CSV (as Keras' ``CSVLogger`` writes it), one row per epoch of the whole training.
        trial: the grid parameters of this trial, recorded in ``model.json``.
        code: the digest of the code that trains (the rule's ``params.code``), part of the fingerprint.
        store_path: the store's file, named in errors.

    Returns:
        The trained model, as saved, and the content of ``model.json``.
    """

    x_train, y_train, _ = store.part("train")
    x_val, y_val, _ = store.part("val")
    if len(x_train) == 0:
        raise ValueError("the store has no training images")
    n_classes = len(store.class_names)
    check_labels(store.frame["label"], store.class_names, store_path or "the store")
    if len(np.unique(y_train)) < 2:
        raise ValueError("the training split holds a single class; nothing can be learned")
    backup = Path(model_path).parent / BACKUP_DIR
    backup.parent.mkdir(parents=True, exist_ok=True)
    fingerprint = training_fingerprint(store, spec, trial, code)
    remove_temporaries(backup)
    try:
        resumed = read_backup(backup, fingerprint)
    except UnusableBackup as problem:
        set_aside(backup, str(problem))
        resumed = None
    model = create_model(spec.model, input_shape=x_train.shape[1:], n_classes=n_classes,
                         **_model_kwargs(spec, n_classes, store.metadata.get("normalization")))
    loss, targets = _loss_and_targets(spec, n_classes)
    # fit trains (with online augmentation, behind an augmentation layer) and compiles a wrapper; the model saved is
    # the plain one, uncompiled: its weights without the optimizer's state
    fitted = for_fitting(model, augmentation=spec.augmentation, seed=spec.seed)
    fitted.compile(optimizer=_optimizer(spec, steps_per_epoch(len(x_train), spec.batch_size)), loss=loss,
                   metrics=["accuracy"])
    build_before_tracing(fitted, x_train[:1], targets(y_train[:1]))
    model.summary(print_fn=print)
    validation = (x_val, targets(y_val)) if len(x_val) else None
    stopper = None
    if spec.early_stopping_patience and validation is not None:  # keeps the best validation epoch's weights, resumed too
        stopper = resumable_early_stopping(spec.early_stopping_patience)
    if resumed is not None:
        try:
            restore(fitted, resumed, stopper)  # checks every shape before it assigns anything
        except UnusableBackup as problem:
            set_aside(backup, str(problem))
            resumed = None
        except Exception as error:
            # some variables may already be overwritten: this model cannot start afresh, the next run can
            target = set_aside(backup, f"it could not be restored ({one_line(error)})",
                               then="this run fails, the next starts at epoch 1")
            raise RuntimeError(f"the training backup could not be restored and was set aside as {target}; "
                               "run the training again to start at epoch 1") from error
    first_epoch = resumed.epochs_done if resumed is not None else 0
    # a training whose early stopping had decided to stop before the kill trains no further epoch
    last_epoch = first_epoch if resumed is not None and resumed.stopped else spec.epochs
    if resumed is not None:
        print(f"resumed from {backup}: {first_epoch} epoch(s) done"
              + (", early stopping had ended the training" if resumed.stopped else ""), flush=True)
    backup_callback = training_backup(backup, fingerprint, last_epoch, stopper, resumed)
    # in this order: early stopping judges an epoch, then the whole state is backed up, then the epoch is printed
    callbacks = [*([stopper] if stopper is not None else []), backup_callback, epoch_logger(spec.epochs)]
    class_weight = _class_weights(y_train) if spec.class_weight else None
    if class_weight:
        print(f"class weights: {class_weight}")
    started = time.perf_counter()
    fitted.fit(
        x_train, targets(y_train), validation_data=validation, initial_epoch=first_epoch, epochs=last_epoch,
        batch_size=spec.batch_size, shuffle=True, verbose=0, class_weight=class_weight, callbacks=callbacks,
    )
    record = {
        "model": spec.model,
        "training": asdict(spec),
        "preparation": store.metadata["preparation"],
        "class_names": store.class_names,
        "trial": trial or {},
        "train_images": int(len(x_train)),
        "train_seconds": time.perf_counter() - started,
        "chance_loss": training_chance_loss(spec, y_train, n_classes),  # leukobench.learned: did it learn
        # early stopping: the epoch (from 1) whose weights were saved, the best on the validation loss
        **({"best_epoch": int(stopper.best_epoch) + 1} if stopper is not None and stopper.best_weights is not None else {}),
    }
    with atomic_path(model_path) as tmp_model:
        model.save(tmp_model)
    with atomic_path(model_record_path(model_path)) as tmp_json:
        tmp_json.write_text(json.dumps(record, indent=2))
    write_history(backup_callback.history, Path(history_path))
    shutil.rmtree(backup, ignore_errors=True)  # last: a kill before this resumes to the same model, saved again
    return TrainedModel(model, record)


def train_from_store(store_path: str | os.PathLike, spec: TrainingSpec, model_path, history_path,
                     trial: dict | None = None, threads: int = 1, code: str | None = None, *,
                     predictions_path: str | os.PathLike | None = None,
                     features_path: str | os.PathLike | None = None) -> dict:
    """The workflow's Keras job, everything a trial needs its model for in one TensorFlow process:
    seed, read the store, train (``code``: the rule's code digest); then, with the model in memory,
    write the predictions of the evaluated splits (``predictions_path``, read by the evaluation;
    then the log's line on whether the trial learned) and the conv features of every image
    (``features_path``, read by the hybrid trials). Returns the content of ``model.json``."""
    configure_runtime(threads, spec.seed)
    store = load_store(store_path)
    trained = train_trial(store, spec, model_path, history_path, trial, code=code, store_path=store_path)
    if predictions_path is not None:
        predictions, seconds = predict_store(trained, store)
        write_predictions(predictions, predictions_path, trial={"approach": "cnn", **(trial or {})},
                          class_names=trained.class_names, train_seconds=trained.record["train_seconds"],
                          predict_seconds=seconds, leaky=bool(store.metadata.get("leaky", False)),
                          chance_loss=trained.record["chance_loss"])
        if len(predictions):  # none: the evaluation stops on it, naming the file
            verdict = judge_keras(read_history(history_path), predictions, trained.class_names,
                                  trained.record["chance_loss"])
            print(verdict.log_line(), flush=True)
    if features_path is not None:
        write_conv_features(trained, store, store_path, model_path, features_path)
    return trained.record
