"""Resuming a killed training, only where it is the same training: Keras' ``BackupAndRestore``
folder beside the model, with a fingerprint of what made it (the store's content, the training
spec, the cell, the code digest). A backup of another training, or one that does not read back
in full, is set aside (``.train_backup.discarded-<UTC time>``, with its partial history) and the
training starts at epoch 1; :func:`leukobench.learn.train.train_cell` decides, this module checks.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xxhash

from leukobench.data.store import Store
from leukobench.io import atomic_path

BACKUP_DIR = ".train_backup"  # beside model.keras: lets a killed training resume at its last finished epoch
PARTIAL_HISTORY = ".history.partial.csv"  # the epochs logged so far, kept across a resume
FINGERPRINT = "fingerprint.json"  # inside BACKUP_DIR: what the backed-up training was made from
BACKUP_WEIGHTS = "latest.weights.h5"  # the files Keras' BackupAndRestore writes in BACKUP_DIR
BACKUP_STATE = "training_metadata.json"
FINGERPRINT_PARTS = {"store": "store content", "training": "training spec", "cell": "cell parameters",
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


def training_fingerprint(store: Store, spec, cell: dict | None, code: str | None) -> dict:
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


def set_aside(backup: Path, partial_history: Path, reason: str, then: str = "the training starts at epoch 1") -> Path:
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


def backed_up_epochs(backup: Path) -> int:
    """Epochs the backup holds (0 without one): the resumed training starts after them."""
    try:
        return int(json.loads((backup / BACKUP_STATE).read_text())["epoch"])
    except FileNotFoundError:
        return 0


def keep_history_before(path: Path, epochs: int) -> None:
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


def guarded_backup(backup: Path, partial_history: Path):
    """Keras' BackupAndRestore; a restore that fails all the same sets the backup aside before failing."""
    import keras

    class GuardedBackupAndRestore(keras.callbacks.BackupAndRestore):
        def on_train_begin(self, logs=None):
            try:
                super().on_train_begin(logs)
            except Exception as error:
                # some weights may already be overwritten: this model cannot start afresh, the next run can
                target = set_aside(backup, partial_history, f"Keras could not restore it ({_one_line(error)})",
                                    then="this run fails, the next starts at epoch 1")
                raise RuntimeError(f"the training backup could not be restored and was set aside as {target}; "
                                   "run the training again to start at epoch 1") from error

    return GuardedBackupAndRestore(str(backup))
