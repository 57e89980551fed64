"""A trained Keras trial as saved: ``model.keras`` and, beside it, ``model.json``, the model's
record of how to apply it to new images (the preparation, the class names, the trial), and the
scores it gives. Written by training, which also scores the store's evaluated splits with it
(:func:`predict_store`); read by the inspection passes and, with how the trial's evaluation scored
it, by :class:`leukobench.learn.scored_model.ScoredModel` (what ``leukobench predict`` applies).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from leukobench.data.store import Preparation, Store, load_store
from leukobench.predictions import EVALUATED_SPLITS, ROW_COLUMNS, prediction_frame

PREDICT_BATCH = 256
# The views a test-time augmentation averages are a score variant's (leukobench.score_variants), given to
# these functions by their callers: this module, which the training runs, does not import the registry,
# so that adding or editing a variant reruns no training.
Views = Callable[[np.ndarray], list[np.ndarray]]


def check_labels(labels, class_names: list[str], source: str | os.PathLike) -> None:
    """Refuse labels that a head over ``class_names`` cannot output (anything but 0..len(class_names)-1)."""
    found = np.unique(np.asarray(labels))
    outside = [value.item() for value in found if not (float(value).is_integer() and 0 <= value < len(class_names))]
    if outside:
        raise ValueError(f"{source}: labels {outside} are outside the model's head: its {len(class_names)} class "
                         f"names {class_names} allow labels 0..{len(class_names) - 1} only")


def model_record_path(model_path: str | os.PathLike) -> Path:
    """``model.json``, the model's record, beside ``model.keras``."""
    return Path(model_path).with_suffix(".json")


@dataclass
class TrainedModel:
    """A saved model with its record (``model.json``): what is needed to apply it to new images. How
    its evaluation scored it (temperature, test-time augmentation) is the trial's other record,
    :class:`leukobench.scoring.Scoring` (:class:`leukobench.learn.scored_model.ScoredModel` holds both)."""

    model: object
    record: dict  # model.json, as training writes it (leukobench.learn.train.train_from_store)

    @classmethod
    def load(cls, model_path: str | os.PathLike) -> "TrainedModel":
        import keras

        return cls(keras.models.load_model(model_path), json.loads(model_record_path(model_path).read_text()))

    @property
    def preparation(self) -> Preparation:
        return Preparation(**self.record["preparation"])

    @property
    def class_names(self) -> list[str]:
        return self.record["class_names"]

    def predict_scores(self, images: np.ndarray, views: Views | None = None) -> np.ndarray:
        """Probability of class 1 (binary, shape (n,)) or of each class (shape (n, k)); with ``views``
        (a test-time augmentation's), the mean over the views it gives."""
        return view_averaged_scores(lambda view: self.model.predict(view, batch_size=PREDICT_BATCH, verbose=0),
                                    images, views)


def view_averaged_scores(predict, images: np.ndarray, views: Views | None = None) -> np.ndarray:
    """The scores (:func:`class_scores`) of ``images`` as ``predict`` (a model's raw output for an
    array of images) gives them, averaged over the views that ``views`` gives of them (a score
    variant's, :func:`leukobench.score_variants.views_of`; None: the images as they are)."""
    shown = [images] if views is None else views(images)
    return sum(class_scores(np.asarray(predict(np.ascontiguousarray(view)))) for view in shown) / len(shown)


def class_scores(output: np.ndarray) -> np.ndarray:
    """A model's output as scores: probability of class 1 for a one-unit sigmoid (shape (n,)),
    of each class for a softmax (shape (n, k))."""
    return output[:, 0] if output.shape[1] == 1 else output


def check_prepared_as(model: TrainedModel, store: Store, source) -> None:
    """Raise unless ``store`` (named ``source`` in the message) was prepared as the model's training store was."""
    if store.metadata["preparation"] != model.record["preparation"]:
        raise ValueError(f"{source} was prepared with {store.metadata['preparation']} but the model expects "
                         f"{model.record['preparation']}")


def predict_store(model: TrainedModel, store: Store | str | os.PathLike,
                  views: Views | None = None) -> tuple[pd.DataFrame, float]:
    """The predictions (:func:`leukobench.predictions.prediction_frame`) of every image of the
    store's evaluated splits (with ``views``, averaged over the views it gives), and the seconds prediction
    took. The store (a path or a loaded one) must be prepared as the model's was."""
    source = "the store" if isinstance(store, Store) else store
    store = store if isinstance(store, Store) else load_store(store)
    check_prepared_as(model, store, source)
    mask = store.frame["split"].isin(EVALUATED_SPLITS).to_numpy()
    rows = store.frame.loc[mask, ROW_COLUMNS]
    check_labels(rows["label"], model.class_names, source)
    started = time.perf_counter()
    scores = model.predict_scores(store.images[mask], views)
    return prediction_frame(rows, scores, model.class_names), time.perf_counter() - started


def write_tta_predictions(model: TrainedModel | str | os.PathLike, store: Store | str | os.PathLike,
                          predictions_path: str | os.PathLike, out_path: str | os.PathLike, views: Views) -> pd.DataFrame:
    """The trial's predictions again, averaged over the ``views`` of a test-time augmentation
    (:func:`leukobench.score_variants.pass_views`), written to ``out_path`` with the metadata of the
    training's ``predictions_path`` (its trial, classes, training time) and this pass's prediction
    time; the evaluation reads them as its ``tta`` rows.
    ``model`` (its ``model.keras``) and ``store`` are paths, or loaded where the job's other pass
    (Grad-CAM) uses them too."""
    from leukobench.predictions import read_predictions, write_predictions

    plain, metadata = read_predictions(predictions_path)
    source = "the store" if isinstance(store, Store) else store
    predictions, seconds = predict_store(model if isinstance(model, TrainedModel) else TrainedModel.load(model), store, views)
    if not predictions["image_id"].equals(plain["image_id"]):
        raise ValueError(f"{source} holds other evaluated images than {predictions_path}: train the trial again")
    write_predictions(predictions, out_path, **{**metadata, "predict_seconds": seconds})
    return predictions
