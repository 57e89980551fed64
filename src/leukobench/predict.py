"""Apply a trained Keras cell to image files: what ``leukobench predict`` does.

    leukobench predict results/cells/<cell>/ new_cells/ more.bmp -o predictions.csv

The cell is given as its folder (``results/cells/.../``, holding ``model.keras`` and
``model.json``) or as its ``model.keras``. Images are files and/or folders; a folder is searched
recursively and its images (suffixes of :data:`leukobench.readers.IMAGE_SUFFIXES`, any case) are
taken in sorted order. Each image is prepared exactly as the cell's store was (the preparation
saved in ``model.json``: decode with OpenCV, colour mode, resize; scaling and normalisation are
layers of the model), so an image of the test split gets the score the evaluation gave it.
Images are decoded in chunks of ``batch_size`` (the next chunk decodes on worker threads while the
model classifies the current one), so at most two chunks are in memory whatever the folder holds.

Output: one CSV row per image, in input order, with the columns ``path``, ``status`` (``ok`` or
``error``), ``predicted_class``, ``score_<class>`` for every class of the cell (probabilities that
sum to 1; for a one-unit sigmoid model ``score_<class 1>`` is its output and ``score_<class 0>``
one minus it) and ``error`` (empty when ``ok``).

What can go wrong, and what was decided:

* **An image that cannot be read** (missing, a zero-byte file, truncated, corrupt, not an image):
  the file gets a row with ``status`` ``error``, the reason in ``error`` and no scores, and a line
  on standard error; the other images are still classified. The test is the ingest's own
  (:func:`leukobench.readers.open_image`): a file is an image when OpenCV decodes its bytes, so the content
  decides, not the name. A PNG named ``.bmp`` is classified; a file with any suffix given by name
  is tried; in a folder, files without an image suffix and hidden files or folders (name starting
  with ``.``, e.g. macOS ``._*`` companions) are skipped, with a count on standard error.
* **Images the model cannot take**: none once decoded. Any size, aspect ratio, colour layout
  (gray, BGR, BGRA) or depth (8 or 16 bit) is brought to the cell's size, colour mode and uint8
  by the preparation (a grayscale cell given colour images converts them to gray, an RGB cell
  given gray images repeats the channel). An image the preparation cannot convert (e.g. a
  floating-point TIFF) is reported like an unreadable one.
* **No size override.** A saved model has a fixed input shape, set by the store it was trained
  on; feeding another size would fail or silently change the model, so the size always comes from
  ``model.json`` and there is no option to change it (and no "smaller than the model's minimum"
  case to handle).
* **A wrong model path** (:class:`ModelError`, exit code 2, the message names the path and what to
  give): the path does not exist; a folder without ``model.keras`` (the message says when it is a
  classical or hybrid cell, whose ``classifier.joblib`` this command does not apply, or when
  cells lie below it); a file that is not a ``.keras`` file; ``model.keras`` without
  ``model.json`` beside it; ``model.json`` that is not JSON or lacks ``preparation`` or
  ``class_names``, or whose preparation is invalid; ``model.keras`` that Keras cannot load.
* **model.keras and model.json that disagree** (e.g. files copied from two cells): the model's
  input shape must be ``(size, size, channels)`` of the preparation and its output must have one
  unit for two classes (sigmoid) or one unit per class; otherwise :class:`ModelError` names both
  files and both shapes, before any image is read.

Exit codes of :func:`run` (and the command): 0 when at least one image was classified (rows with
errors may be among them); 2 for a wrong model path or model files, no image found in the inputs,
a bad option or an output file that cannot be written; 3 when images were found but none could be
classified (every row has ``status`` ``error``). An unexpected failure ends with a traceback (1).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
import pandas as pd

from leukobench.io import atomic_path
from leukobench.metrics import predict_labels
from leukobench.readers import IMAGE_SUFFIXES, open_image
from leukobench.store import Preparation, to_model_input
from leukobench.train import TrainedModel, bundle_path, class_scores

DEFAULT_BATCH_SIZE = 64
EXIT_OK = 0
EXIT_USAGE = 2  # wrong model path or files, no images, bad option, output not writable
EXIT_NONE_CLASSIFIED = 3  # images were found but none could be classified
MODEL_FILE = "model.keras"
WHAT_TO_GIVE = ("give a trained cell's folder (results/cells/.../, holding model.keras and model.json) "
                "or its model.keras")


class ModelError(ValueError):
    """The model path does not lead to a usable trained cell."""


class NoImagesError(ValueError):
    """The inputs hold no image file."""


# --- the model ---------------------------------------------------------------------------------

def model_file(path: str | os.PathLike) -> Path:
    """``model.keras`` of a cell given as its folder or as the file itself; :class:`ModelError` otherwise."""
    path = Path(path)
    if path.is_dir():
        candidate = path / MODEL_FILE
        if candidate.is_file():
            return candidate
        hint = ""
        if (path / "classifier.joblib").is_file():
            hint = " (it is a classical or hybrid cell: its classifier.joblib is not applied by leukobench predict)"
        else:
            below = next(path.rglob(MODEL_FILE), None)
            if below is not None:
                hint = f" (cells lie below it, e.g. {below.parent})"
        raise ModelError(f"{path}: folder holds no {MODEL_FILE}{hint}; {WHAT_TO_GIVE}")
    if not path.exists():
        raise ModelError(f"{path}: no such model file or cell folder; {WHAT_TO_GIVE}")
    if path.suffix != ".keras":
        raise ModelError(f"{path}: not a .keras model file; {WHAT_TO_GIVE}")
    return path


def _read_bundle(model_path: Path) -> dict:
    json_path = bundle_path(model_path)
    if not json_path.is_file():
        raise ModelError(f"{json_path}: missing; {model_path} needs the model.json that training writes beside it "
                         f"(class names and preparation); {WHAT_TO_GIVE}")
    try:
        bundle = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{json_path}: not a readable model.json ({error}); it is written by training beside "
                         f"{model_path.name}, retrain the cell or restore the file") from None
    missing = [key for key in ("preparation", "class_names") if not isinstance(bundle, dict) or key not in bundle]
    if missing:
        raise ModelError(f"{json_path}: lacks {', '.join(missing)}; it is not a model.json written by training")
    try:
        Preparation(**bundle["preparation"])
    except (TypeError, ValueError) as error:
        raise ModelError(f"{json_path}: its preparation is invalid ({error})") from None
    names = bundle["class_names"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise ModelError(f"{json_path}: class_names must list at least two class names, got {names!r}")
    return bundle


def check_model(model: TrainedModel, model_path: Path) -> None:
    """Raise :class:`ModelError` when model.keras and model.json disagree on inputs or classes."""
    keras_model, prep = model.model, model.preparation
    json_path = bundle_path(model_path)
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise ModelError(f"{model_path}: a model with {len(keras_model.inputs)} inputs and "
                         f"{len(keras_model.outputs)} outputs is not a leukobench cell (one image in, one score out)")
    given = tuple(keras_model.inputs[0].shape[1:])
    wanted = (prep.size, prep.size, prep.channels)
    if len(given) != 3 or any(g is not None and g != w for g, w in zip(given, wanted)):
        raise ModelError(
            f"{model_path} takes images of shape {given} but {json_path} prepares them as {wanted} "
            f"(size {prep.size}, colour {prep.color}); the two files come from different cells: "
            f"{WHAT_TO_GIVE} as training wrote them")
    units, classes = keras_model.outputs[0].shape[-1], len(model.class_names)
    if not (units == classes or (units == 1 and classes == 2)):
        raise ModelError(
            f"{model_path} has {units} output unit(s) but {json_path} names {classes} classes "
            f"({', '.join(model.class_names)}); the two files come from different cells")


def load_cell(path: str | os.PathLike) -> TrainedModel:
    """Load a trained cell given as its folder or its ``model.keras``, checked; :class:`ModelError` otherwise."""
    model_path = model_file(path)
    bundle = _read_bundle(model_path)
    import keras

    try:
        keras_model = keras.models.load_model(model_path, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds for a file it cannot read
        raise ModelError(f"{model_path}: Keras cannot load it ({type(error).__name__}: {error}); "
                         f"{WHAT_TO_GIVE}") from None
    model = TrainedModel(keras_model, bundle)
    check_model(model, model_path)
    return model


# --- the images --------------------------------------------------------------------------------

def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def find_images(inputs: Iterable[str | os.PathLike], notes: list[str] | None = None) -> list[Path]:
    """The files to classify: files as given (even missing ones: they get an error row), folders
    expanded recursively to their image files, sorted. ``notes`` collects what was skipped.
    """
    files: list[Path] = []
    for given in map(Path, inputs):
        if not given.is_dir():
            files.append(given)
            continue
        found = sorted(p for p in given.rglob("*") if p.is_file() and not _hidden(p, given))
        images = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES]
        files.extend(images)
        if notes is not None and len(found) > len(images):
            notes.append(f"{given}: {len(found) - len(images)} file(s) without an image suffix skipped "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))} are read)")
        if notes is not None and not images:
            notes.append(f"{given}: no images in this folder")
    if not files:
        shown = ", ".join(map(str, inputs))
        raise NoImagesError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {shown}")
    return files


def prepare_image(path: str | os.PathLike, prep: Preparation) -> np.ndarray:
    """One file as the model's input (what :func:`leukobench.store.load_image` does), or
    ``ValueError`` with a reason fit for the ``error`` column.
    """
    image, problem, _ = open_image(path)
    if image is None:
        raise ValueError(problem)
    try:
        return to_model_input(image, prep)
    except (cv2.error, ValueError, TypeError) as error:
        raise ValueError(f"decoded but cannot be prepared ({image.dtype}, shape {image.shape}): {error}") from None


def _prepare_or_reason(path: Path, prep: Preparation) -> tuple[np.ndarray | None, str]:
    try:
        return prepare_image(path, prep), ""
    except ValueError as error:
        return None, str(error)


def prepared_chunks(files: list[Path], prep: Preparation, batch_size: int,
                    threads: int | None = None) -> Iterator[list[tuple[Path, np.ndarray | None, str]]]:
    """Chunks of ``(path, image or None, reason)``; the next chunk decodes while the caller works on this one."""
    threads = max(1, threads or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: deque = deque()
        for start in range(0, len(files), batch_size):
            chunk = files[start:start + batch_size]
            pending.append((chunk, [pool.submit(_prepare_or_reason, p, prep) for p in chunk]))
            if len(pending) > 1:
                chunk, futures = pending.popleft()
                yield [(p, *f.result()) for p, f in zip(chunk, futures)]
        while pending:
            chunk, futures = pending.popleft()
            yield [(p, *f.result()) for p, f in zip(chunk, futures)]


# --- classification ----------------------------------------------------------------------------

def columns(model: TrainedModel) -> list[str]:
    return ["path", "status", "predicted_class", *(f"score_{name}" for name in model.class_names), "error"]


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """``(n, k)`` probabilities from a sigmoid's ``(n,)`` or a softmax's ``(n, k)`` output."""
    return np.column_stack([1 - scores, scores]) if scores.ndim == 1 else scores


def predict_rows(model: TrainedModel, files: list[Path], batch_size: int = DEFAULT_BATCH_SIZE,
                 threads: int | None = None) -> Iterator[dict]:
    """One row per file, in order, as each chunk of ``batch_size`` images is classified."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    names = np.asarray(model.class_names)
    for chunk in prepared_chunks(files, model.preparation, batch_size, threads):
        good = [image for _, image, _ in chunk if image is not None]
        if good:
            scores = class_scores(np.asarray(model.model.predict_on_batch(np.stack(good))))
            labels, probabilities = names[predict_labels(scores)], class_probabilities(scores)
        k = 0
        for path, image, reason in chunk:
            row = {"path": str(path)}
            if image is None:
                row |= {"status": "error", "error": reason}
            else:
                row |= {"status": "ok", "predicted_class": str(labels[k]), "error": ""}
                row |= {f"score_{name}": float(p) for name, p in zip(model.class_names, probabilities[k])}
                k += 1
            yield row


def predict_table(model: TrainedModel | str | os.PathLike, inputs: Iterable[str | os.PathLike],
                  batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None) -> pd.DataFrame:
    """The predictions as a table (the CSV's rows and columns); for notebooks and tests."""
    if not isinstance(model, TrainedModel):
        model = load_cell(model)
    rows = list(predict_rows(model, find_images(inputs), batch_size, threads))
    return pd.DataFrame(rows, columns=columns(model))


@dataclass
class Summary:
    """What a prediction run did."""

    classified: int = 0
    failed: int = 0

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.classified else EXIT_NONE_CLASSIFIED


def _cell(value) -> str:
    return repr(value) if isinstance(value, float) else ("" if value is None else str(value))


def write_predictions(model: TrainedModel, files: list[Path], out: TextIO, batch_size: int = DEFAULT_BATCH_SIZE,
                      threads: int | None = None, errors: TextIO | None = None) -> Summary:
    """Write the CSV to ``out`` row by row; a line on ``errors`` for each file that failed.

    Scores are written with ``repr``: read back they are the model's float32 values exactly.
    """
    header = columns(model)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    summary = Summary()
    for row in predict_rows(model, files, batch_size, threads):
        writer.writerow([_cell(row.get(name)) for name in header])
        if row["status"] == "ok":
            summary.classified += 1
        else:
            summary.failed += 1
            if errors is not None:
                print(f"leukobench predict: {row['path']}: {row['error']}", file=errors, flush=True)
    return summary


@contextmanager
def _output(path: str | os.PathLike | None, stdout: TextIO):
    """The CSV's stream: a file that appears only when complete, or standard output."""
    if path is None:
        with nullcontext(stdout) as stream:
            yield stream
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as stream:
        yield stream


def run(model_path: str | os.PathLike, inputs: Iterable[str | os.PathLike], output: str | os.PathLike | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None,
        stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """The whole command: load and check the cell, classify, write the CSV; returns the exit code."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    inputs = list(inputs)

    def say(message: str, code: int = EXIT_USAGE) -> int:
        print(f"leukobench predict: {message}", file=stderr, flush=True)
        return code

    if batch_size < 1:
        return say(f"--batch-size must be at least 1, got {batch_size}")
    try:
        model_file(model_path)  # a wrong path is named before TensorFlow starts
        notes: list[str] = []
        files = find_images(inputs, notes)
        for note in notes:
            say(note)
        model = load_cell(model_path)
    except (ModelError, NoImagesError) as error:
        return say(str(error))
    try:
        with _output(output, stdout) as stream:
            summary = write_predictions(model, files, stream, batch_size, threads, errors=stderr)
    except OSError as error:
        return say(f"{output}: cannot write the predictions ({error.strerror or error})")
    where = f" ({output})" if output else ""
    if not summary.classified:
        return say(f"none of the {summary.failed} image(s) could be classified{where}", summary.exit_code)
    if summary.failed:
        say(f"{summary.classified} image(s) classified, {summary.failed} could not be read "
             f"(rows with status 'error'{where})")
    return summary.exit_code
