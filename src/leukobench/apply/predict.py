"""Apply a trained Keras trial to image files: what ``leukobench predict`` does.

    leukobench predict results/trials/<trial>/ new_cells/ more.bmp -o predictions.csv

This module is the command's orchestration (:func:`run`: the order of the checks, the messages and
the exit codes), the loading and checking of the trained trial, and the classification loop. The
rest of the application is cut by job: the inputs it walks (:mod:`leukobench.apply.inputs`), the
outputs and the one guard they pass (:mod:`leukobench.apply.outputs`), ``--by-subject``
(:mod:`leukobench.apply.subjects`). The scores come from the library call below the application,
:class:`leukobench.learn.scored_model.ScoredModel`: a trained, evaluated trial applied to arrays.

The trial is given as its folder (``results/trials/.../``, holding ``model.keras`` and
``model.json``) or as its ``model.keras``. Images are files and/or folders; a folder is searched
recursively and its images (suffixes of :data:`leukobench.data.images.IMAGE_SUFFIXES`, any case) are
taken in sorted order. Each image is prepared exactly as the trial's store was (the preparation
saved in ``model.json``: decode with OpenCV, colour mode, resize; scaling and normalisation are
layers of the model), so an image of the test split gets the score the evaluation gave it.
Images are decoded in chunks of ``batch_size`` (the next chunk decodes on worker threads while the
model classifies the current one), so at most two chunks are in memory whatever the folder holds.

Output: one CSV row per image, in input order, with the columns ``path``, ``status`` (``ok`` or
``error``), ``predicted_class``, ``score_<class>`` for every class of the trial (probabilities that
sum to 1; for a one-unit sigmoid model ``score_<class 1>`` is its output and ``score_<class 0>``
one minus it) and ``error`` (empty when ``ok``).

What can go wrong, and what was decided:

* **An image that cannot be read** (missing, a zero-byte file, truncated, corrupt, not an image):
  the file gets a row with ``status`` ``error``, the reason in ``error`` and no scores, and a line
  on standard error; the other images are still classified. The test is the ingest's own
  (:func:`leukobench.data.images.open_image`): a file is an image when OpenCV decodes its bytes, so the content
  decides, not the name. A PNG named ``.bmp`` is classified; a file with any suffix given by name
  is tried; in a folder, files without an image suffix and hidden files or folders (name starting
  with ``.``, e.g. macOS ``._*`` companions) are skipped, with a count on standard error (below).
* **Images the model cannot take**: none once decoded. Any size, aspect ratio, colour layout
  (gray, BGR, BGRA) or depth (8 or 16 bit) is brought to the trial's size, colour mode and uint8
  by the preparation (a grayscale trial given colour images converts them to gray, an RGB trial
  given gray images repeats the channel). An image the one decoding rule refuses
  (:func:`leukobench.data.images.to_8bit`: e.g. a float TIFF with values outside [0, 1]) is
  reported like an unreadable one, with the store's own reason (:func:`leukobench.data.store.prepared_image`).
* **No size override.** A saved model has a fixed input shape, set by the store it was trained
  on; feeding another size would fail or silently change the model, so the size always comes from
  ``model.json`` and there is no option to change it (and no "smaller than the model's minimum"
  case to handle).
* **How the trial's scores are made** is its evaluation's record, ``scoring.json`` beside the model
  (:class:`leukobench.scoring.Scoring`, read by the one reader :func:`leukobench.scoring.read_scoring`,
  :func:`trial_scoring`): the views averaged (``evaluation.tta``; ``--tta`` overrides) and the fitted
  temperature (``evaluation.calibration: temperature``; ``--uncalibrated`` leaves it out; it
  applies to the plain scores only). The record is refused (exit code 2, naming the file and what
  differs, before TensorFlow starts) when it was made from another ``model.keras`` or predictions
  than the folder holds (a retrain whose evaluation did not run again), holds a value the
  evaluation does not write (a temperature outside what the fit can give, a ``tta`` that is not a
  mode), is a folder or unreadable, or is missing beside the ``metrics.json`` of an evaluation.
  ``--uncalibrated`` then gives the model's own scores (one view unless ``--tta``) and says why on
  standard error. A calibration its evaluation could not fit (one class, too few images, the
  optimum on a bound) is not applied: the model's own scores, said on standard error. A trial never
  evaluated (no ``scoring.json``, no ``metrics.json``) gives its model's own scores, said likewise.
* **A wrong model path** (:class:`ModelError`, exit code 2, the message names the path and what to
  give): the path does not exist; a folder without ``model.keras`` (the message says when it is a
  classical or hybrid trial, whose ``classifier.joblib`` this command does not apply, or when
  trials lie below it); a file that is not a ``.keras`` file; ``model.keras`` without
  ``model.json`` beside it; ``model.json`` that is not JSON or lacks ``preparation`` or
  ``class_names``, or whose preparation is invalid; ``model.keras`` that Keras cannot load.
* **model.keras and model.json that disagree** (e.g. files copied from two trials): the model's
  input shape must be ``(size, size, channels)`` of the preparation and its output must have one
  unit for two classes (sigmoid) or one unit per class; otherwise :class:`ModelError` names both
  files and both shapes, before any image is read.
* **Only regular files are opened as images.** Each file is checked with ``os.stat`` (following
  symbolic links) before it is opened: a FIFO (named pipe), socket or device file, a folder where a
  file was expected, a dangling symbolic link or a symbolic link loop gets an ``error`` row with
  that reason and is never opened (opening a FIFO would wait forever for a writer). The check and
  the open are two steps (the shared reader :func:`leukobench.data.images.open_image` opens by path),
  so a file swapped for a FIFO in between could still block; nothing in a normal run does that.
* **What a folder search skips** is counted by kind in one note on standard error, e.g.
  ``new_cells: 4 entries skipped: 1 without an image suffix, 1 dangling link, 1 symbolic link loop,
  1 not a regular file (FIFO)``: files without an image suffix, hidden files, dangling links,
  symbolic link loops, FIFOs, sockets and devices, links to folders (not searched: the search does
  not follow them, so a link loop cannot make it run forever) and folders named like images
  (``x.bmp/``, whose contents are searched like any folder's).
* **File names that are not UTF-8** (bytes such as ``\\xff`` in a name, common on lab file
  servers) are classified like any other. The CSV is written as UTF-8 with the
  ``surrogateescape`` error handler, to a file or to standard output, so the ``path`` column holds
  the name's original bytes exactly. To get paths that open the files, read the CSV back with
  ``errors="surrogateescape"`` in ``open``, or in pandas with ``encoding_errors="surrogateescape"``
  and ``dtype={"path": object}`` (pandas' string dtype cannot hold such names).
  Messages on standard error show such bytes as ``\\xff`` escapes and never fail on them.

``--by-subject PATTERN``: the subject of each image is the ``subject`` group (or the one group) of
the pattern searched in its file name. The pattern is tried on every name before the model is
loaded, in a separate Python process, each name within
:data:`~leukobench.apply.subjects.PATTERN_SECONDS` (1 s; a sane pattern takes microseconds on a file name): a pattern that takes longer on any name (nested repeats such
as ``(a+)+`` or ``(\\w+_?)+$`` backtrack for years) is refused with exit code 2, naming the pattern and
the name. An image whose name the pattern matches with an empty (or absent) subject group gets an
``error`` row (never a subject ``""`` pooling every such image); a name the pattern does not match
is classified and left out of the subjects' CSV, with a note.

The outputs (``-o``, ``--by-subject``'s CSV, ``--saliency``'s overlays): every file the command
writes passes one check, :class:`~leukobench.apply.outputs.OutputGuard`, before the model is loaded or an image read:

* **Never one of the command's own files.** Each output is compared with every input image (given
  by name or found in a folder) and with the trial's ``model.keras``, ``model.json`` and
  ``scoring.json`` by identity (device and inode, so a symbolic link, a hard link, a relative path
  or ``..`` cannot hide it; an output that does not exist yet is compared by resolved path with
  the inputs that do not exist either), and with the run's other outputs. A match is refused with
  exit code 2, naming the option, the output and the file it is; nothing is written. An output
  that is a folder, or whose path cannot be looked up (a symbolic link loop, a file used as a
  folder), is refused the same way.
* **Never inside a folder being read.** A file (or the ``--saliency`` folder) that is, or lies
  below, a folder given as input (resolved, so a link cannot hide it) is refused: an overlay
  ``000001_x.png`` there would replace an image or be classified by the next run.
* **Names derived from ``-o`` only when ``-o`` is a regular file** (or does not exist yet): the
  subjects' CSV is ``<output stem>_subjects.csv`` beside it; with ``-o`` a device, FIFO or socket
  (``-o /dev/null``), or without ``-o``, ``--by-subject`` needs ``--subjects-output FILE``.
* **A failed write names the file that failed** (the CSV, the subjects' CSV, or the overlay),
  never another output; the subjects' CSV is written while the predictions' CSV is still aside,
  so when either fails neither appears. The subjects' CSV keeps names that are not UTF-8 byte for
  byte, as the images' CSV does.

How ``-o`` is written:

* **A regular file, or a path that does not exist yet**, is written aside and renamed onto the
  path when complete (:func:`leukobench.io.atomic_path`): a failed or killed run (Ctrl-C,
  ``SIGTERM``) leaves the previous file as it was and no temporary file behind.
* **A symbolic link** is written through, never replaced: when it leads to a regular file (or
  nowhere yet) the CSV is written aside and renamed onto the link's resolved target, so the link
  stays a link and its target changes only when complete.
* **A device, FIFO or socket** (``/dev/null``, a named pipe, ``>(...)`` of a shell) is opened and
  written as it is, as any Unix tool does: it is never replaced by a regular file.
* **The file standard output goes to** (``/dev/stdout``, ``/dev/fd/1``, or the file that standard
  output is redirected to, found by device and inode) is written through standard output itself,
  as without ``-o``: a terminal or pipe gets the CSV, a file opened with ``>>`` is appended to.
* **Standard output closed early** (``leukobench predict ... | head -2``): the command ends
  quietly, as ``cat`` does, with exit code 141 (128 + ``SIGPIPE``, what a shell reports for
  ``cat`` there) and no message; the rows not written are dropped. The same holds for a FIFO or
  ``/dev/stdout`` given as the output.

Exit codes of :func:`run` (and the command): 0 when at least one image was classified (rows with
errors may be among them); 2 for a wrong model path or model files, no image found in the inputs,
a bad option, a ``--by-subject`` pattern refused, an output that is one of the inputs or model
files or lies inside a folder given as input, or an output that cannot be written; 3 when images
were found but none could be classified (every row has ``status`` ``error``); 141 when the reader of the output went away. Interrupted by Ctrl-C the command exits
with 130, by ``SIGTERM`` with 143. An unexpected failure ends with a traceback (1).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
import pandas as pd

from leukobench.apply.inputs import NoImagesError, find_images, prepared_chunks
from leukobench.apply.outputs import (OutputError, OutputGuard, csv_field, discard_rest, is_stream_file, open_csv,
                                      output_stream, saliency_file, subjects_output, write_csv, writing)
from leukobench.apply.subjects import EMPTY_SUBJECT, SubjectPatternError, find_subjects, subject_pattern, subject_table
from leukobench.data.store import Preparation
from leukobench.io import atomic_path, is_text, printable
from leukobench.learn.devices import share_gpus
from leukobench.learn.saved_model import TrainedModel, model_record_path
from leukobench.learn.scored_model import ScoredModel
from leukobench.metrics import check_aggregation
from leukobench.predictions import predict_labels
from leukobench.score_variants import choices
from leukobench.scoring import SCORING_FILE, Scoring, ScoringError, read_scoring

DEFAULT_BATCH_SIZE = 64
EXIT_OK = 0
EXIT_USAGE = 2  # wrong model path or files, no images, bad option, output not writable
EXIT_NONE_CLASSIFIED = 3  # images were found but none could be classified
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141: the output's reader went away (what a shell reports for cat)
MODEL_FILE = "model.keras"
WHAT_TO_GIVE = ("give a trained trial's folder (results/trials/.../, holding model.keras and model.json) "
                "or its model.keras")


class ModelError(ValueError):
    """The model path does not lead to a usable trained trial."""


# --- the model ---------------------------------------------------------------------------------

def model_file(path: str | os.PathLike) -> Path:
    """``model.keras`` of a trial given as its folder or as the file itself; :class:`ModelError` otherwise."""
    path = Path(path)
    if path.is_dir():
        candidate = path / MODEL_FILE
        if candidate.is_file():
            return candidate
        hint = ""
        if (path / "classifier.joblib").is_file():
            hint = " (it is a classical or hybrid trial: its classifier.joblib is not applied by leukobench predict)"
        else:
            below = next(path.rglob(MODEL_FILE), None)
            if below is not None:
                hint = f" (trials lie below it, e.g. {below.parent})"
        raise ModelError(f"{path}: folder holds no {MODEL_FILE}{hint}; {WHAT_TO_GIVE}")
    if not path.exists():
        raise ModelError(f"{path}: no such model file or trial folder; {WHAT_TO_GIVE}")
    if path.suffix != ".keras":
        raise ModelError(f"{path}: not a .keras model file; {WHAT_TO_GIVE}")
    return path


def _read_model_record(model_path: Path) -> dict:
    json_path = model_record_path(model_path)
    if not json_path.is_file():
        raise ModelError(f"{json_path}: missing; {model_path} needs the model.json that training writes beside it "
                         f"(class names and preparation); {WHAT_TO_GIVE}")
    try:
        record = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"{json_path}: not a readable model.json ({error}); it is written by training beside "
                         f"{model_path.name}, retrain the trial or restore the file") from None
    missing = [key for key in ("preparation", "class_names") if not isinstance(record, dict) or key not in record]
    if missing:
        raise ModelError(f"{json_path}: lacks {', '.join(missing)}; it is not a model.json written by training")
    try:
        Preparation(**record["preparation"])
    except (TypeError, ValueError) as error:
        raise ModelError(f"{json_path}: its preparation is invalid ({error})") from None
    names = record["class_names"]
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(n, str) for n in names):
        raise ModelError(f"{json_path}: class_names must list at least two class names, got {names!r}")
    return record


def check_model(model: TrainedModel, model_path: Path) -> None:
    """Raise :class:`ModelError` when model.keras and model.json disagree on inputs or classes."""
    keras_model, prep = model.model, model.preparation
    json_path = model_record_path(model_path)
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise ModelError(f"{model_path}: a model with {len(keras_model.inputs)} inputs and "
                         f"{len(keras_model.outputs)} outputs is not a leukobench trial (one image in, one score out)")
    given = tuple(keras_model.inputs[0].shape[1:])
    wanted = (prep.size, prep.size, prep.channels)
    if len(given) != 3 or any(g is not None and g != w for g, w in zip(given, wanted)):
        raise ModelError(
            f"{model_path} takes images of shape {given} but {json_path} prepares them as {wanted} "
            f"(size {prep.size}, colour {prep.color}); the two files come from different trials: "
            f"{WHAT_TO_GIVE} as training wrote them")
    units, classes = keras_model.outputs[0].shape[-1], len(model.class_names)
    if not (units == classes or (units == 1 and classes == 2)):
        raise ModelError(
            f"{model_path} has {units} output unit(s) but {json_path} names {classes} classes "
            f"({', '.join(model.class_names)}); the two files come from different trials")


def trial_scoring(path: str | os.PathLike, calibrated: bool = True, tta: str | None = None,
                 notes: list[str] | None = None) -> Scoring:
    """How to apply the trial given as its folder or its ``model.keras``: its evaluation's record,
    ``scoring.json`` beside the model (:func:`leukobench.scoring.read_scoring`, checked against the
    model file), with ``tta`` (``--tta``) in place of its test-time augmentation and, without
    ``calibrated`` (``--uncalibrated``), no temperature. What is applied, and why not more, is said
    in ``notes`` (for standard error).

    :class:`ModelError` when the record is refused (a folder, unreadable, values the evaluation
    does not write, made from another model file or predictions) or missing although the trial was
    evaluated: applying the trial as its evaluation did is not possible then. With ``--uncalibrated``
    such a record is not needed: the model's own scores are given (one view unless ``--tta``), and
    a note says why. A trial that was never evaluated has no record: its model's own scores."""
    model_path = model_file(path)
    notes = [] if notes is None else notes
    try:
        scoring = read_scoring(model_path.parent, model_path)
    except ScoringError as error:
        if calibrated:
            raise ModelError(f"{error}; or give --uncalibrated for the model's own scores") from None
        notes.append(f"{error}: not applied (--uncalibrated): the model's own scores")
        scoring = Scoring()
    if scoring is None:
        notes.append(f"{model_path.parent / SCORING_FILE}: none, the trial has not been evaluated: the model's own "
                     "scores")
        scoring = Scoring()
    if scoring.not_fitted and calibrated:
        notes.append(f"the trial's calibration was not fitted ({scoring.not_fitted}; {SCORING_FILE}): the model's "
                     "own scores")
    applied = replace(scoring, tta=scoring.tta if tta is None else tta,
                      temperature=scoring.temperature if calibrated else None)
    if applied.tta != "none":
        notes.append(f"scores averaged over each image's '{applied.tta}' views (test-time augmentation: "
                     f"{'--tta' if tta is not None else 'the trial evaluation.tta, in ' + SCORING_FILE}; --tta none "
                     "for one view)")
    temperature = applied.temperature_for(applied.tta)
    if temperature is not None:
        notes.append(f"scores temperature-scaled by the trial's T = {temperature:.3f} ({SCORING_FILE}; "
                     "--uncalibrated gives the model's own)")
    elif applied.temperature is not None:
        notes.append(f"the trial's temperature (T = {applied.temperature:.3f}) was fitted on its plain scores and is "
                     "not applied to test-time-augmented ones")
    return applied


def load_trial(path: str | os.PathLike) -> TrainedModel:
    """Load a trained trial given as its folder or its ``model.keras``, checked; :class:`ModelError`
    otherwise. How its evaluation scored it is :func:`trial_scoring`'s."""
    model_path = model_file(path)
    record = _read_model_record(model_path)
    share_gpus()  # beside a running workflow, take only the GPU memory this model needs
    import keras

    try:
        keras_model = keras.models.load_model(model_path, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds for a file it cannot read
        raise ModelError(f"{model_path}: Keras cannot load it ({type(error).__name__}: {error}); "
                         f"{WHAT_TO_GIVE}") from None
    model = TrainedModel(keras_model, record)
    check_model(model, model_path)
    return model


# --- classification ----------------------------------------------------------------------------

def columns(model: TrainedModel) -> list[str]:
    return ["path", "status", "predicted_class", *(f"score_{name}" for name in model.class_names), "error"]


def class_probabilities(scores: np.ndarray) -> np.ndarray:
    """``(n, k)`` probabilities from a sigmoid's ``(n,)`` or a softmax's ``(n, k)`` output."""
    return np.column_stack([1 - scores, scores]) if scores.ndim == 1 else scores


def write_saliency(model: TrainedModel, images: np.ndarray, paths: list[Path]) -> None:
    """Grad-CAM of the predicted class of each image (:mod:`leukobench.learn.saliency`) over the
    image as the model saw it, one PNG each at ``paths`` (written whole or not at all)."""
    from leukobench.learn.saliency import grad_cam
    from leukobench.learn.saliency_sheet import overlay

    for image, heat, path in zip(images, grad_cam(model.model, images), paths):
        encoded, png = cv2.imencode(".png", cv2.cvtColor(overlay(image, heat), cv2.COLOR_RGB2BGR))
        with writing(path, "the Grad-CAM overlay (--saliency)"), atomic_path(path) as tmp:
            tmp.write_bytes(png.tobytes())


def predict_rows(model: TrainedModel, files: list[Path], batch_size: int = DEFAULT_BATCH_SIZE,
                 threads: int | None = None, saliency_dir: Path | None = None,
                 scoring: Scoring | None = None) -> Iterator[dict]:
    """One row per file, in order, as each chunk of ``batch_size`` images is classified, its scores
    made as ``scoring`` says (:func:`trial_scoring`: views averaged, temperature; the model's own
    scores without one); with ``saliency_dir``, each classified image's Grad-CAM overlay written
    there (:func:`~leukobench.apply.outputs.saliency_file`)."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    names = np.asarray(model.class_names)
    scored = ScoredModel(model, scoring or Scoring())
    position = 0
    for chunk in prepared_chunks(files, model.preparation, batch_size, threads):
        good = [image for _, image, _ in chunk if image is not None]
        if good:
            scores = scored.scores(np.stack(good))
            labels, probabilities = names[predict_labels(scores)], class_probabilities(scores)
            if saliency_dir is not None:
                write_saliency(model, np.stack(good), [saliency_file(saliency_dir, position + i, path)
                                                       for i, (path, image, _) in enumerate(chunk) if image is not None])
        position += len(chunk)
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
                  batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None,
                  scoring: Scoring | None = None) -> pd.DataFrame:
    """The predictions as a table (the CSV's rows and columns); for notebooks and tests. A trial
    given by path is applied as its evaluation scored it (:func:`trial_scoring`), a loaded model as
    ``scoring`` says (its own scores without one).

    When a file name is not UTF-8 the ``path`` column has dtype ``object`` (its ``str`` holds the
    name's surrogate escapes, as ``os`` gives them), which pandas' string dtype cannot hold.
    """
    if not isinstance(model, TrainedModel):
        scoring = scoring or trial_scoring(model)
        model = load_trial(model)
    rows = list(predict_rows(model, find_images(inputs), batch_size, threads, scoring=scoring))
    paths = [row.pop("path") for row in rows]
    table = pd.DataFrame(rows, columns=columns(model)[1:])
    table.insert(0, "path", pd.Series(paths, dtype=None if all(map(is_text, paths)) else object))
    return table


@dataclass
class Summary:
    """What a prediction run did."""

    classified: int = 0
    failed: int = 0  # error rows: images that could not be read, and unnamed ones
    unnamed: int = 0  # images whose name gives an empty subject (--by-subject)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.classified else EXIT_NONE_CLASSIFIED


def write_predictions(model: TrainedModel, files: list[Path], out: TextIO, batch_size: int = DEFAULT_BATCH_SIZE,
                      threads: int | None = None, errors: TextIO | None = None,
                      classified: list[dict] | None = None, saliency_dir: Path | None = None,
                      subjects: list[str | None] | None = None, scoring: Scoring | None = None) -> Summary:
    """Write the CSV to ``out`` row by row; a line on ``errors`` for each file that failed; the rows
    of the images classified appended to ``classified`` when given (for :func:`subject_table`).

    ``subjects`` (from :func:`find_subjects`, one per file) adds each classified row's ``subject``
    (None where the name matches no subject); an image whose name gives an empty subject gets an
    ``error`` row instead (no subject to pool it under).
    Scores are written with ``repr``: read back they are the model's float32 values exactly.
    """
    header = columns(model)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    summary = Summary()
    for position, row in enumerate(predict_rows(model, files, batch_size, threads, saliency_dir, scoring)):
        if subjects is not None and row["status"] == "ok":
            if subjects[position] == "":
                row = {"path": row["path"], "status": "error", "error": EMPTY_SUBJECT}
                summary.unnamed += 1
            else:
                row["subject"] = subjects[position]
        writer.writerow([csv_field(row.get(name)) for name in header])
        if row["status"] == "ok":
            summary.classified += 1
            if classified is not None:
                classified.append(row)
        else:
            summary.failed += 1
            if errors is not None:
                tell(errors, f"leukobench predict: {row['path']}: {row['error']}")
    return summary


def tell(stream: TextIO, message: str) -> None:
    """A line on ``stream`` (standard error) that never fails: odd bytes escaped, a closed stream ignored."""
    message = printable(message)
    try:
        try:
            print(message, file=stream, flush=True)
        except UnicodeEncodeError:
            print(message.encode("ascii", "backslashreplace").decode("ascii"), file=stream, flush=True)
    except (OSError, ValueError):  # standard error closed (e.g. 2>&1 | head): the messages have no reader
        pass


def run(model_path: str | os.PathLike, inputs: Iterable[str | os.PathLike], output: str | os.PathLike | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE, threads: int | None = None,
        stdout: TextIO | None = None, stderr: TextIO | None = None, calibrated: bool = True,
        by_subject: str | None = None, aggregation: str = "mean", saliency: str | os.PathLike | None = None,
        tta: str | None = None, subjects_file: str | os.PathLike | None = None) -> int:
    """The whole command: load and check the trial, classify, write the CSV (and with ``by_subject``,
    a pattern finding the subject in a file name, the subjects' CSV: ``subjects_file``, or beside
    ``output``, :func:`subjects_output`); returns the exit code. Every file it writes passes the
    one :class:`~leukobench.apply.outputs.OutputGuard` before the model is loaded or an image read."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    inputs = list(inputs)

    def say(message: str, code: int = EXIT_USAGE) -> int:
        tell(stderr, f"leukobench predict: {message}")
        return code

    if batch_size < 1:
        return say(f"--batch-size must be at least 1, got {batch_size}")
    if tta is not None and tta not in choices("tta"):
        return say(f"--tta {tta!r} unknown; allowed: {', '.join(choices('tta'))}")
    if subjects_file is not None and by_subject is None:
        return say("--subjects-output is the file of --by-subject; give --by-subject too")
    pattern = None
    if by_subject is not None:
        try:
            pattern = subject_pattern(by_subject)
            check_aggregation(aggregation)
        except ValueError as error:
            return say(str(error))
    try:
        keras_path = model_file(model_path)  # a wrong path is named before TensorFlow starts
        notes: list[str] = []
        identities: dict = {}
        files = find_images(inputs, notes, identities)
        for note in notes:
            say(note)
        guard = OutputGuard(keras_path, identities, inputs)  # before any image is read or anything written
        if output is not None:
            guard.file(output, "-o")
        subjects_target = subjects_output(output, subjects_file) if pattern is not None else None
        if subjects_target is not None:
            guard.file(subjects_target, "--subjects-output" if subjects_file is not None else "--by-subject's file")
        saliency_dir = None if saliency is None else Path(saliency)
        if saliency_dir is not None:
            guard.folder(saliency_dir, "--saliency")
            for position, path in enumerate(files):
                guard.file(saliency_file(saliency_dir, position, path), "--saliency")
        subjects = find_subjects(pattern, files) if pattern is not None else None
        scoring_notes: list[str] = []
        scoring = trial_scoring(model_path, calibrated, tta, scoring_notes)  # before TensorFlow starts
        model = load_trial(model_path)
        if saliency_dir is not None:
            with writing(saliency_dir, "the Grad-CAM overlays (--saliency): the folder cannot be made"):
                saliency_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(saliency_dir, os.W_OK | os.X_OK):
                raise OutputError(f"--saliency {printable(saliency_dir)}: cannot write into this folder "
                                  "(permission denied); give a folder you can write")
    except (ModelError, NoImagesError, OutputError, SubjectPatternError) as error:
        return say(str(error))
    for note in scoring_notes:
        say(note, EXIT_OK)
    to_stdout = output is None or is_stream_file(output, stdout)
    try:
        # the subjects' CSV is written inside the predictions' block: when it fails, neither file appears
        with writing(output or "standard output", "the predictions"), \
                output_stream(None if to_stdout else output, stdout) as stream:
            classified = [] if pattern is not None else None
            summary = write_predictions(model, files, stream, batch_size, threads, errors=stderr, classified=classified,
                                        saliency_dir=saliency_dir, subjects=subjects, scoring=scoring)
            if pattern is not None:
                table, unmatched = subject_table(classified, model.class_names, aggregation)
                if unmatched:
                    say(f"--by-subject: {len(unmatched)} classified image(s) name no subject by {pattern.pattern!r} "
                        f"(e.g. {Path(unmatched[0]).name}) and are left out of the subjects' CSV", EXIT_OK)
                with writing(subjects_target, "the subjects' verdicts"), atomic_path(subjects_target) as tmp, \
                        open_csv(tmp) as subjects_stream:
                    write_csv(list(table.columns), table.itertuples(index=False), subjects_stream)
    except BrokenPipeError:  # the reader went away (| head): end quietly, as cat does
        if to_stdout:
            discard_rest(stdout)
        return EXIT_BROKEN_PIPE
    except OutputError as error:
        return say(str(error))
    where = f" ({output})" if output else ""
    if not summary.classified:
        return say(f"none of the {summary.failed} image(s) could be classified{where}", summary.exit_code)
    if summary.failed:
        unreadable = summary.failed - summary.unnamed
        say(f"{summary.classified} image(s) classified, "
            + ", ".join(part for part in (f"{unreadable} could not be read" if unreadable else "",
                                          f"{summary.unnamed} named an empty subject" if summary.unnamed else "") if part)
            + f" (rows with status 'error'{where})")
    return summary.exit_code
