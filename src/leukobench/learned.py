"""Whether a trial learned: the verdict in metrics.csv's ``learned`` and ``learned_note``.

A Keras training can stay at chance for all its epochs (a dead start: measured on Aria, two of
three seeds of ``varol_cnn3`` sat at a training loss of ln 4 for 30 epochs and gave every image
one class) or be thrown back to it (a learning rate that makes it diverge). Averaged in silence
with the trials that learned, such a trial reads as a recipe that learned badly. The verdict is
taken from what the run already wrote, without running a model again (this module imports no
TensorFlow; the evaluation job that uses it starts none):

* **Keras trials** (``history.csv`` and ``predictions.parquet``): the trial did **not** learn when
  both hold:

  1. its training loss at the last epoch is not below the *chance loss* less
     :data:`CHANCE_MARGIN` (1 %), or is not finite (diverged). The chance loss
     (:func:`chance_loss`) is the training loss of a model that answers every image with the
     training split's class shares, the best a model can do without looking at the image: the
     entropy of the class shares, ``ln 2`` for two balanced classes, ``ln 4`` for four, under the
     trial's own loss (label smoothing, balanced class weights, binary cross-entropy over several
     classes). The training writes it into the predictions' metadata. "Never left chance" (no
     epoch below it) and "fell back to chance" (below it once, not at the end) are told apart in
     the note;
  2. its predictions of the evaluated images (val, test, external together) are no better than
     one answer for every image: one class for at least :data:`ONE_CLASS_SHARE` (95 %) of them,
     or an accuracy not above their majority-class rate.

  Either alone is not enough: a training loss at chance over one or two epochs can hide a model
  that learned within them (its predictions beat the majority rate), and a model that fitted its
  training data may still answer most images with one class on a skewed split.
* **Classical and hybrid trials** (scikit-learn: no training loss): judged on their predictions
  alone, by the narrower sign: one class for at least 95 % of the evaluated images (a classifier
  that answers the same whatever the image; a hybrid on the features of a dead CNN does). A weak
  classifier whose answers vary is not called one that did not learn.

The note says what was measured either way. The report counts such trials per configuration and
marks them; choosing the best configuration is unchanged (a configuration's mean over its seeds,
dead seeds included: that is the recipe's reliability).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

LEARNED = "learned"  # metrics.csv: True / False, the same in every row of a trial
LEARNED_NOTE = "learned_note"  # metrics.csv: why, in words
CHANCE_MARGIN = 0.01  # a training loss must fall 1 % below the chance loss to have left chance
ONE_CLASS_SHARE = 0.95  # "one class for (nearly) every image": at least this share of the evaluated images
NOT_LEARNED_LABEL = "did not learn (at chance: metrics.csv's learned_note says why)"  # figures' legends
VERDICT_HISTORY_COLUMNS = ("epoch", "loss")  # what the verdict reads of a Keras CSVLogger history


@dataclass(frozen=True)
class Verdict:
    """Whether a trial learned, and why (:data:`LEARNED`, :data:`LEARNED_NOTE`)."""

    learned: bool
    note: str

    def columns(self) -> dict:
        return {LEARNED: self.learned, LEARNED_NOTE: self.note}

    def log_line(self) -> str:
        """The training log's one line at the end of the fit."""
        return f"learned: {'yes' if self.learned else 'NO, the trial did not learn'}: {self.note}"


# ----------------------------------------------------------------------------- the chance loss


def chance_loss(train_labels, n_classes: int, *, per_output_binary: bool = False, label_smoothing: float = 0.0,
                class_weight: bool = False) -> float:
    """The training loss of answering every image with the training split's class shares.

    ``train_labels``: the training split's labels (``0..n_classes-1``). The shares are smoothed as
    the loss smooths its targets (``(1 - label_smoothing) * share + label_smoothing / k``, with
    ``k`` = 2 for binary cross-entropy), and with ``class_weight`` (balanced weights, Keras'
    weighted mean over the batch) every class present weighs the same, so the shares are uniform
    over them. The loss is then the entropy of the shares (categorical cross-entropy, or binary
    cross-entropy of a one-unit sigmoid), or, with ``per_output_binary`` (binary cross-entropy over
    the outputs of a softmax of three or more classes, Zhang's choice), the mean over the outputs
    of their binary entropies; with label smoothing there, whose targets need not sum to 1, that
    mean is a lower bound of what a constant answer can reach (a training at chance stays above it).
    """
    labels = np.asarray(train_labels).astype(np.int64).ravel()
    if labels.size == 0:
        raise ValueError("chance_loss: the training split holds no labels")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"chance_loss: label_smoothing must be in [0, 1), got {label_smoothing}")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"chance_loss: labels outside 0..{n_classes - 1}")
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    shares = (counts > 0) / (counts > 0).sum() if class_weight else counts / counts.sum()
    if per_output_binary and n_classes > 2:
        targets = (1 - label_smoothing) * shares + label_smoothing / 2
        return float(np.mean([_entropy(np.array([t, 1 - t])) for t in targets]))
    return _entropy((1 - label_smoothing) * shares + label_smoothing / n_classes)


def _entropy(shares: np.ndarray) -> float:
    shares = shares[shares > 0]
    return float(-(shares * np.log(shares)).sum())


# ----------------------------------------------------------------------------- reading what the run wrote


def read_history(path: str | os.PathLike) -> pd.DataFrame:
    """A Keras trial's ``history.csv`` (``CSVLogger``: one row per epoch, from 0), sorted by epoch;
    ``ValueError`` naming the file when it holds no epoch or lacks a column of :data:`VERDICT_HISTORY_COLUMNS`."""
    history = pd.read_csv(path)
    missing = [column for column in VERDICT_HISTORY_COLUMNS if column not in history]
    if missing:
        raise ValueError(f"{path} lacks column(s) {', '.join(missing)} of a Keras training history "
                         f"(it has {list(history.columns)}); train the trial again")
    if history.empty:
        raise ValueError(f"{path} holds no epoch; train the trial again")
    return history.sort_values("epoch", kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------- the verdicts


@dataclass(frozen=True)
class _Answers:
    """What the predictions of the evaluated images show: their most frequent predicted class and
    its share, their accuracy and their majority-class rate."""

    images: int
    top_class: str
    top_share: float
    accuracy: float
    majority_rate: float

    @classmethod
    def of(cls, predictions: pd.DataFrame, class_names: list[str]) -> "_Answers":
        if predictions.empty:
            raise ValueError("the trial has no predictions of evaluated images to judge")
        predicted = predictions["pred"].to_numpy()
        labels = predictions["label"].to_numpy()
        values, counts = np.unique(predicted, return_counts=True)
        top = int(values[np.argmax(counts)])
        name = class_names[top] if 0 <= top < len(class_names) else str(top)
        return cls(len(predicted), name, float(counts.max() / len(predicted)), float(np.mean(predicted == labels)),
                   float(np.unique(labels, return_counts=True)[1].max() / len(labels)))

    @property
    def one_class(self) -> bool:
        return self.top_share >= ONE_CLASS_SHARE

    @property
    def beaten_majority(self) -> bool:
        return self.accuracy > self.majority_rate

    def one_class_text(self) -> str:
        return f"'{self.top_class}' for {self.top_share:.0%} of the {self.images} evaluated images"

    def text(self) -> str:
        """What the answers show, as the verdict reads them."""
        if self.one_class:
            return f"predictions: {self.one_class_text()}"
        versus = "above" if self.beaten_majority else "not above"
        return (f"predictions: the most frequent class ('{self.top_class}') for {self.top_share:.0%} of the "
                f"{self.images} evaluated images, accuracy {self.accuracy:.3f} {versus} their majority-class rate "
                f"{self.majority_rate:.3f}")


def judge_keras(history: pd.DataFrame, predictions: pd.DataFrame, class_names: list[str],
                chance: float) -> Verdict:
    """The verdict on a Keras trial from its history (:func:`read_history`), its predictions of the
    evaluated images and its chance loss (:func:`chance_loss`; see the module docstring)."""
    if not (isinstance(chance, (int, float)) and math.isfinite(chance) and chance > 0):
        raise ValueError(f"chance loss must be a positive number, got {chance!r}")
    losses = pd.to_numeric(history["loss"], errors="coerce").to_numpy(dtype=np.float64)
    bar = chance * (1 - CHANCE_MARGIN)
    finite = np.isfinite(losses)
    below = finite & (losses < bar)
    last = losses[-1]
    chance_text = (f"{bar:.4f} (the loss of answering the training split's class shares, {chance:.4f}, "
                   f"less {CHANCE_MARGIN:.0%})")
    answers = _Answers.of(predictions, class_names)
    if np.isfinite(last) and last < bar:
        return Verdict(True, f"training loss {last:.4f} at the last epoch, below {chance_text}")
    epochs = len(losses)
    if not below.any():
        lowest = f"lowest {_loss_text(np.nanmin(losses[finite]))}" if finite.any() else "never finite (diverged)"
        at_chance = f"training loss never below {chance_text} in {epochs} epoch(s): {lowest}"
    else:
        best = int(np.flatnonzero(below)[np.argmin(losses[below])])
        now = _loss_text(last) if np.isfinite(last) else "not finite (diverged)"
        at_chance = (f"training loss back at chance at the last epoch: {now}, not below {chance_text}, after "
                     f"{losses[best]:.4f} at epoch {best + 1} of {epochs}")
    if answers.one_class or not answers.beaten_majority:
        return Verdict(False, f"{at_chance}; {answers.text()}")
    return Verdict(True, f"{at_chance}, but its {answers.text()}: its answers depend on the image")


def _loss_text(loss: float) -> str:
    """A loss to four decimals; a diverged one (100 or more) in three significant digits."""
    return f"{loss:.4f}" if abs(loss) < 100 else f"{loss:.3g}"


def judge_predictions(predictions: pd.DataFrame, class_names: list[str]) -> Verdict:
    """The verdict on a classical or hybrid trial (no training loss): from its predictions of the
    evaluated images alone (see the module docstring)."""
    answers = _Answers.of(predictions, class_names)
    how = "judged on predictions alone: no training loss"
    if answers.one_class:
        return Verdict(False, f"one class, {answers.one_class_text()} ({how})")
    return Verdict(True, f"answers vary: the most frequent class ('{answers.top_class}') for {answers.top_share:.0%} "
                         f"of the {answers.images} evaluated images ({how})")
