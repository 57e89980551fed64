"""The reference's own small CNN (``presets/reference.yaml``), trained with the reference recipe.

``reference_resnet_small`` takes the reference recipe's training options (``recipe``,
:mod:`leukobench.learn.recipe`, which stays with the training: it wraps a model for ``fit`` and is
no part of the saved model). The reference's modern architecture, EfficientNetV2-B0 (fine-tuned
or from scratch), is built on its keras.applications base with the transfer models
(:mod:`leukobench.models.transfer`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from leukobench.models.layers import output_layer, scaled_input
from leukobench.models.registry import check_min_size, register_model

if TYPE_CHECKING:
    import keras


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
        input_shape: (height, width, channels); at least its registered ``min_input_size`` a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its pooled conv features are the layer named ``features``.
    """
    from keras import Model, layers

    BN_MOMENTUM = 0.9  # Keras' 0.99 averages over ~100 steps: too slow for the few hundred steps of a small training
    check_min_size("reference_resnet_small", input_shape)  # same padding throughout: Keras would build any size
    inputs, x = scaled_input(input_shape, normalization)
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
    return Model(inputs, output_layer(x, n_classes, head), name="reference_resnet_small")
