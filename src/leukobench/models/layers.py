"""The layers every builder shares: the input (uint8 pixels scaled, then normalised) and the output head.

Inputs are raw uint8 pixels; every model scales them in its first layers, so a saved model applies
to images exactly as the store holds them: the models trained from scratch rescale to [0, 1]
(:func:`scaled_input`), the transfer models (:mod:`leukobench.models.transfer`) apply their Keras
application's own ``preprocess_input`` to the 0–255 RGB pixels. Two classes give one sigmoid unit
(as in the studies), more give a softmax; every builder's ``head`` keyword can ask for a softmax
over two classes instead (:data:`HEADS`, :func:`output_layer`). Keras is imported inside the
functions.
"""

from __future__ import annotations

#: The output layers every builder's ``head`` keyword accepts: "auto" = one sigmoid unit for two
#: classes, a softmax otherwise; "sigmoid" = one sigmoid unit (two classes only); "softmax" = a
#: softmax over ``n_classes`` units even for two classes (Zhang's categorical cross-entropy).
HEADS = ("auto", "sigmoid", "softmax")


def check_head(head: str, n_classes: int) -> None:
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
    if head == "sigmoid" and n_classes != 2:
        raise ValueError(f"head 'sigmoid' (one sigmoid unit) needs 2 classes, got {n_classes}")


def output_layer(x, n_classes: int, head: str = "auto"):
    """The output layer: one sigmoid unit for two classes, softmax otherwise (``head="auto"``);
    ``head="softmax"`` gives a softmax over ``n_classes`` units even for two classes."""
    from keras import layers

    check_head(head, n_classes)
    if head == "sigmoid" or (head == "auto" and n_classes == 2):
        return layers.Dense(1, activation="sigmoid", name="output")(x)
    return layers.Dense(n_classes, activation="softmax", name="output")(x)


def scaled_input(input_shape: tuple[int, int, int], normalization: dict | None = None):
    """The uint8 input scaled to [0, 1], then normalised with the training split's statistics.

    ``normalization`` (from the store's metadata, in [0, 1] units): ``{"mean": .., "variance": ..}``
    of shape (channels,) for per-channel standardisation, or (height, width, channels) for
    mean-image subtraction (variance 1). Being layers of the model, they travel with it.
    """
    import numpy as np
    from keras import layers

    inputs = layers.Input(shape=input_shape, name="pixels")
    x = layers.Rescaling(1.0 / 255, name="scale_to_unit")(inputs)
    if normalization is not None:
        mean = np.asarray(normalization["mean"], dtype="float32")
        variance = np.broadcast_to(np.asarray(normalization["variance"], dtype="float32"), mean.shape)
        axis = -1 if mean.ndim == 1 else (1, 2, 3)
        x = layers.Normalization(axis=axis, mean=mean, variance=variance, name="normalize")(x)
    return inputs, x
