"""How a cell's scores are made for new images: temperature scaling, and the cell's ``scoring.json``.

**Temperature scaling** (Guo et al., 2017): one number that makes a cell's scores mean what they
say. A network trained to low loss is often over-confident: of the images it scores 0.95, fewer than
95 % are right. Temperature scaling divides the model's logits by one temperature ``T`` (> 1 softens,
< 1 sharpens), fitted on the validation split by minimising the negative log-likelihood. Dividing
every logit by the same positive number keeps their order, so no predicted class changes; only how
sure the scores are. The test split never takes part in the fit.

It works on the scores a cell has already written (:mod:`leukobench.predictions`), so calibrating
needs no model: a sigmoid score ``p`` has the logit ``log(p / (1 - p))``; softmax scores ``p_k`` have
the logits ``log p_k`` up to a constant per image, which softmax ignores. Scores are clipped to
``[EPSILON, 1 - EPSILON]`` first, so a score of exactly 0 or 1 has a finite logit.

**scoring.json**, written by a cell's evaluation (:func:`write_scoring`) in the cell's folder: its
calibration (``method``, ``temperature``, the validation images it was fitted on) and its test-time
augmentation (``tta``, Keras cells: :data:`leukobench.learn.bundle.TTA_MODES`), which
``leukobench predict`` applies to new images as the evaluation did (:func:`read_scoring`). The
temperature was fitted on the plain scores, so it applies only without test-time augmentation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, softmax

from leukobench.io import atomic_path

CALIBRATIONS = ("none", "temperature")  # evaluation.calibration
SCORING_FILE = "scoring.json"  # in a cell's folder
EPSILON = 1e-7
LOG_TEMPERATURE_BOUNDS = (-4.0, 4.0)  # T from about 0.02 to 55


def logits_of(scores: np.ndarray) -> np.ndarray:
    """Logits whose sigmoid (shape (n,)) or softmax (shape (n, k)) gives back ``scores``."""
    clipped = np.clip(np.asarray(scores, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.log(clipped / (1 - clipped)) if clipped.ndim == 1 else np.log(clipped)


def apply_temperature(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``scores`` with their logits divided by ``temperature``; the predicted classes stay."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    logits = logits_of(scores) / temperature
    return expit(logits) if logits.ndim == 1 else softmax(logits, axis=1)


def _negative_log_likelihood(labels: np.ndarray, logits: np.ndarray) -> float:
    if logits.ndim == 1:  # log sigmoid(z) for label 1, log sigmoid(-z) for label 0
        signed = np.where(labels == 1, logits, -logits)
        return float(np.mean(np.logaddexp(0.0, -signed)))
    return float(-np.mean(log_softmax(logits, axis=1)[np.arange(len(labels)), labels]))


def fit_temperature(labels: np.ndarray, scores: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels`` under ``scores``
    (a bounded 1-D search over log T). ``ValueError`` when there is nothing to fit on."""
    labels = np.asarray(labels).astype(np.int64)
    if len(labels) == 0:
        raise ValueError("temperature scaling needs images to fit on: the validation split is empty")
    logits = logits_of(scores)
    result = minimize_scalar(lambda log_t: _negative_log_likelihood(labels, logits / np.exp(log_t)),
                             bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
    return float(np.exp(result.x))


def write_scoring(path: str | os.PathLike, method: str, temperature: float = 1.0, fitted_on: int = 0,
                  tta: str = "none") -> None:
    """A cell's scoring: calibration ``method`` (:data:`CALIBRATIONS`), its ``temperature`` (1 for
    none), the number of validation images it was fitted on, and the test-time augmentation ``tta``."""
    if method not in CALIBRATIONS:
        raise ValueError(f"calibration '{method}' unknown; allowed: {', '.join(CALIBRATIONS)}")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"method": method, "temperature": float(temperature),
                                   "fitted_on_val_images": int(fitted_on), "tta": tta}, indent=2))


def read_scoring(cell_folder: str | os.PathLike) -> dict | None:
    """The scoring its evaluation wrote in a cell's folder, or None when there is none yet."""
    path = Path(cell_folder) / SCORING_FILE
    if not path.is_file():
        return None
    try:
        scoring = json.loads(path.read_text())
        apply_temperature(np.array([0.5]), scoring["temperature"])
        if scoring["method"] not in CALIBRATIONS or not isinstance(scoring["tta"], str):
            raise ValueError(f"method {scoring['method']!r}, tta {scoring['tta']!r}")
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a cell's scoring as the evaluation writes it ({error}); "
                         "delete it and rerun the workflow") from None
    return scoring
