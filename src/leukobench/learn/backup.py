"""Resuming a killed training, only where it is the same training, to exactly where it was.

Everything a training is at the end of an epoch is one file, ``.train_backup/state.npz`` beside
the model: every variable of the model being fitted (weights, and the random streams of its
dropout and augmentation layers), every variable of the optimizer (its moments and its step, which
is the learning-rate schedule's position), early stopping's best value, best epoch, wait, best
weights and whether it decided to stop, the per-epoch history, and the fingerprint of what made
the training (the store's content, the training spec, the trial, the code digest). It is written
whole to a temporary file in the same folder and moved onto the last one (``os.replace``), so a
kill at any instant leaves either the state of the last finished epoch or the one before: a
resumed training repeats no finished epoch, skips none, and a training whose early stopping had
decided to stop does not train on. The one exception is the epoch that ends the training: its state
is the model saved right after it, not a backup, so a kill between the two trains that epoch again
(to the same weights, history and best epoch).

A backup of another training, or one that does not read back in full, is set aside
(``.train_backup.discarded-<UTC time>``, with its partial history as a CSV) and the training starts
at epoch 1; :func:`leukobench.learn.train.train_trial` decides, this module checks.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xxhash

from leukobench.data.store import Store
from leukobench.io import atomic_path

BACKUP_DIR = ".train_backup"  # beside model.keras: lets a killed training resume at its last finished epoch
STATE = "state.npz"  # inside BACKUP_DIR: the whole training state, written whole or not at all
PARTIAL_HISTORY = ".history.partial.csv"  # the epochs of a backup set aside, as a CSV beside its state
STATE_LAYOUT = 1  # bumped when what STATE holds changes: an older one is set aside, not misread
FINGERPRINT_PARTS = {"store": "store content", "training": "training spec", "trial": "trial parameters",
                     "code": "code digest"}


def store_digest(store: Store) -> str:
    """XXH3-128 of what training reads from a store: its metadata, its table and its pixels."""
    digest = xxhash.xxh3_128()
    digest.update(json.dumps(store.metadata, sort_keys=True, default=str).encode())
    digest.update(pd.util.hash_pandas_object(store.frame, index=False).to_numpy().tobytes())
    digest.update(np.ascontiguousarray(store.images).data)
    return digest.hexdigest()


def _json_value(value):
    return value.item() if hasattr(value, "item") else str(value)


def training_fingerprint(store: Store, spec, trial: dict | None, code: str | None) -> dict:
    """What a training is made from; a backup resumes only a training with the same one."""
    fingerprint = {"store": store_digest(store), "training": asdict(spec), "trial": trial or {}, "code": code}
    return json.loads(json.dumps(fingerprint, sort_keys=True, default=_json_value))  # as it reads back from JSON


def fingerprint_difference(recorded: dict, current: dict) -> str | None:
    """Which parts of two fingerprints differ, in words (keys named for the spec and the trial); None if none."""
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


def one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


@dataclass
class TrainingState:
    """A training at the end of its last finished epoch: what :data:`STATE` holds."""

    fingerprint: dict
    epochs_done: int  # epochs finished; the resumed training starts at this (0-based) epoch
    history: list[dict]  # one row per finished epoch: {"epoch": e, <Keras' logs>}
    variables: list[np.ndarray]  # the fitted model's variables, in its order (weights and random streams)
    optimizer: list[np.ndarray]  # the optimizer's variables, in its order (its step first)
    stopped: bool = False  # early stopping decided to end the training after the last finished epoch
    early_stopping: dict | None = None  # best, best_epoch, wait, stopped_epoch
    best_weights: list[np.ndarray] | None = None  # early stopping's best weights, if not the current ones
    best_is_current: bool = False  # the best epoch is the last finished one: its weights are the model's
    meta: dict = field(default_factory=dict)


def write_state(path: Path, state: TrainingState) -> None:
    """Write ``state`` to ``path`` as one unit: a temporary file in the same folder, flushed to disk,
    then moved onto ``path``; a kill at any instant leaves the old file or the new one, whole."""
    arrays = {f"v{i}": np.asarray(v) for i, v in enumerate(state.variables)}
    arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(state.optimizer)})
    if state.best_weights is not None and not state.best_is_current:
        arrays.update({f"b{i}": np.asarray(v) for i, v in enumerate(state.best_weights)})
    meta = {"layout": STATE_LAYOUT, "fingerprint": state.fingerprint, "epochs_done": state.epochs_done,
            "history": state.history, "stopped": state.stopped, "early_stopping": state.early_stopping,
            "best_is_current": state.best_is_current,
            "has_best_weights": state.best_weights is not None and not state.best_is_current,
            "counts": {"v": len(state.variables), "o": len(state.optimizer),
                       "b": 0 if state.best_weights is None or state.best_is_current else len(state.best_weights)}}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _read_meta(archive) -> dict:
    meta = json.loads(archive["meta"].tobytes().decode())
    if not isinstance(meta, dict) or meta.get("layout") != STATE_LAYOUT:
        raise ValueError(f"state layout {meta.get('layout') if isinstance(meta, dict) else meta!r}, "
                         f"this version writes {STATE_LAYOUT}")
    return meta


def read_state(path: Path) -> TrainingState:
    """Read a whole state back (every array): raises if the file is cut short, corrupt or of another layout."""
    with np.load(path, allow_pickle=False) as archive:
        meta = _read_meta(archive)
        counts = meta["counts"]
        arrays = {kind: [archive[f"{kind}{i}"] for i in range(int(counts[kind]))] for kind in ("v", "o", "b")}
    epochs_done, history = meta["epochs_done"], meta["history"]
    if not isinstance(epochs_done, int) or epochs_done < 1 or len(history) != epochs_done:
        raise ValueError(f"{epochs_done!r} epochs done with {len(history)} history rows")
    return TrainingState(fingerprint=meta["fingerprint"], epochs_done=epochs_done, history=history,
                         variables=arrays["v"], optimizer=arrays["o"], stopped=bool(meta["stopped"]),
                         early_stopping=meta["early_stopping"], best_weights=arrays["b"] or None,
                         best_is_current=bool(meta["best_is_current"]), meta=meta)


class UnusableBackup(Exception):
    """A backup that must not be resumed; its message says why."""


def read_backup(backup: Path, fingerprint: dict) -> TrainingState | None:
    """The state in ``backup`` if the training ``fingerprint`` describes may resume it; None if there is
    none (killed before its first epoch was backed up); raises :class:`UnusableBackup` saying why not."""
    path = backup / STATE
    if not path.exists():
        others = sorted(p.name for p in backup.iterdir() if not _is_temporary(p)) if backup.is_dir() else []
        if others:  # e.g. Keras' own BackupAndRestore files of an older version
            raise UnusableBackup(f"it holds no {STATE} but {', '.join(others)} (another layout)")
        return None
    try:
        state = read_state(path)
    except Exception as error:  # noqa: BLE001 - numpy/zipfile raise many kinds on a broken file
        raise UnusableBackup(f"the backup is unreadable: {STATE} ({one_line(error)})") from error
    difference = fingerprint_difference(state.fingerprint if isinstance(state.fingerprint, dict) else {}, fingerprint)
    if difference:
        raise UnusableBackup(f"it was made by a training with another {difference}")
    return state


def _is_temporary(path: Path) -> bool:
    """A temporary file of :func:`write_state` (``.state.npz.<random>.tmp``), left by a kill mid-write."""
    return path.name.startswith(f".{STATE}.") and path.name.endswith(".tmp")


def remove_temporaries(backup: Path) -> None:
    """Remove what kills mid-write left in ``backup``: never read, only in the way."""
    if backup.is_dir():
        for path in backup.iterdir():
            if _is_temporary(path):
                path.unlink(missing_ok=True)


def write_history(rows: list[dict], path: Path) -> None:
    """The per-epoch history as Keras' ``CSVLogger`` writes it: ``epoch`` then the logged values by name."""
    keys = sorted({key for row in rows for key in row} - {"epoch"})
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["epoch", *keys])
        for row in rows:
            writer.writerow([row["epoch"], *(repr(float(row[key])) if key in row else "" for key in keys)])


def set_aside(backup: Path, reason: str, then: str = "the training starts at epoch 1") -> Path:
    """Rename the backup to ``<backup>.discarded-<UTC time>``, its history (if readable) beside it as a CSV."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = backup.with_name(f"{backup.name}.discarded-{stamp}")
    n = 1
    while target.exists():
        target, n = backup.with_name(f"{backup.name}.discarded-{stamp}-{n}"), n + 1
    try:
        with np.load(backup / STATE, allow_pickle=False) as archive:
            history = json.loads(archive["meta"].tobytes().decode())["history"]
        write_history(history, backup / PARTIAL_HISTORY)
    except Exception:  # noqa: BLE001 - an unreadable state has no history to show; it is kept as it is
        pass
    backup.rename(target)
    print(f"training backup set aside as {target} (with its partial history), not resumed: {reason}; {then}",
          flush=True)
    return target


def training_backup(backup: Path, fingerprint: dict, last_epoch: int, stopper=None,
                    resumed: TrainingState | None = None):
    """The callback that writes :data:`STATE` at the end of every epoch but the one that ends the
    training (epoch ``last_epoch``, counted from 1, or the one early stopping ends it after: early
    stopping, ``stopper``, is listed before it and has judged the epoch); ``history`` holds every
    epoch's row, the resumed ones first.

    The training's end state is the model saved right after its last epoch, so no backup is written
    for it (a quarter to a half of a short training's time for a model of 100 MB and more): a kill
    between the end of that epoch and the save resumes from the epoch before and trains the last one
    again, to the same weights."""
    import keras

    class TrainingBackup(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.history = list(resumed.history) if resumed is not None else []

        def on_epoch_end(self, epoch, logs=None):
            self.history.append({"epoch": int(epoch), **{k: float(v) for k, v in (logs or {}).items()}})
            if epoch + 1 >= last_epoch or self.model.stop_training:
                return
            early = None
            best_weights, best_is_current = None, False
            if stopper is not None:
                early = stopper.resume_state()
                best_is_current = stopper.best_weights is not None and stopper.best_epoch == epoch
                best_weights = stopper.best_weights
            write_state(backup / STATE, TrainingState(
                fingerprint=fingerprint, epochs_done=epoch + 1, history=self.history,
                variables=[v.numpy() for v in self.model.variables],
                optimizer=[v.numpy() for v in self.model.optimizer.variables],
                stopped=bool(self.model.stop_training), early_stopping=early, best_weights=best_weights,
                best_is_current=best_is_current))

    return TrainingBackup()


def restore(model, state: TrainingState, stopper=None) -> None:
    """Put ``state`` back into the compiled ``model`` (its variables, its optimizer's) and ``stopper``;
    every shape is checked before anything is assigned (raises :class:`UnusableBackup`)."""
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    for name, variables, values in (("model variables", model.variables, state.variables),
                                    ("optimizer variables", optimizer.variables, state.optimizer)):
        shapes = [tuple(v.shape) for v in variables]
        if shapes != [tuple(np.shape(v)) for v in values]:
            raise UnusableBackup(f"its {name} do not fit this model ({len(values)} saved, {len(shapes)} here, "
                                 "or of other shapes)")
    if (stopper is None) != (state.early_stopping is None):
        raise UnusableBackup("it was made with early stopping " + ("off" if stopper is not None else "on"))
    for variable, value in zip(model.variables, state.variables):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, state.optimizer):
        variable.assign(value)
    if stopper is not None:
        best_weights = model.get_weights() if state.best_is_current else state.best_weights
        stopper.resume_from(state.early_stopping, best_weights)
