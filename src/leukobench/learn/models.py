"""The model registry: one name, one Keras builder.

A builder is one function of the functional API that takes the input shape and the number of
classes and returns an uncompiled ``keras.Model``. Inputs are raw uint8 pixels; every model
scales them in its first layers, so a saved model applies to images exactly as the store holds
them: the models trained from scratch rescale to [0, 1], the transfer models (``vgg16``,
``resnet50``, ``vgg19``, ``densenet169``) apply their Keras application's own
``preprocess_input`` to the 0–255 RGB pixels. Two classes give one sigmoid unit (as in the
studies), more give a softmax; every builder's ``head`` keyword can ask for a softmax over two
classes instead (:data:`HEADS`). The flattened (or pooled) conv output is the layer named
``features``, so a model's feature extractor is ``Model(model.input, model.get_layer("features").output)``.

The builders are entries of :data:`MODELS` (a :class:`leukobench.registry.Registry`), each with its
minimum input size and, for the transfer models, its ``keras.applications`` base; :data:`MIN_INPUT_SIZE`,
and :func:`transfer_models` are read from it. Keras is imported inside the
builders, so listing or checking model names (as the workflow does when it validates the config)
does not start TensorFlow; neither does :data:`MIN_INPUT_SIZE`.

Registered models and their sources (``../shared/seeds``):

* ``varol_cnn1`` … ``varol_cnn4``, ``vgg16``, ``resnet50``: Varol Malkoçoğlu & İşeri (2024),
  Approaches 1 and 3.
* ``abed_cnn``, ``vgg19``, ``densenet169``: Abed (2022, thesis).
* ``rezayi_cnn``: Rezayi et al. (2021).
* ``zhang_cnn``: Zhang (2024).
* ``reference_resnet_small``, ``efficientnetv2b0`` (ImageNet fine-tuning or from scratch with
  ``weights: null``), ``efficientnetv2b0_scratch`` (always from scratch, so both can share a grid):
  the reference models of ``presets/reference.yaml``, which take the reference recipe's training
  options (``recipe``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from leukobench.learn.weights import find_weights, missing_message, weights_folder, weights_url
from leukobench.registry import Registry

if TYPE_CHECKING:
    import keras

Builder = Callable[..., "keras.Model"]


@dataclass(frozen=True)
class Application:
    """The ``keras.applications`` conv base of a transfer model."""

    cls: str  # the keras.applications class, e.g. "VGG16"
    module: str  # its module under keras.applications, which has its preprocess_input
    url_folder: str  # the folder of its weights under Keras' URL (leukobench.learn.weights.KERAS_WEIGHTS_URL)
    weights_file: str  # Keras' cache file name of its ImageNet weights without the top


#: The registered models by name (the builder's function name). Attributes: ``min_input_size``,
#: the smallest image side the model accepts; ``transfer``, whether it is built on a
#: keras.applications base with ImageNet weights; ``application``, that base (None otherwise);
#: ``recipe``, whether the model takes the reference recipe's training options
#: (:data:`leukobench.plan.config.RECIPE_OPTIONS`: online augmentation, learning-rate schedule,
#: label smoothing): the reference models do, the studies' models are trained as the studies did.
MODELS: Registry[Builder] = Registry("model", attributes={"min_input_size": 1, "transfer": False, "application": None,
                                                          "recipe": False})

#: Smallest image side (height and width, pixels) each registered model accepts; smaller images
#: leave no pixels for a later convolution or pooling layer (or are refused by keras.applications).
#: A read-only view of :data:`MODELS`' ``min_input_size``; the workflow uses it to skip grid trials
#: that cannot build.
MIN_INPUT_SIZE: Mapping[str, int] = MODELS.view("min_input_size")

#: The output layers every builder's ``head`` keyword accepts: "auto" = one sigmoid unit for two
#: classes, a softmax otherwise; "sigmoid" = one sigmoid unit (two classes only); "softmax" = a
#: softmax over ``n_classes`` units even for two classes (Zhang's categorical cross-entropy).
HEADS = ("auto", "sigmoid", "softmax")



def register_model(builder: Builder | None = None, *, min_input_size: int = 1,
                   application: Application | None = None, recipe: bool = False):
    """Add a builder to :data:`MODELS` under its function name.

    Use as ``@register_model`` or ``@register_model(min_input_size=32)``; ``min_input_size`` is
    the smallest image side the model accepts (:data:`MIN_INPUT_SIZE`); ``application`` the
    keras.applications base of a transfer model (which makes it one: :func:`transfer_models`);
    ``recipe`` whether it takes the reference recipe's training options (:func:`recipe_models`).
    """
    def add(builder: Builder) -> Builder:
        return MODELS.register(builder.__name__, min_input_size=int(min_input_size),
                               transfer=application is not None, application=application,
                               recipe=bool(recipe))(builder)

    return add if builder is None else add(builder)


def list_models() -> list[str]:
    """The registered model names, sorted."""
    return MODELS.names()


def recipe_models() -> list[str]:
    """The models that take the reference recipe's training options (the reference models)."""
    return MODELS.names(recipe=True)


def builder_parameters(name: str) -> set[str]:
    """The keyword options of a registered builder besides ``input_shape`` and ``n_classes``
    (e.g. ``{"head", "weights", "trainable_layers"}`` for the transfer models); no Keras import."""
    return set(inspect.signature(MODELS.get(name)).parameters) - {"input_shape", "n_classes"}


def create_model(name: str, input_shape: tuple[int, int, int], n_classes: int = 2, **kwargs) -> "keras.Model":
    """Build a registered model.

    Args:
        name: a name from :func:`list_models`.
        input_shape: (height, width, channels) of the uint8 images.
        n_classes: 2 for a sigmoid head, more for softmax (see ``head``).
        **kwargs: the builder's options (:func:`builder_parameters`): ``head`` (every model, one of
            :data:`HEADS`), ``weights`` and ``trainable_layers`` (the transfer models).

    Raises:
        ValueError: unknown name, bad shape, class count or head, or images smaller than
            ``MIN_INPUT_SIZE[name]``.
    """
    builder = MODELS.get(name)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    if "head" in kwargs:
        _check_head(kwargs["head"], n_classes)
    _check_min_size(name, input_shape)
    return builder(input_shape=tuple(input_shape), n_classes=n_classes, **kwargs)


def _check_min_size(name: str, input_shape: tuple[int, int, int]) -> None:
    minimum = MODELS.attribute(name, "min_input_size")
    height, width = input_shape[0], input_shape[1]
    if min(height, width) < minimum:
        raise ValueError(
            f"model '{name}' needs images of at least {minimum}x{minimum} pixels, "
            f"got {height}x{width} (input_shape {tuple(input_shape)})"
        )


def _check_head(head: str, n_classes: int) -> None:
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
    if head == "sigmoid" and n_classes != 2:
        raise ValueError(f"head 'sigmoid' (one sigmoid unit) needs 2 classes, got {n_classes}")


def _head(x, n_classes: int, head: str = "auto"):
    """The output layer: one sigmoid unit for two classes, softmax otherwise (``head="auto"``);
    ``head="softmax"`` gives a softmax over ``n_classes`` units even for two classes."""
    from keras import layers

    _check_head(head, n_classes)
    if head == "sigmoid" or (head == "auto" and n_classes == 2):
        return layers.Dense(1, activation="sigmoid", name="output")(x)
    return layers.Dense(n_classes, activation="softmax", name="output")(x)


def _scaled_input(input_shape: tuple[int, int, int], normalization: dict | None = None):
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


@register_model(min_input_size=5)  # two valid 3x3 convolutions: side - 4 >= 1
def varol_cnn1(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
               normalization: dict | None = None) -> "keras.Model":
    """Varol Malkoçoğlu & İşeri (2024), Approach 1, CNN-1: 3 conv layers, FC 256 → 128.

    The paper gives the layer count, ReLU, the FC sizes, the sigmoid output and the flattened
    length (Table 6: 50176 at 32 px, 123904 at 48 px = (size - 4)² x 64), which fixes the body:
    two valid 3x3 convolutions and a same-padded one with 64 filters, no pooling.

    Args:
        input_shape: (height, width, channels).
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import layers

    inputs, x = _scaled_input(input_shape, normalization)
    # convolutional feature extractor (FEM-1 in Approach 2)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    return _varol_classifier(inputs, x, n_classes, "varol_cnn1", head)


@register_model(min_input_size=18)  # 18 -conv-> 16 -pool-> 8 -conv-> 6 -pool-> 3 -conv-> 1
def abed_cnn(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
               normalization: dict | None = None) -> "keras.Model":
    """Abed (2022) simple CNN (thesis Fig. 4.8): conv 32/64/128 3x3 with max-pooling, FC 128.

    Args:
        input_shape: (height, width, channels).
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import Model, layers

    inputs, x = _scaled_input(input_shape, normalization)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(128, 3, activation="relu", name="conv3")(x)
    x = layers.Flatten(name="features")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    return Model(inputs, _head(x, n_classes, head), name="abed_cnn")


def _varol_classifier(inputs, x, n_classes: int, name: str, head: str = "auto") -> "keras.Model":
    """Varol's Approach 1 classifier on a conv body: flatten (``features``), FC 256 → 128 ReLU, head."""
    from keras import Model, layers

    x = layers.Flatten(name="features")(x)
    x = layers.Dense(256, activation="relu", name="fc1")(x)
    x = layers.Dense(128, activation="relu", name="fc2")(x)
    return Model(inputs, _head(x, n_classes, head), name=name)


@register_model(min_input_size=9)  # four valid 3x3 convolutions: side - 8 >= 1
def varol_cnn2(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
               normalization: dict | None = None) -> "keras.Model":
    """Varol Malkoçoğlu & İşeri (2024), Approach 1, CNN-2: 6 conv layers, FC 256 → 128.

    The paper gives the layer count, ReLU, the FC sizes and the flattened length, not the filter
    counts or pooling. Table 6: 73728 at 32 px and 204800 at 48 px. 73728 = 24² x 128 and
    204800 = 40² x 128: both sides shrink by exactly 8 with 128 channels at the end, so there is
    no pooling (a pool would halve the side, not subtract a constant) and four of the six 3x3
    convolutions are valid (-2 each), two are same-padded. The body repeats CNN-1's
    (valid, valid, same) triple, the second one with 128 filters::

        conv1  32 valid   32→30   48→46
        conv2  64 valid     →28     →44
        conv3  64 same      →28     →44      (= CNN-1's body)
        conv4 128 valid     →26     →42
        conv5 128 valid     →24     →40
        conv6 128 same      →24     →40      flatten: 24²·128 = 73728, 40²·128 = 204800

    Args:
        input_shape: (height, width, channels); at least 9 px a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import layers

    inputs, x = _scaled_input(input_shape, normalization)
    plan = [(32, "valid"), (64, "valid"), (64, "same"), (128, "valid"), (128, "valid"), (128, "same")]
    for i, (filters, padding) in enumerate(plan, start=1):
        x = layers.Conv2D(filters, 3, padding=padding, activation="relu", name=f"conv{i}")(x)
    return _varol_classifier(inputs, x, n_classes, "varol_cnn2", head)


def _varol_blocks(x, pool_last: bool):
    """CNN-3's body: three blocks (valid, same, same) 3x3 convs of 16, 32, 64 filters, pooled between."""
    from keras import layers

    for block, filters in enumerate((16, 32, 64), start=1):
        for i, padding in enumerate(("valid", "same", "same"), start=1):
            x = layers.Conv2D(filters, 3, padding=padding, activation="relu", name=f"conv{block}_{i}")(x)
        if block < 3 or pool_last:
            x = layers.MaxPooling2D(2, name=f"pool{block}")(x)
    return x


@register_model(min_input_size=18)  # 18 →16 →8 →6 →3 →1
def varol_cnn3(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
               normalization: dict | None = None) -> "keras.Model":
    """Varol Malkoçoğlu & İşeri (2024), Approach 1, CNN-3: 9 conv layers, FC 256 → 128.

    Table 6: 1024 at 32 px and 4096 at 48 px. The ratio 4 = 2² means the final side doubles
    from 32 to 48 px with a fixed channel count; with 64 channels (the count CNN-1 ends with)
    that is 4² x 64 = 1024 and 8² x 64 = 4096. Pooling is needed (a side of 4 from 32 px), and
    three VGG-like blocks of three 3x3 convolutions (valid, same, same; 16, 32, 64 filters) with
    a 2x2 max-pool between blocks give exactly that (floor rounding at 13 → 6)::

        block 1: 16 valid, 16 same, 16 same   32→30   48→46;  pool →15  →23
        block 2: 32 valid, 32 same, 32 same     →13     →21;  pool  →6  →10
        block 3: 64 valid, 64 same, 64 same     → 4     → 8   flatten: 4²·64 = 1024, 8²·64 = 4096

    Args:
        input_shape: (height, width, channels); at least 18 px a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    inputs, x = _scaled_input(input_shape, normalization)
    x = _varol_blocks(x, pool_last=False)
    return _varol_classifier(inputs, x, n_classes, "varol_cnn3", head)


@register_model(min_input_size=30)  # 30 →28 →14 →12 →6 →4 →2 →1
def varol_cnn4(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
               normalization: dict | None = None) -> "keras.Model":
    """Varol Malkoçoğlu & İşeri (2024), Approach 1, CNN-4: 10 conv layers, FC 256 → 128.

    Table 6: 64 at 32 px and 576 at 48 px. The ratio 9 = 3² means final sides 1 and 3 with 64
    channels (1² x 64, 3² x 64). CNN-3's body ends at 4 / 8 px with 64 channels; one more valid
    3x3 convolution (64 filters) takes that to 2 / 6 and a last 2x2 max-pool to 1 / 3::

        CNN-3's nine layers                   32→4    48→8
        conv4_1 64 valid                        →2      →6;   pool4 →1  →3
                                              flatten: 1²·64 = 64, 3²·64 = 576

    Args:
        input_shape: (height, width, channels); at least 30 px a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import layers

    inputs, x = _scaled_input(input_shape, normalization)
    x = _varol_blocks(x, pool_last=False)
    x = layers.Conv2D(64, 3, activation="relu", name="conv4_1")(x)
    x = layers.MaxPooling2D(2, name="pool4")(x)
    return _varol_classifier(inputs, x, n_classes, "varol_cnn4", head)


@register_model(min_input_size=32)  # five 2x2 stride-2 pools: 32 →16 →8 →4 →2 →1
def rezayi_cnn(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
               normalization: dict | None = None) -> "keras.Model":
    """Rezayi et al. (2021), the proposed 10-conv CNN (Section 2.4, Fig. 5).

    Two 2x2 convolutions each of 128, 64, 32, 16 and 8 filters, same padding, ReLU, batch
    normalisation after every convolution; a 2x2 max-pool with stride 2 after each pair and a
    dropout of 0.1 after every pool; flatten (``features``), FC 1024 ReLU, output. The paper's
    output is a 2-unit softmax (``head="softmax"``); the default is the usual head (one sigmoid
    unit for two classes).
    The order conv (ReLU) → batch norm follows the text ("batch-normalization layers ... after all
    convolution layers"). At the paper's 70 px the features are 2²·8 = 32 long.

    Args:
        input_shape: (height, width, channels); at least 32 px a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import Model, layers

    inputs, x = _scaled_input(input_shape, normalization)
    for block, filters in enumerate((128, 64, 32, 16, 8), start=1):
        for i in (1, 2):
            x = layers.Conv2D(filters, 2, padding="same", activation="relu", name=f"conv{block}_{i}")(x)
            x = layers.BatchNormalization(name=f"bn{block}_{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"pool{block}")(x)
        x = layers.Dropout(0.1, name=f"dropout{block}")(x)
    x = layers.Flatten(name="features")(x)
    x = layers.Dense(1024, activation="relu", name="fc1")(x)
    return Model(inputs, _head(x, n_classes, head), name="rezayi_cnn")


@register_model(min_input_size=28)  # 28 →24 →12 →8 →4 →2 →1
def zhang_cnn(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
               normalization: dict | None = None) -> "keras.Model":
    """Zhang (2024) CNN: conv 64@5x5, 32@5x5, 128@3x3, each followed by a 2x2 max-pool; FC 128,
    dropout 0.5, output.

    Valid padding (Keras' default; the paper does not say); at the paper's 100 px the features
    are 10²·128 = 12800 long.

    Args:
        input_shape: (height, width, channels); at least 28 px a side. Zhang uses 100x100
            grayscale (1 channel).
        n_classes: number of classes.
        head: ``"auto"`` = the usual head (one sigmoid unit for two classes, softmax otherwise;
            train with binary cross-entropy for two classes); ``"softmax"`` = always a softmax
            over ``n_classes`` units, as in the paper, even for two classes (train with
            categorical cross-entropy on one-hot targets, or sparse categorical on labels);
            ``"sigmoid"`` = one sigmoid unit (two classes only). Same keyword on every model.

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import Model, layers

    _check_head(head, n_classes)
    inputs, x = _scaled_input(input_shape, normalization)
    for i, (filters, kernel) in enumerate([(64, 5), (32, 5), (128, 3)], start=1):
        x = layers.Conv2D(filters, kernel, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="features")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    return Model(inputs, _head(x, n_classes, head), name="zhang_cnn")


@register_model(min_input_size=8, recipe=True)  # two stride-2 stages: 8 →4 →2
def reference_resnet_small(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
                           normalization: dict | None = None) -> "keras.Model":
    """The reference's small residual CNN (``presets/reference.yaml``), quick on a CPU.

    A ResNet in miniature (He et al. 2016): a 3x3 stem of 32 filters (stride 2 from 64 px up, as
    ResNets downsample first: it quarters the cost, and a 64 px trial keeps 32 px of detail; stride 1
    below, as CIFAR's ResNets at 32 px), then three stages of one residual block each (two 3x3 convolutions with batch
    normalisation; 32, 64 and 128 filters; the second and third stages halve the side with a
    stride-2 convolution and a 1x1 projection on the shortcut), global average pooling
    (``features``), dropout 0.2, head. About 0.3 M weights; batch normalisation and the shortcuts
    let it train at the learning rates of the recipe without the studies' large dense layers
    (Varol's CNN-1 has 12.8 M weights at 32 px, nearly all in its first dense layer). The batch
    norms' moving averages use momentum 0.9 (Keras' 0.99 lags behind a training of a few hundred
    steps, and the early epochs then score one class at inference).

    Args:
        input_shape: (height, width, channels); at least 8 px a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its pooled conv features are the layer named ``features``.
    """
    from keras import Model, layers

    BN_MOMENTUM = 0.9  # Keras' 0.99 averages over ~100 steps: too slow for the few hundred steps of a small training
    _check_min_size("reference_resnet_small", input_shape)  # same padding throughout: Keras would build any size
    inputs, x = _scaled_input(input_shape, normalization)
    stem_stride = 2 if min(input_shape[:2]) >= 64 else 1
    x = layers.Conv2D(32, 3, strides=stem_stride, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, (filters, stride) in enumerate([(32, 1), (64, 2), (128, 2)], start=1):
        shortcut = x
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"stage{stage}_conv1")(x)
        y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"stage{stage}_bn1")(y)
        y = layers.Activation("relu", name=f"stage{stage}_relu1")(y)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"stage{stage}_conv2")(y)
        y = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"stage{stage}_bn2")(y)
        if stride != 1 or shortcut.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"stage{stage}_project")(shortcut)
            shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"stage{stage}_project_bn")(shortcut)
        x = layers.Add(name=f"stage{stage}_add")([shortcut, y])
        x = layers.Activation("relu", name=f"stage{stage}_out")(x)
    x = layers.GlobalAveragePooling2D(name="features")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    return Model(inputs, _head(x, n_classes, head), name="reference_resnet_small")


# --------------------------------------------------------------------------------------------
# Transfer learning: a keras.applications conv base (include_top=False) + a small classifier.

# ImageNet weights are never downloaded here (a training job may run without network): the
# workflow's local rule imagenet_weights fetches them first (leukobench.learn.weights_fetch), into
# Keras' cache (leukobench.learn.weights.keras_cache_dir) or training.weights_folder.


def _application(name: str) -> Application:
    """The keras.applications base of transfer model ``name`` (ValueError for any other model)."""
    application = MODELS.attribute(name, "application")
    if application is None:
        raise ValueError(f"model '{name}' is not a transfer model; transfer models: {', '.join(transfer_models())}")
    return application


def transfer_models() -> list[str]:
    """The registered models built on a keras.applications base (they take ``weights``)."""
    return MODELS.names(transfer=True)


def resolve_weights(name: str, weights: str | os.PathLike | None) -> str | None:
    """The ``weights`` argument for keras.applications: None or a local file path, never
    "imagenet": Keras would download, and a training job may have no network. For "imagenet" the
    file is looked up (leukobench.learn.weights.find_weights); a missing one raises
    FileNotFoundError naming the file, the folder and the URL, and what to do."""
    if weights is None:
        return None
    if str(weights) == "imagenet":
        application = _application(name)
        found = find_weights(application.weights_file)
        if found is not None:
            return str(found)
        raise FileNotFoundError(missing_message(application.weights_file, weights_folder(),
                                                weights_url(application.url_folder, application.weights_file), name))
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"model '{name}': weights file '{path}' does not exist (weights must be 'imagenet', "
            "a path to a local .h5 weights file, or null)"
        )
    return str(path)


def _transfer_model(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    weights: str | os.PathLike | None,
    trainable_layers: int,
    classifier: str,
    head: str,
    application: Application | None = None,
    base_name: str = "base",
) -> "keras.Model":
    """keras.applications base + classifier; ``classifier`` is "varol", "abed" or "reference"
    (global average pooling, dropout 0.2, head: the keras.applications classifiers' own shape).
    ``application`` defaults to the registered one; ``base_name=None`` builds the base's layers
    into the model itself (no nested ``base``: a network trained from scratch, not a transfer base)."""
    _check_min_size(name, input_shape)
    _check_head(head, n_classes)
    height, width, channels = input_shape
    if channels not in (1, 3):
        raise ValueError(f"model '{name}' takes RGB (3 channels) or grayscale (1) images, got {channels} channels")
    if isinstance(trainable_layers, bool) or not isinstance(trainable_layers, int) or trainable_layers < -1:
        raise ValueError(f"model '{name}': trainable_layers must be an integer >= -1, got {trainable_layers!r}")
    resolved = resolve_weights(name, weights)

    import importlib

    import keras
    from keras import layers

    application = application or _application(name)
    preprocess_input = importlib.import_module(f"keras.applications.{application.module}").preprocess_input

    inputs = layers.Input(shape=input_shape, name="pixels")
    x = inputs
    if channels == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = preprocess_input(x)  # the application's own preprocessing, on 0–255 RGB
    if base_name is None:  # from scratch, its layers in this model: every one trains, batch norms too
        if resolved is not None or trainable_layers != -1:
            raise ValueError(f"model '{name}' is trained from scratch: weights must be None and trainable_layers -1")
        x = getattr(keras.applications, application.cls)(include_top=False, weights=None, input_tensor=x).output
        return _transfer_classifier(inputs, x, n_classes, name, classifier, head)
    if application.module == "efficientnet_v2":  # its `name` picks the variant's blocks: renamed after
        base = getattr(keras.applications, application.cls)(include_top=False, weights=resolved,
                                                            input_shape=(height, width, 3))
        base.name = base_name
    else:
        base = getattr(keras.applications, application.cls)(
            include_top=False, weights=resolved, input_shape=(height, width, 3), name=base_name
        )
    n_base = len(base.layers)
    if trainable_layers > n_base:
        raise ValueError(f"model '{name}': trainable_layers={trainable_layers} but the base has only {n_base} layers")
    if trainable_layers == 0:
        base.trainable = False
    else:
        base.trainable = True
        if trainable_layers > 0:
            for layer in base.layers[: n_base - trainable_layers]:
                layer.trainable = False
    if resolved is not None:
        # Keras' fine-tuning advice: the batch norms of a pretrained base stay frozen, which keeps
        # them in inference mode (a non-trainable BatchNormalization uses its moving statistics even
        # in fit()). Calling the base with training=False would not do: in Keras 3 the outer call's
        # training=True overrides it. A base trained from scratch (weights=None) trains its batch norms.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    return _transfer_classifier(inputs, base(x), n_classes, name, classifier, head)


def _transfer_classifier(inputs, x, n_classes: int, name: str, classifier: str, head: str) -> "keras.Model":
    """The classifier on a conv base's output ``x``: "varol", "abed" or "reference" (see :func:`_transfer_model`)."""
    from keras import Model, layers

    if classifier == "varol":
        x = layers.Flatten(name="features")(x)
        x = layers.Dense(256, activation="relu", name="fc1")(x)
        x = layers.Dense(128, activation="relu", name="fc2")(x)
    elif classifier == "reference":
        x = layers.GlobalAveragePooling2D(name="features")(x)
        x = layers.Dropout(0.2, name="dropout")(x)
    else:
        x = layers.GlobalAveragePooling2D(name="features")(x)
        x = layers.Dense(128, activation="relu", name="fc1")(x)
        x = layers.Dropout(0.5, name="dropout")(x)
    return Model(inputs, _head(x, n_classes, head), name=name)


_TRANSFER_ARGS_DOC = """
    Args:
        input_shape: (height, width, channels) of the uint8 images, channels 3 (RGB) or 1
            (grayscale, repeated to RGB); at least 32 px a side.
        n_classes: number of classes.
        weights: ``"imagenet"`` (read from Keras' cache, ``$KERAS_HOME/models`` or
            ``~/.keras/models``, or from ``$LEUKOBENCH_WEIGHTS_DIR``; never downloaded: a missing
            file raises FileNotFoundError naming it, the folder and the URL), a path to a local
            .h5 weights file (no top), or None for random initialisation.
        trainable_layers: 0 = the base is frozen (feature extraction); N > 0 = the top N layers
            of the base (``model.get_layer("base").layers[-N:]``) are trainable (fine-tuning);
            -1 = the whole base is trainable (use with ``weights=None`` to train from scratch,
            as Rezayi et al. did; with ``weights=None`` and 0 the random base stays frozen). With
            pretrained weights the base's BatchNormalization layers (ResNet50, DenseNet169) stay
            frozen, in inference mode, whatever N.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; the base is the layer named ``base``, its flattened/pooled output the
        layer named ``features``.
"""


def _register_transfer_model(name: str, application: Application, classifier: str, summary: str,
                             recipe: bool = False) -> Builder:
    """Register the builder of one keras.applications model (``classifier``: "varol" or "abed")."""
    def build(
        input_shape: tuple[int, int, int],
        n_classes: int = 2,
        weights: str | None = "imagenet",
        trainable_layers: int = 0,
        head: str = "auto",
    ) -> "keras.Model":
        return _transfer_model(name, input_shape, n_classes, weights, trainable_layers, classifier=classifier, head=head)

    build.__name__ = build.__qualname__ = name
    build.__doc__ = summary + _TRANSFER_ARGS_DOC
    return register_model(min_input_size=32, application=application, recipe=recipe)(build)  # keras.applications' minimum


vgg16 = _register_transfer_model("vgg16", Application(
    "VGG16", "vgg16", "vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"), "varol", (
    "Varol Malkoçoğlu & İşeri (2024), Approach 3: VGG16 conv base, flatten (``features``),\n"
    "    FC 256 → 128 ReLU (the classifier of their CNNs), head.\n"))
resnet50 = _register_transfer_model("resnet50", Application(
    "ResNet50", "resnet50", "resnet", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"), "varol", (
    "Varol Malkoçoğlu & İşeri (2024), Approach 3: ResNet50 conv base, flatten (``features``),\n"
    "    FC 256 → 128 ReLU (the classifier of their CNNs), head.\n"))
vgg19 = _register_transfer_model("vgg19", Application(
    "VGG19", "vgg19", "vgg19", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"), "abed", (
    "Abed (2022): VGG19 conv base, global average pooling (``features``), FC 128 ReLU, dropout\n"
    "    0.5, head (the thesis names an FC classifier with dropout, not its size; 128 as in abed_cnn).\n"))
densenet169 = _register_transfer_model("densenet169", Application(
    "DenseNet169", "densenet", "densenet", "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5"), "abed", (
    "Abed (2022): DenseNet169 conv base, global average pooling (``features``), FC 128 ReLU,\n"
    "    dropout 0.5, head (same classifier as ``vgg19``).\n"))

EFFICIENTNETV2B0 = Application("EfficientNetV2B0", "efficientnet_v2", "efficientnet_v2", "efficientnetv2-b0_notop.h5")
efficientnetv2b0 = _register_transfer_model("efficientnetv2b0", EFFICIENTNETV2B0, "reference", (
    "The reference's modern architecture (``presets/reference.yaml``): the EfficientNetV2-B0 base\n"
    "    (Tan & Le 2021; 5.9 M weights; its own rescaling of the 0–255 pixels inside), global\n"
    "    average pooling (``features``), dropout 0.2, head: the shape of keras.applications' own\n"
    "    classifier. Fine-tuned from ImageNet (``trainable_layers: -1``, batch norms frozen) or trained\n"
    "    from scratch (``weights: null``); takes the reference recipe's training options.\n"), recipe=True)


@register_model(min_input_size=32, recipe=True)  # keras.applications' minimum
def efficientnetv2b0_scratch(input_shape: tuple[int, int, int], n_classes: int = 2,
                             head: str = "auto") -> "keras.Model":
    """``efficientnetv2b0`` trained from scratch, always (random weights, every layer trained,
    batch norms too), so that a grid can hold it beside the ImageNet fine-tuned ``efficientnetv2b0``
    (``training.weights`` is one value per run). Not a transfer model: it takes no ``weights``, needs
    no weights file, and its layers are the model's own (no nested ``base``).

    Args:
        input_shape: (height, width, channels), channels 3 or 1; at least 32 px a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its pooled conv features are the layer named ``features``.
    """
    return _transfer_model("efficientnetv2b0_scratch", input_shape, n_classes, None, -1, classifier="reference",
                           head=head, application=EFFICIENTNETV2B0, base_name=None)

