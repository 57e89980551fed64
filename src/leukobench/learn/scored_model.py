"""A trained and evaluated Keras trial applied to arrays of images: the library call under
``leukobench predict`` (:mod:`leukobench.apply`), and what a notebook or script calls.

:meth:`ScoredModel.load` loads once what applying the trial takes: the model (``model.keras``),
its record (``model.json``: the preparation, the class names; :mod:`leukobench.learn.saved_model`)
and how its evaluation scored it (``scoring.json``, through the one reader
:func:`leukobench.scoring.read_scoring`, checked against the model file). :meth:`ScoredModel.scores`
then gives the scores of an ``(n, H, W, C)`` array of images prepared as the record says, averaged
over the views of the scoring's test-time augmentation and scaled by its temperature where that
applies (:meth:`leukobench.scoring.Scoring.scaled`): the scores the trial's evaluation gave. No file
handling beyond the load: finding and decoding image files, the CSV and its guards are the
application's.

It is a module of its own, not part of :mod:`leukobench.learn.saved_model`, so that the trainings
and the inspection passes, which write the scores a scoring is fitted on, do not reach the scoring
(an edit of how a temperature is fitted reruns no training).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leukobench.data.store import Preparation
from leukobench.learn.saved_model import TrainedModel, view_averaged_scores
from leukobench.score_variants import views_of
from leukobench.scoring import Scoring, read_scoring


@dataclass(frozen=True)
class ScoredModel:
    """A trained trial (:class:`leukobench.learn.saved_model.TrainedModel`) with the scoring its
    evaluation recorded (:class:`leukobench.scoring.Scoring`; the model's own scores without one)."""

    model: TrainedModel
    scoring: Scoring = field(default_factory=Scoring)

    @classmethod
    def load(cls, model_path: str | os.PathLike) -> "ScoredModel":
        """The trial of ``model_path`` (its ``model.keras``), with ``model.json`` and ``scoring.json``
        beside it. :class:`leukobench.scoring.ScoringError` when the scoring is refused (made from
        another model file, not what the evaluation writes, missing beside an evaluation's
        ``metrics.json``); a trial never evaluated gives its model's own scores."""
        model_path = Path(model_path)
        scoring = read_scoring(model_path.parent, model_path)
        return cls(TrainedModel.load(model_path), scoring or Scoring())

    @property
    def preparation(self) -> Preparation:
        return self.model.preparation

    @property
    def class_names(self) -> list[str]:
        return self.model.class_names

    def scores(self, images: np.ndarray) -> np.ndarray:
        """The scores of ``images`` (``(n, H, W, C)`` uint8, prepared as :attr:`preparation` says):
        probability of class 1 (binary, shape (n,)) or of each class (shape (n, k)), averaged over the
        scoring's test-time augmentation views and temperature-scaled where the scoring says so."""
        scores = view_averaged_scores(self.model.model.predict_on_batch, images, views_of(self.scoring.tta))
        return self.scoring.scaled(scores, self.scoring.tta)
