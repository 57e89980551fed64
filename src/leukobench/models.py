"""The model registry: one name, one Keras builder.

A builder is one function of the functional API that takes the input shape and the number of
classes and returns an uncompiled ``keras.Model``. Inputs are raw uint8 pixels; every model
scales them to [0, 1] in its first layer, so a saved model applies to images exactly as the store
holds them. Two classes give one sigmoid unit (as in the studies), more give a softmax.

Keras is imported inside the builders, so listing or checking model names (as the workflow does
when it validates the config) does not start TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

Builder = Callable[..., "keras.Model"]
_REGISTRY: dict[str, Builder] = {}


def register_model(builder: Builder) -> Builder:
    """Add a builder to the registry under its function name."""
    if builder.__name__ in _REGISTRY:
        raise ValueError(f"model '{builder.__name__}' is registered twice")
    _REGISTRY[builder.__name__] = builder
    return builder


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_REGISTRY)


def create_model(name: str, input_shape: tuple[int, int, int], n_classes: int = 2, **kwargs) -> "keras.Model":
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        input_shape: (height, width, channels) of the uint8 images.
        n_classes: 2 for a sigmoid head, more for softmax.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model '{name}'; registered models: {', '.join(list_models())}")
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    return _REGISTRY[name](input_shape=tuple(input_shape), n_classes=n_classes, **kwargs)


def _head(x, n_classes: int):
    """The output layer: one sigmoid unit for two classes, softmax otherwise."""
    from keras import layers

    if n_classes == 2:
        return layers.Dense(1, activation="sigmoid", name="output")(x)
    return layers.Dense(n_classes, activation="softmax", name="output")(x)


def _scaled_input(input_shape: tuple[int, int, int]):
    from keras import layers

    inputs = layers.Input(shape=input_shape, name="pixels")
    return inputs, layers.Rescaling(1.0 / 255, name="scale_to_unit")(inputs)


@register_model
def varol_cnn1(input_shape: tuple[int, int, int], n_classes: int = 2) -> "keras.Model":
    """Varol Malkoçoğlu & İşeri (2024), Approach 1, CNN-1: 3 conv layers, FC 256 → 128.

    The paper gives the layer count, ReLU, the FC sizes, the sigmoid output and the flattened
    length (Table 6: 50176 at 32 px, 123904 at 48 px = (size - 4)² x 64), which fixes the body:
    two valid 3x3 convolutions and a same-padded one with 64 filters, no pooling.

    Args:
        input_shape: (height, width, channels).
        n_classes: number of classes.

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import Model, layers

    inputs, x = _scaled_input(input_shape)
    # convolutional feature extractor (FEM-1 in Approach 2)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Flatten(name="features")(x)
    # classifier
    x = layers.Dense(256, activation="relu", name="fc1")(x)
    x = layers.Dense(128, activation="relu", name="fc2")(x)
    return Model(inputs, _head(x, n_classes), name="varol_cnn1")


@register_model
def abed_cnn(input_shape: tuple[int, int, int], n_classes: int = 2) -> "keras.Model":
    """Abed (2022) simple CNN (thesis Fig. 4.8): conv 32/64/128 3x3 with max-pooling, FC 128.

    Args:
        input_shape: (height, width, channels).
        n_classes: number of classes.

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import Model, layers

    inputs, x = _scaled_input(input_shape)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(128, 3, activation="relu", name="conv3")(x)
    x = layers.Flatten(name="features")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    return Model(inputs, _head(x, n_classes), name="abed_cnn")
