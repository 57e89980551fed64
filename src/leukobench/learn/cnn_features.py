"""The ``cnn`` feature extractor: a trained Keras cell's conv features (Varol's FEM-k, Approach 2).

Its own module, registered into :data:`leukobench.learn.features.FEATURE_EXTRACTORS` on import:
the feature stores' module is read by every classical and hybrid fit, which must not reach the
Keras models and training (a rule's code digest follows imports: editing a CNN would refit every
pixel and HOG classifier).
"""

from __future__ import annotations

import numpy as np

from leukobench.data.store import Store
from leukobench.learn.features import FEATURE_LAYER, ExtractorOptions, register_extractor
from leukobench.learn.bundle import TrainedModel


@register_extractor("cnn", needs_model=True)
def cnn_features(store: Store, options: ExtractorOptions) -> tuple[np.ndarray, dict]:
    """The trained model's ``features`` layer (its flattened conv output): Varol's FEM-k."""
    import keras

    trained = TrainedModel.load(options.model_path)
    if trained.bundle["preparation"] != store.metadata["preparation"]:
        raise ValueError(
            f"the store was prepared with {store.metadata['preparation']} but the model {options.model_path} "
            f"expects {trained.bundle['preparation']}: extract from the store the model was trained on"
        )
    try:
        layer = trained.model.get_layer(FEATURE_LAYER)
    except ValueError as error:
        raise ValueError(f"{options.model_path} has no layer named '{FEATURE_LAYER}' to take features from") from error
    extractor = keras.Model(trained.model.inputs, layer.output, name=f"{trained.model.name}_{FEATURE_LAYER}")
    features = extractor.predict(store.images, batch_size=options.batch_size, verbose=0)
    features = np.asarray(features, dtype=np.float32).reshape(len(store.images), -1)
    print(f"cnn: {features.shape[1]} features per image from layer '{FEATURE_LAYER}' of {options.model_path}",
          flush=True)
    parameters = {
        "layer": FEATURE_LAYER, "model": trained.bundle.get("model"), "model_cell": trained.bundle.get("cell", {}),
        "batch_size": options.batch_size,
    }
    return features, parameters
