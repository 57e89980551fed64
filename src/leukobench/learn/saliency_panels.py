"""Which images a trial's saliency sheet shows, and the file that carries them from the model pass to the figure.

The ``saliency`` job (a model pass, :func:`leukobench.learn.saliency.saliency_of_trial`) keeps the
sheet's images with their heat maps (:func:`write_sheet_panels`, ``saliency_panels.npz``); the
``saliency_sheet`` job draws them (:mod:`leukobench.learn.saliency_sheet`) with the same choice
(:func:`sheet_panels`), so the sheet is the one drawn from every image, and redrawing it runs no
model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from leukobench.io import atomic_path
from leukobench.predictions import checked_labels

SHEET_PER_GROUP = 4  # a saliency sheet's panels per true class and verdict (correct, wrong)
def write_sheet_panels(path: str | os.PathLike, images: np.ndarray, heatmaps: np.ndarray, labels: np.ndarray,
                       predicted: np.ndarray, scores: np.ndarray, class_names: Sequence[str], title: str) -> None:
    """Write the images of a saliency sheet (:func:`sheet_panels`) with their heat maps, labels,
    predictions and scores, the class names and the title, as ``.npz`` at ``path`` (atomically):
    what :func:`leukobench.learn.saliency_sheet.draw_saliency_sheet` draws, the same sheet as from
    every image."""
    scores = np.asarray(scores)
    shown = np.sort(np.concatenate(sheet_panels(labels, predicted, scores, len(class_names))[0]))
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, images=np.asarray(images)[shown], heatmaps=np.asarray(heatmaps, dtype=np.float32)[shown],
                            labels=np.asarray(labels)[shown], predicted=np.asarray(predicted)[shown], scores=scores[shown],
                            class_names=np.asarray([str(name) for name in class_names], dtype=str),
                            title=np.asarray(title))


def sheet_panels(labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray, n_classes: int,
                 per_group: int = SHEET_PER_GROUP) -> tuple[list[np.ndarray], np.ndarray]:
    """Which images a saliency sheet shows, and how confident each prediction is.

    Returns the sheet's rows, in order (for each true class, its correct then its wrong
    predictions), each the indices of at most ``per_group`` images, most confident first
    (ties in their order); and the confidence of every image, the score of its predicted class.
    ``scores`` is ``(n,)`` (the score of class 1, two classes) or ``(n, k)``; bad input raises
    ``ValueError`` naming it.
    """
    truth, guess = checked_labels(labels, "labels", n_classes), checked_labels(predicted, "predicted", n_classes)
    values = np.asarray(scores, dtype=np.float64)
    if len(guess) != len(truth) or len(values) != len(truth):
        raise ValueError(f"labels ({len(truth)}), predicted ({len(guess)}) and scores ({len(values)}) must have one "
                         "entry per image")
    if (values.ndim == 1 and n_classes != 2) or (values.ndim == 2 and values.shape[1] != n_classes) or values.ndim > 2:
        raise ValueError(f"scores must be (n,) for 2 classes or (n, {n_classes}), got shape {values.shape}")
    if per_group < 1:
        raise ValueError(f"per_group must be at least 1, got {per_group}")
    confidence = (np.where(guess == 1, values, 1 - values) if values.ndim == 1
                  else values[np.arange(len(truth)), guess])
    rows = []
    for c in range(n_classes):
        for correct in (True, False):
            members = np.flatnonzero((truth == c) & ((guess == c) == correct))
            rows.append(members[np.argsort(-confidence[members], kind="stable")][:per_group])
    return rows, confidence
