"""How a trial's scores are made for new images: temperature scaling, and the trial's ``scoring.json``.

**Temperature scaling** (Guo et al., 2017): one number that makes a trial's scores mean what they
say. A network trained to low loss is often over-confident: of the images it scores 0.95, fewer than
95 % are right. Temperature scaling divides the model's logits by one temperature ``T`` (> 1 softens,
< 1 sharpens), fitted on the validation split by minimising the negative log-likelihood. Dividing
every logit by the same positive number keeps their order, so no predicted class changes; only how
sure the scores are. The test split never takes part in the fit.

It works on the scores a trial has already written (:mod:`leukobench.predictions`), so calibrating
needs no model: a sigmoid score ``p`` has the logit ``log(p / (1 - p))``; softmax scores ``p_k`` have
the logits ``log p_k`` up to a constant per image, which softmax ignores. Scores are clipped to
``[EPSILON, 1 - EPSILON]`` first, so a score of exactly 0 or 1 has a finite logit.

**A fit that cannot be trusted is not a result** (:class:`NotFitted`): fewer than
:data:`MIN_FIT_IMAGES` validation images, validation images of one class only, or an optimum on a
bound of the search (:data:`LOG_TEMPERATURE_BOUNDS`: the likelihood keeps improving beyond it, as it
does when every validation image is of one class, so the number found says where the search
stopped, not what the scores need). Such a calibration is not applied: the evaluation's calibrated
rows say why, its log says so in one line, ``scoring.json`` records it and ``leukobench predict``
gives the model's own scores and says so.

**scoring.json** (:class:`Scoring`): how to apply a trained and evaluated trial, written once by its
evaluation (:func:`write_scoring`) in the trial's folder and read back by one reader
(:func:`read_scoring`) wherever it is used (``leukobench predict``, the report's figures): the
calibration asked (``method``), what became of its fit (``fit``: ``fitted``, ``not fitted: <why>``,
or ``none``), the ``temperature`` (``null`` unless fitted) and the validation images it was fitted
on, the test-time augmentation (``tta``, Keras trials: ``none`` or a score variant of setting ``tta``,
:mod:`leukobench.score_variants`), and
``made_from``: the sha256 of the model file and of the predictions files it was computed from, by
file name in the trial's folder. The reader refuses a file that is not one (a folder, unreadable, not
JSON, a key missing or unknown, a value outside what the evaluation writes: a temperature outside
what the fit can give, a ``tta`` that is not a mode) and one whose sources changed since (a retrain
whose evaluation did not run again), naming the file and what differs.

The temperature was fitted on the plain scores, so it applies only to them, never to
test-time-augmented ones: the registry of score variants says what combines
(:func:`leukobench.score_variants.combined`), :meth:`Scoring.temperature_for` applies it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, softmax

from leukobench.io import atomic_path, file_sha256
from leukobench.score_variants import NONE, choices, combined, scaled_by_temperature

SCORING_FILE = "scoring.json"  # in a trial's folder
METRICS_FILE = "metrics.json"  # written by the same evaluation beside it: the trial was evaluated
EPSILON = 1e-7
LOG_TEMPERATURE_BOUNDS = (-4.0, 4.0)  # T from about 0.018 to 55: the fit's search interval
# A fitted log T this close to a bound is on the bound (the bounded search stops within 1e-5 of it):
# the optimum lies beyond, so the fit is refused; the temperatures a fit can give lie strictly inside.
BOUND_TOLERANCE = 1e-3
FITTED_TEMPERATURES = (math.exp(LOG_TEMPERATURE_BOUNDS[0] + BOUND_TOLERANCE),
                       math.exp(LOG_TEMPERATURE_BOUNDS[1] - BOUND_TOLERANCE))
# One number fitted on fewer validation images than this says more about those images than about the
# trial: the calibration is not fitted (and the plain scores stay).
MIN_FIT_IMAGES = 20
FITTED, NOT_FITTED, NO_FIT = "fitted", "not fitted: ", "none"  # scoring.json's "fit"
SCORING_KEYS = ("method", "fit", "temperature", "fitted_on_val_images", "tta", "made_from")


class NotFitted(ValueError):
    """The temperature cannot be fitted on these validation scores (the message says why)."""


class ScoringError(ValueError):
    """A scoring.json that must not be used: the message names the file and what is wrong."""


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


def fit_temperature(labels: np.ndarray, scores: np.ndarray, class_names: list[str] | None = None) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels`` under ``scores``
    (a bounded 1-D search over log T); :class:`NotFitted`, saying why, when there is nothing
    trustworthy to fit: fewer than :data:`MIN_FIT_IMAGES` images, one class only, or an optimum on
    a bound of the search (``class_names`` name the class in the message)."""
    labels = np.asarray(labels).astype(np.int64)
    present = np.unique(labels)
    if len(present) == 1:
        label = int(present[0])
        name = f" ({class_names[label]})" if class_names is not None and label < len(class_names) else ""
        raise NotFitted(f"the validation split holds one class only: label {label}{name}, {len(labels)} images")
    if len(labels) < MIN_FIT_IMAGES:
        raise NotFitted(f"{len(labels)} validation image(s), fewer than the {MIN_FIT_IMAGES} a temperature is "
                        "fitted on")
    logits = logits_of(scores)
    result = minimize_scalar(lambda log_t: _negative_log_likelihood(labels, logits / np.exp(log_t)),
                             bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
    low, high = LOG_TEMPERATURE_BOUNDS
    if result.x <= low + BOUND_TOLERANCE or result.x >= high - BOUND_TOLERANCE:
        side = "lower" if result.x <= low + BOUND_TOLERANCE else "upper"
        raise NotFitted(f"the optimum lies on the {side} bound of the search (T = {math.exp(result.x):.4g}; "
                        f"T is searched from {math.exp(low):.4g} to {math.exp(high):.4g}): the likelihood "
                        "keeps improving beyond it")
    return float(np.exp(result.x))


@dataclass(frozen=True)
class Scoring:
    """How to apply a trained and evaluated trial (its ``scoring.json``, see the module docstring)."""

    method: str = NONE  # the calibration asked: choices("calibration")
    fit: str = NO_FIT  # FITTED, NOT_FITTED + why, or NO_FIT (method none)
    temperature: float | None = None  # the fitted temperature; None unless fit is FITTED
    fitted_on_val_images: int = 0
    tta: str = NONE  # the views the evaluation averaged: choices("tta")
    made_from: dict = field(default_factory=dict)  # file name in the trial's folder: its sha256

    @property
    def not_fitted(self) -> str:
        """Why the calibration asked was not fitted; empty when it was, or when none was asked."""
        return self.fit[len(NOT_FITTED):] if self.fit.startswith(NOT_FITTED) else ""

    def calibrates(self, tta: str) -> bool:
        """Whether the calibration applies to scores averaged over ``tta``'s views: as the score
        variants combine (:func:`leukobench.score_variants.combined`; the temperature is fitted on
        the plain scores, ``tta`` ``none``, so it applies to those only)."""
        return combined(self.method, tta)

    def temperature_for(self, tta: str) -> float | None:
        """The temperature to apply to scores averaged over ``tta``'s views, or None (none asked, not
        fitted, or not for these views: :meth:`calibrates`)."""
        return self.temperature if self.calibrates(tta) else None

    def scaled(self, scores: np.ndarray, tta: str) -> np.ndarray:
        """``scores`` (averaged over ``tta``'s views) as this trial's scoring gives them: temperature-
        scaled where :meth:`temperature_for` says so, else as they are."""
        temperature = self.temperature_for(tta)
        return scores if temperature is None else apply_temperature(scores, temperature)


def calibration_of(method: str, labels: np.ndarray, scores: np.ndarray,
                   class_names: list[str] | None = None) -> tuple[str, float | None]:
    """The ``fit`` and ``temperature`` of :class:`Scoring` for calibration ``method`` on these
    validation labels and scores: ``(FITTED, T)``, ``(NOT_FITTED + why, None)`` or ``(NO_FIT, None)``."""
    if method not in choices("calibration"):
        raise ValueError(f"calibration '{method}' unknown; allowed: {', '.join(choices('calibration'))}")
    if not scaled_by_temperature(method):
        return NO_FIT, None
    try:
        return FITTED, fit_temperature(labels, scores, class_names)
    except NotFitted as why:
        return f"{NOT_FITTED}{why}", None


def digests(folder: str | os.PathLike, names) -> dict[str, str]:
    """The sha256 of each named file of ``folder`` (what a scoring was made from)."""
    return {name: file_sha256(Path(folder) / name) for name in names}


def write_scoring(path: str | os.PathLike, scoring: Scoring) -> None:
    """Write ``scoring`` as ``path`` (the trial's ``scoring.json``), whole or not at all; it is checked
    as :func:`read_scoring` checks it, so nothing is written that would be refused on reading."""
    record = {"method": scoring.method, "fit": scoring.fit, "temperature": scoring.temperature,
              "fitted_on_val_images": int(scoring.fitted_on_val_images), "tta": scoring.tta,
              "made_from": dict(scoring.made_from)}
    problem = _problem(record)
    if problem:
        raise ValueError(f"{path}: not written, {problem}")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _problem(record) -> str:
    """What makes ``record`` something the evaluation does not write ("" when nothing)."""
    if not isinstance(record, dict):
        return f"it holds a {type(record).__name__}, not an object"
    missing = [key for key in SCORING_KEYS if key not in record]
    unknown = sorted(set(record) - set(SCORING_KEYS))
    if missing or unknown:
        return ", ".join(filter(None, [missing and f"lacks {', '.join(missing)}",
                                       unknown and f"has unknown key(s) {', '.join(map(str, unknown))}"]))
    method, fit, temperature = record["method"], record["fit"], record["temperature"]
    if method not in choices("calibration"):
        return f"method {method!r} unknown; allowed: {', '.join(choices('calibration'))}"
    if record["tta"] not in choices("tta"):
        return f"tta {record['tta']!r} unknown; allowed: {', '.join(choices('tta'))}"
    if not isinstance(record["fitted_on_val_images"], int) or isinstance(record["fitted_on_val_images"], bool) \
            or record["fitted_on_val_images"] < 0:
        return f"fitted_on_val_images {record['fitted_on_val_images']!r} is not a count of images"
    if not isinstance(fit, str):
        return f"fit {fit!r} is not text"
    if method == NONE and (fit != NO_FIT or temperature is not None):
        return f"method none with fit {fit!r} and temperature {temperature!r} (none has fit 'none', temperature null)"
    if scaled_by_temperature(method):
        if fit == FITTED:
            low, high = FITTED_TEMPERATURES
            if not _is_number(temperature) or not low <= temperature <= high:
                return (f"temperature {temperature!r} is not one a fit gives (a number from {low:.4g} to {high:.4g}, "
                        "inside the search's bounds)")
            if record["fitted_on_val_images"] < MIN_FIT_IMAGES:
                return (f"a temperature fitted on {record['fitted_on_val_images']} validation images (a fit needs "
                        f"at least {MIN_FIT_IMAGES})")
        elif not fit.startswith(NOT_FITTED) or len(fit) == len(NOT_FITTED):
            return f"fit {fit!r} is neither 'fitted' nor 'not fitted: <why>'"
        elif temperature is not None:
            return f"temperature {temperature!r} with fit {fit!r} (an unfitted calibration has none)"
    made_from = record["made_from"]
    if not isinstance(made_from, dict) or not made_from or not all(
            isinstance(name, str) and name and "/" not in name and isinstance(digest, str) and len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest) for name, digest in made_from.items()):
        return f"made_from {made_from!r} is not a map of file names to sha256 digests"
    return ""


def read_scoring(trial_folder: str | os.PathLike, model_path: str | os.PathLike | None = None) -> Scoring | None:
    """The scoring its evaluation wrote in a trial's folder, checked; None when the trial was not
    evaluated (neither ``scoring.json`` nor the ``metrics.json`` its evaluation writes beside it).

    :class:`ScoringError`, naming the file and what is wrong, when ``scoring.json`` is missing
    although the trial was evaluated, is not a file (a folder), cannot be read, is not what the evaluation writes (see :func:`_problem`), or was
    made from other files than the folder holds now: every file named in ``made_from`` that is in
    the folder must have its recorded sha256; with ``model_path`` (the model about to be applied)
    that file must be one of them, with its digest."""
    folder = Path(trial_folder)
    path = folder / SCORING_FILE
    again = "rerun the trial's evaluation (the workflow rewrites it), or restore the file"
    if not path.exists() and not path.is_symlink():
        if (folder / METRICS_FILE).exists():
            raise ScoringError(f"{path}: missing, but the trial was evaluated ({METRICS_FILE} beside it): how its "
                               f"evaluation scored it is unknown; {again}")
        return None
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise ScoringError(f"{path}: is {kind}, not the trial's scoring that the evaluation writes; remove it and {again}")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ScoringError(f"{path}: cannot be read as the trial's scoring ({error}); {again}") from None
    problem = _problem(record)
    if problem:
        raise ScoringError(f"{path} is not a trial's scoring as the evaluation writes it: {problem}; {again}")
    made_from = record["made_from"]
    checked = {name: folder / name for name in made_from if (folder / name).exists()}
    if model_path is not None:
        model_path = Path(model_path)
        if model_path.name not in made_from:
            raise ScoringError(f"{path} was made from {', '.join(sorted(made_from))}, not from the model "
                               f"{model_path}; {again}")
        checked[model_path.name] = model_path
    found = {name: file_sha256(file) for name, file in checked.items()}
    changed = [f"{checked[name]} (sha256 {digest[:12]}…, recorded {made_from[name][:12]}…)"
               for name, digest in sorted(found.items()) if digest != made_from[name]]
    if changed:
        raise ScoringError(f"{path} was made from other files than the trial holds now: {'; '.join(changed)} changed "
                           f"since its evaluation (retrained without evaluating again?); {again}")
    return Scoring(**record)
