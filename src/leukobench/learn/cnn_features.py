"""A trained Keras trial's conv features (Varol's FEM-k, Approach 2), for its hybrid trials.

Written by the trial's training job with the model still in memory (no second TensorFlow start), in
the layout of every feature store (:mod:`leukobench.learn.feature_extractors`), which the hybrid trials' fits
read like the pixel and HOG features of the classical ones. A module of its own: the feature
stores' module is read by every classical and hybrid fit, which must not reach the Keras models
(a rule's code digest follows imports: editing a CNN would refit every pixel and HOG classifier).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from leukobench.data.store import Store
from leukobench.learn.saved_model import PREDICT_BATCH, TrainedModel
from leukobench.learn.feature_store import write_store_features

FEATURE_LAYER = "features"  # every registered Keras model gives its flattened conv output this name


def conv_features(trained: TrainedModel, images: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """``(n, d)`` float32: the model's ``features`` layer (its flattened conv output) for each image."""
    import keras

    try:
        layer = trained.model.get_layer(FEATURE_LAYER)
    except ValueError as error:
        raise ValueError(f"model {trained.model.name} has no layer named '{FEATURE_LAYER}' to take features from") from error
    extractor = keras.Model(trained.model.inputs, layer.output, name=f"{trained.model.name}_{FEATURE_LAYER}")
    features = extractor.predict(images, batch_size=batch_size, verbose=0)
    return np.asarray(features, dtype=np.float32).reshape(len(images), -1)


def write_conv_features(trained: TrainedModel, store: Store, store_path: str | os.PathLike,
                        model_path: str | os.PathLike, out_path: str | os.PathLike,
                        batch_size: int = PREDICT_BATCH) -> pd.DataFrame:
    """The conv features of every image of the store the model was trained on, as a feature store
    (extractor ``cnn``); returns its rows."""
    if trained.record["preparation"] != store.metadata["preparation"]:
        raise ValueError(f"{store_path} was prepared with {store.metadata['preparation']} but the model {model_path} "
                         f"expects {trained.record['preparation']}: extract from the store the model was trained on")
    features = conv_features(trained, store.images, batch_size)
    print(f"cnn: {features.shape[1]} features per image from layer '{FEATURE_LAYER}'", flush=True)
    parameters = {"layer": FEATURE_LAYER, "model": trained.record.get("model"), "model_trial": trained.record.get("trial", {}),
                  "batch_size": batch_size}
    return write_store_features(store, store_path, "cnn", features, parameters, {"batch_size": batch_size}, out_path,
                                model_path=model_path)
