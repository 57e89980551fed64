"""Seconds per epoch of a Keras trial, leukobench's training path against a plain model.fit, in one run.

Two ways to train the same model on the same images, same batch size, epochs, seed and threads:
  plain fit    the studies' code: the store's train and val arrays already in memory, then
               create_model + compile + model.fit(x, y, validation_data=(x_val, y_val), shuffle=True);
  leukobench   train_from_store, the function the workflow's train rule calls: read the Parquet
               store, build and compile the model, fit with its callbacks (BackupAndRestore, so a
               killed training resumes; CSVLogger; the per-epoch log line), save the model and its record (model.json).

    python benchmarks/training_speed.py [--images 2000] [--size 32] [--epochs 6] [--model varol_cnn1]

The store holds --images synthetic cells (the project's generator, reader, splitter and store
builder; 70/15/15 subject-disjoint, no balancing) at --size px. Seconds per epoch are the median
over epochs 2..N, measured from one epoch's end to the next (so the validation pass and every
callback count), in wall-clock and in CPU seconds of the process (less sensitive to other
programs on a shared machine); epoch 1 (graph tracing, compilation) is printed apart as the
warm-up. The ratio is the mean over --rounds. The leukobench total also holds reading the store
and saving the model, which the plain fit does not do.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import leukobench.learn.train as train_module
from leukobench.models import create_model
from leukobench.data.readers import read_dataset
from leukobench.data.splits import assign_splits
from leukobench.data.store import Preparation, build_store, load_store
from leukobench.learn.devices import configure_runtime
from leukobench.learn.train import TrainingSpec, train_from_store

from common import write_synthetic_cells  # benchmarks/common.py

RATIOS = {"train": 0.7, "val": 0.15, "test": 0.15}
THREADS = 2  # the train rule's `threads:`


def epoch_clock(inner=None):
    """A Keras callback recording when training begins and when each epoch ends (wall and CPU seconds).

    ``inner``: a callback whose epoch hooks it calls first (the real epoch logger). Only epoch and
    train hooks are defined, so Keras still dispatches batch ends asynchronously when it would
    without the clock.
    """
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.began, self.ends = None, []

        def on_train_begin(self, logs=None):
            self.began = (time.perf_counter(), time.process_time())

        def on_epoch_begin(self, epoch, logs=None):
            if inner is not None:
                inner.on_epoch_begin(epoch, logs)

        def on_epoch_end(self, epoch, logs=None):
            if inner is not None:
                inner.on_epoch_end(epoch, logs)
            self.ends.append((time.perf_counter(), time.process_time()))

        def figures(self) -> tuple[float, float, float]:
            """First epoch, median of the later epochs (wall seconds), median of the later epochs (CPU seconds)."""
            ends = np.array(self.ends)
            later = np.diff(ends, axis=0)
            return ends[0, 0] - self.began[0], float(np.median(later[:, 0])), float(np.median(later[:, 1]))

    return Clock()


def make_store(scratch: Path, images: int, size: int) -> Path:
    raw = write_synthetic_cells(scratch / "raw", images, image_size=64, min_subjects=12)
    manifest, _ = read_dataset("synthetic", raw, threads=THREADS)
    splits = assign_splits(manifest, "subject", RATIOS, seed=0)
    path = scratch / f"{size}px.parquet"
    build_store(manifest, splits, Preparation(size=size, balance="none"), path, threads=THREADS)
    return path


def plain_fit(x_train, y_train, x_val, y_val, spec: TrainingSpec) -> tuple[float, float, float, float]:
    import keras

    keras.utils.set_random_seed(spec.seed)
    clock = epoch_clock()
    started = time.perf_counter()
    model = create_model(spec.model, input_shape=x_train.shape[1:], n_classes=2)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=spec.learning_rate), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train.astype("float32"), validation_data=(x_val, y_val.astype("float32")),
              epochs=spec.epochs, batch_size=spec.batch_size, shuffle=True, verbose=0, callbacks=[clock])
    return (*clock.figures(), time.perf_counter() - started)


def leukobench_fit(store: Path, spec: TrainingSpec, out: Path) -> tuple[float, float, float, float]:
    clock = None
    real_logger = train_module.epoch_logger

    def logger_with_clock(epochs):  # the real log line, timed; it stays the last callback, as the logger is
        nonlocal clock
        clock = epoch_clock(inner=real_logger(epochs))
        return clock

    train_module.epoch_logger = logger_with_clock
    try:
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the model summary and the epoch lines
            train_from_store(store, spec, out / "model.keras", out / "history.csv", threads=THREADS)
        total = time.perf_counter() - started
    finally:
        train_module.epoch_logger = real_logger
    return (*clock.figures(), total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=6, help="epoch 1 is the warm-up; the rest give the median")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--model", default="varol_cnn1")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (plain fit, leukobench), alternated")
    parser.add_argument("--store", type=Path, help="an existing store instead of synthetic cells")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is the warm-up")
    spec = TrainingSpec(model=args.model, optimizer="adam", learning_rate=1e-3, epochs=args.epochs,
                        batch_size=args.batch_size, seed=0)
    # as train_from_store does first; TensorFlow keeps the first settings for the life of the process
    configure_runtime(THREADS, spec.seed)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        store_path = args.store or make_store(scratch, args.images, args.size)
        store = load_store(store_path)  # the plain fit's arrays, in memory before its clock starts
        x_train, y_train, _ = store.part("train")
        x_val, y_val, _ = store.part("val")
        print(f"{args.model}, {len(x_train)} train + {len(x_val)} val images of {x_train.shape[1:]}, "
              f"batch {args.batch_size}, {args.epochs} epochs, {THREADS} TensorFlow threads, "
              f"{os.cpu_count()} cores")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'':<12} {'epoch 1 (warm-up)':>17}  {'s/epoch':>8}  {'cpu s/epoch':>11}  {'total':>7}")
        results = {"plain fit": [], "leukobench": []}
        for round_ in range(args.rounds):
            for label, run in (("plain fit", lambda: plain_fit(x_train, y_train, x_val, y_val, spec)),
                               ("leukobench", lambda: leukobench_fit(store_path, spec, scratch / f"trial{round_}"))):
                first, per_epoch, cpu_per_epoch, total = run()
                results[label].append((per_epoch, cpu_per_epoch))
                print(f"{label:<12} {first:15.2f} s  {per_epoch:6.2f} s  {cpu_per_epoch:9.2f} s  {total:5.1f} s",
                      flush=True)
        ours, theirs = np.mean(results["leukobench"], axis=0), np.mean(results["plain fit"], axis=0)
        print(f"leukobench vs plain fit, s/epoch: {ours[0] / theirs[0]:.2f}x (target <= 1.1x); "
              f"cpu s/epoch: {ours[1] / theirs[1]:.2f}x")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
