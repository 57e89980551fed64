"""The CNNs of the four studies (``../shared/seeds``), each as its paper describes it.

* ``varol_cnn1`` … ``varol_cnn4``: Varol Malkoçoğlu & İşeri (2024), Approach 1 (their Approach 3,
  ``vgg16`` and ``resnet50``, is in :mod:`leukobench.models.transfer`).
* ``abed_cnn``: Abed (2022, thesis); ``vgg19`` and ``densenet169`` are transfer models.
* ``rezayi_cnn``: Rezayi et al. (2021).
* ``zhang_cnn``: Zhang (2024).

The flattened conv output of each is the layer named ``features``, so its feature extractor (FEM-k
in Varol's Approach 2) is ``Model(model.input, model.get_layer("features").output)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leukobench.models.layers import check_head, output_layer, scaled_input
from leukobench.models.registry import register_model

if TYPE_CHECKING:
    import keras


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

    inputs, x = scaled_input(input_shape, normalization)
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

    inputs, x = scaled_input(input_shape, normalization)
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(128, 3, activation="relu", name="conv3")(x)
    x = layers.Flatten(name="features")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    return Model(inputs, output_layer(x, n_classes, head), name="abed_cnn")


def _varol_classifier(inputs, x, n_classes: int, name: str, head: str = "auto") -> "keras.Model":
    """Varol's Approach 1 classifier on a conv body: flatten (``features``), FC 256 → 128 ReLU, head."""
    from keras import Model, layers

    x = layers.Flatten(name="features")(x)
    x = layers.Dense(256, activation="relu", name="fc1")(x)
    x = layers.Dense(128, activation="relu", name="fc2")(x)
    return Model(inputs, output_layer(x, n_classes, head), name=name)


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
        input_shape: (height, width, channels); at least its registered ``min_input_size`` a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import layers

    inputs, x = scaled_input(input_shape, normalization)
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
        input_shape: (height, width, channels); at least its registered ``min_input_size`` a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    inputs, x = scaled_input(input_shape, normalization)
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
        input_shape: (height, width, channels); at least its registered ``min_input_size`` a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import layers

    inputs, x = scaled_input(input_shape, normalization)
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
        input_shape: (height, width, channels); at least its registered ``min_input_size`` a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its flattened conv features are the layer named ``features``.
    """
    from keras import Model, layers

    inputs, x = scaled_input(input_shape, normalization)
    for block, filters in enumerate((128, 64, 32, 16, 8), start=1):
        for i in (1, 2):
            x = layers.Conv2D(filters, 2, padding="same", activation="relu", name=f"conv{block}_{i}")(x)
            x = layers.BatchNormalization(name=f"bn{block}_{i}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"pool{block}")(x)
        x = layers.Dropout(0.1, name=f"dropout{block}")(x)
    x = layers.Flatten(name="features")(x)
    x = layers.Dense(1024, activation="relu", name="fc1")(x)
    return Model(inputs, output_layer(x, n_classes, head), name="rezayi_cnn")


@register_model(min_input_size=28)  # 28 →24 →12 →8 →4 →2 →1
def zhang_cnn(input_shape: tuple[int, int, int], n_classes: int = 2, head: str = "auto",
               normalization: dict | None = None) -> "keras.Model":
    """Zhang (2024) CNN: conv 64@5x5, 32@5x5, 128@3x3, each followed by a 2x2 max-pool; FC 128,
    dropout 0.5, output.

    Valid padding (Keras' default; the paper does not say); at the paper's 100 px the features
    are 10²·128 = 12800 long.

    Args:
        input_shape: (height, width, channels); at least its registered ``min_input_size`` a side.
            Zhang uses 100x100 grayscale (1 channel).
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

    check_head(head, n_classes)
    inputs, x = scaled_input(input_shape, normalization)
    for i, (filters, kernel) in enumerate([(64, 5), (32, 5), (128, 3)], start=1):
        x = layers.Conv2D(filters, kernel, activation="relu", name=f"conv{i}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="features")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    return Model(inputs, output_layer(x, n_classes, head), name="zhang_cnn")
