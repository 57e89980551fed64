"""Train one Keras cell of the grid, and apply a trained model to images.

A cell is trained with ``compile`` + ``fit`` on the store's train split, validated on its val
split each epoch (logged, never used to pick the reported weights: the model of the last epoch is
the one evaluated, as in the studies), and saved as ``model.keras`` beside ``model.json``, which
holds what is needed to apply it to new images: the preparation, the class names and the cell.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xxhash

from leukobench.io import atomic_path
from leukobench.models import create_model
from leukobench.store import Preparation, Store, load_store

OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOSSES = ("auto", "binary_crossentropy", "categorical_crossentropy")
PREDICT_BATCH = 256
BACKUP_DIR = ".train_backup"  # beside model.keras: lets a killed training resume at its last finished epoch
PARTIAL_HISTORY = ".history.partial.csv"  # the epochs logged so far, kept across a resume
FINGERPRINT = "fingerprint.json"  # inside BACKUP_DIR: what the backed-up training was made from
BACKUP_WEIGHTS = "latest.weights.h5"  # the files Keras' BackupAndRestore writes in BACKUP_DIR
BACKUP_STATE = "training_metadata.json"
FINGERPRINT_PARTS = {"store": "store content", "training": "training spec", "cell": "cell parameters",
                     "code": "code digest"}


@dataclass(frozen=True)
class TrainingSpec:
    """The hyperparameters of one Keras cell."""

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
        if self.learning_rate != "default" and not (isinstance(self.learning_rate, (int, float)) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be > 0 or 'default', got {self.learning_rate}")


def configure_runtime(threads: int, seed: int) -> None:
    """Seed Python, numpy and Keras; bound TensorFlow's CPU threads to the job's share."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    except RuntimeError:  # TensorFlow already ran in this process (tests, notebooks): keep its threads
        print("TensorFlow is already initialised; its thread settings are kept")


def _optimizer(spec: TrainingSpec):
    import keras

    cls = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    if spec.learning_rate == "default":
        return cls[spec.optimizer]()
    return cls[spec.optimizer](learning_rate=spec.learning_rate)


def sigmoid_head(spec: TrainingSpec, n_classes: int) -> bool:
    """One sigmoid unit for two classes with binary cross-entropy; a softmax over the classes otherwise."""
    return n_classes == 2 and spec.loss in ("auto", "binary_crossentropy")


def _loss_and_targets(spec: TrainingSpec, n_classes: int):
    """The Keras loss and a function making its targets from integer labels.

    ``binary_crossentropy`` with more than two classes is Zhang's choice: softmax outputs,
    one-hot targets, each output scored as its own binary problem.
    """
    if sigmoid_head(spec, n_classes):
        return "binary_crossentropy", lambda labels: labels.astype("float32")
    if spec.loss == "auto":
        return "sparse_categorical_crossentropy", lambda labels: labels.astype("int32")
    return spec.loss, lambda labels: np.eye(n_classes, dtype="float32")[labels]


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


def check_labels(labels, class_names: list[str], source: str | os.PathLike) -> None:
    """Refuse labels that a head over ``class_names`` cannot output (anything but 0..len(class_names)-1)."""
    found = np.unique(np.asarray(labels))
    outside = [value.item() for value in found if not (float(value).is_integer() and 0 <= value < len(class_names))]
    if outside:
        raise ValueError(f"{source}: labels {outside} are outside the model's head: its {len(class_names)} class "
                         f"names {class_names} allow labels 0..{len(class_names) - 1} only")


def store_digest(store: Store) -> str:
    """XXH3-128 of what training reads from a store: its metadata, its table and its pixels."""
    digest = xxhash.xxh3_128()
    digest.update(json.dumps(store.metadata, sort_keys=True, default=str).encode())
    digest.update(pd.util.hash_pandas_object(store.frame, index=False).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(store.images).data)
    return digest.hexdigest()


def _json_value(value):
    return value.item() if hasattr(value, "item") else str(value)


def training_fingerprint(store: Store, spec: TrainingSpec, cell: dict | None, code: str | None) -> dict:
    """What a training is made from; a backup resumes only a training with the same one."""
    fingerprint = {"store": store_digest(store), "training": asdict(spec), "cell": cell or {}, "code": code}
    return json.loads(json.dumps(fingerprint, sort_keys=True, default=_json_value))  # as it reads back from JSON


def fingerprint_difference(recorded: dict, current: dict) -> str | None:
    """Which parts of two fingerprints differ, in words (keys named for the spec and the cell); None if none."""
    missing = object()
    parts = []
    for key, name in FINGERPRINT_PARTS.items():
        old, new = recorded.get(key, missing), current.get(key, missing)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            keys = sorted(k for k in old.keys() | new.keys() if old.get(k, missing) != new.get(k, missing))
            name += f" ({', '.join(keys)})"
        parts.append(name)
    if not parts and recorded != current:
        parts.append("fingerprint layout")
    return ", ".join(parts) or None


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _read_h5(path: Path) -> None:
    """Read every dataset of an HDF5 file: raises if the file is cut short or corrupt."""
    import h5py

    def read(name, item):
        if isinstance(item, h5py.Dataset):
            item[()]
        return None  # a value would stop visititems

    with h5py.File(path, "r") as file:
        file.visititems(read)


def backup_problem(backup: Path, fingerprint: dict) -> str | None:
    """Why the backup in ``backup`` must not be resumed by the training ``fingerprint`` describes; None if it may."""
    try:
        recorded = json.loads((backup / FINGERPRINT).read_text())
    except FileNotFoundError:
        return f"it has no {FINGERPRINT}, so nothing says which training made it"
    except (OSError, ValueError) as error:
        return f"its {FINGERPRINT} cannot be read ({_one_line(error)})"
    if not isinstance(recorded, dict):
        return f"its {FINGERPRINT} is not a JSON object"
    difference = fingerprint_difference(recorded, fingerprint)
    if difference:
        return f"it was made by a training with another {difference}"
    weights, state = backup / BACKUP_WEIGHTS, backup / BACKUP_STATE
    if not weights.exists() and not state.exists():
        return None  # killed before its first epoch was backed up: nothing to restore, the training starts afresh
    try:
        epoch = json.loads(state.read_text())["epoch"]
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch {epoch!r}")
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"the backup is unreadable: {BACKUP_STATE} ({_one_line(error)})"
    try:
        _read_h5(weights)
    except Exception as error:  # noqa: BLE001 - h5py raises OSError, KeyError, RuntimeError... on a broken file
        return f"the backup is unreadable: {BACKUP_WEIGHTS} ({_one_line(error)})"
    return None


def _set_aside(backup: Path, partial_history: Path, reason: str, then: str = "the training starts at epoch 1") -> Path:
    """Rename the backup (with the partial history moved into it) to ``<backup>.discarded-<UTC time>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = backup.with_name(f"{backup.name}.discarded-{stamp}")
    n = 1
    while target.exists():
        target, n = backup.with_name(f"{backup.name}.discarded-{stamp}-{n}"), n + 1
    if partial_history.exists():  # first into the backup, then both aside: a kill in between loses nothing
        os.replace(partial_history, backup / partial_history.name)
    backup.rename(target)
    print(f"training backup set aside as {target} (with its partial history), not resumed: {reason}; {then}",
          flush=True)
    return target


def _backed_up_epochs(backup: Path) -> int:
    """Epochs the backup holds (0 without one): the resumed training starts after them."""
    try:
        return int(json.loads((backup / BACKUP_STATE).read_text())["epoch"])
    except FileNotFoundError:
        return 0


def _keep_history_before(path: Path, epochs: int) -> None:
    """Keep the logged rows of the first ``epochs`` epochs only: those the backup holds.

    The history logs an epoch just before it is backed up; a kill in between repeats that epoch,
    whose first row goes. A row cut short by a kill goes too.
    """
    if not path.exists():
        return
    with open(path, newline="") as file:
        lines = file.readlines()
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    columns = len(next(csv.reader(lines[:1]), []))
    kept = []
    for line in lines[1:]:
        row = next(csv.reader([line]), [])
        if len(row) == columns and row[0].isdigit() and int(row[0]) < epochs:
            kept.append(line)
    if not kept:
        path.unlink()
    elif kept != lines[1:]:
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
            file.writelines([lines[0], *kept])


def _guarded_backup(backup: Path, partial_history: Path):
    """Keras' BackupAndRestore; a restore that fails all the same sets the backup aside before failing."""
    import keras

    class GuardedBackupAndRestore(keras.callbacks.BackupAndRestore):
        def on_train_begin(self, logs=None):
            try:
                super().on_train_begin(logs)
            except Exception as error:
                # some weights may already be overwritten: this model cannot start afresh, the next run can
                target = _set_aside(backup, partial_history, f"Keras could not restore it ({_one_line(error)})",
                                    then="this run fails, the next starts at epoch 1")
                raise RuntimeError(f"the training backup could not be restored and was set aside as {target}; "
                                   "run the training again to start at epoch 1") from error

    return GuardedBackupAndRestore(str(backup))


def train_cell(store: Store, spec: TrainingSpec, model_path: str | os.PathLike, history_path: str | os.PathLike,
               cell: dict | None = None, *, code: str | None = None,
               store_path: str | os.PathLike | None = None) -> dict:
    """Train, then save the model bundle and the per-epoch history.

    A training killed mid-way resumes at its last backed-up epoch, but only from a backup the same
    training made: its fingerprint (the store's content, the spec, the cell, the code digest) must
    match and its files must read back; otherwise the backup is set aside and training starts afresh.

    Args:
        store: the loaded image store (train and val splits are used).
        spec: the hyperparameters.
        model_path: ``model.keras``; ``model.json`` is written beside it.
        history_path: per-epoch CSV (Keras ``CSVLogger``).
        cell: the grid parameters of this cell, recorded in ``model.json``.
        code: the digest of the code that trains (the rule's ``params.code``), part of the fingerprint.
        store_path: the store's file, named in errors.

    Returns:
        The content of ``model.json``.
    """
    import keras

    x_train, y_train, _ = store.part("train")
    x_val, y_val, _ = store.part("val")
    if len(x_train) == 0:
        raise ValueError("the store has no training images")
    n_classes = len(store.class_names)
    check_labels(store.frame["label"], store.class_names, store_path or "the store")
    if len(np.unique(y_train)) < 2:
        raise ValueError("the training split holds a single class; nothing can be learned")
    backup = Path(model_path).parent / BACKUP_DIR
    partial_history = Path(model_path).parent / PARTIAL_HISTORY
    backup.parent.mkdir(parents=True, exist_ok=True)
    fingerprint = training_fingerprint(store, spec, cell, code)
    if backup.exists():
        problem = backup_problem(backup, fingerprint)
        if problem:
            _set_aside(backup, partial_history, problem)
    _keep_history_before(partial_history, _backed_up_epochs(backup))  # no backup: a fresh start, no rows kept
    backup.mkdir(exist_ok=True)
    with atomic_path(backup / FINGERPRINT) as tmp:  # before the first epoch can be backed up
        tmp.write_text(json.dumps(fingerprint, indent=2, sort_keys=True))
    model = create_model(spec.model, input_shape=x_train.shape[1:], n_classes=n_classes,
                         **_model_kwargs(spec, n_classes, store.metadata.get("normalization")))
    loss, targets = _loss_and_targets(spec, n_classes)
    model.compile(optimizer=_optimizer(spec), loss=loss, metrics=["accuracy"])
    model.summary(print_fn=print)
    validation = (x_val, targets(y_val)) if len(x_val) else None
    callbacks = [  # in this order: an epoch is logged, then backed up, then printed
        keras.callbacks.CSVLogger(str(partial_history), append=True),
        _guarded_backup(backup, partial_history),
        epoch_logger(spec.epochs),
    ]
    if spec.early_stopping_patience and validation is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=spec.early_stopping_patience, restore_best_weights=True))
    class_weight = _class_weights(y_train) if spec.class_weight else None
    if class_weight:
        print(f"class weights: {class_weight}")
    started = time.perf_counter()
    model.fit(
        x_train, targets(y_train), validation_data=validation, epochs=spec.epochs, batch_size=spec.batch_size,
        shuffle=True, verbose=0, class_weight=class_weight, callbacks=callbacks,
    )
    bundle = {
        "model": spec.model,
        "training": asdict(spec),
        "preparation": store.metadata["preparation"],
        "class_names": store.class_names,
        "cell": cell or {},
        "train_images": int(len(x_train)),
        "train_seconds": time.perf_counter() - started,
    }
    with atomic_path(model_path) as tmp_model:
        model.save(tmp_model)
    with atomic_path(bundle_path(model_path)) as tmp_json:
        tmp_json.write_text(json.dumps(bundle, indent=2))
    os.replace(partial_history, history_path)
    shutil.rmtree(backup, ignore_errors=True)  # Keras removes it after the last epoch; an early stop may not
    return bundle


def bundle_path(model_path: str | os.PathLike) -> Path:
    """``model.json`` beside ``model.keras``."""
    return Path(model_path).with_suffix(".json")


@dataclass
class TrainedModel:
    """A saved model with what is needed to apply it to new images."""

    model: object
    bundle: dict

    @classmethod
    def load(cls, model_path: str | os.PathLike) -> "TrainedModel":
        import keras

        return cls(keras.models.load_model(model_path), json.loads(bundle_path(model_path).read_text()))

    @property
    def preparation(self) -> Preparation:
        return Preparation(**self.bundle["preparation"])

    @property
    def class_names(self) -> list[str]:
        return self.bundle["class_names"]

    def predict_scores(self, images: np.ndarray) -> np.ndarray:
        """Probability of class 1 (binary, shape (n,)) or of each class (shape (n, k))."""
        return class_scores(self.model.predict(images, batch_size=PREDICT_BATCH, verbose=0))


def class_scores(output: np.ndarray) -> np.ndarray:
    """A model's output as scores: probability of class 1 for a one-unit sigmoid (shape (n,)),
    of each class for a softmax (shape (n, k))."""
    return output[:, 0] if output.shape[1] == 1 else output


def train_from_store(store_path: str | os.PathLike, spec: TrainingSpec, model_path, history_path,
                     cell: dict | None = None, threads: int = 1, code: str | None = None) -> dict:
    """The workflow's entry point: seed, read the store, train (``code``: the rule's code digest)."""
    configure_runtime(threads, spec.seed)
    return train_cell(load_store(store_path), spec, model_path, history_path, cell, code=code, store_path=store_path)
