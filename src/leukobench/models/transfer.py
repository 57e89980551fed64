"""Transfer learning: a keras.applications conv base (include_top=False) + a small classifier.

* ``vgg16``, ``resnet50``: Varol Malkoçoğlu & İşeri (2024), Approach 3.
* ``vgg19``, ``densenet169``: Abed (2022, thesis).
* ``efficientnetv2b0`` (ImageNet fine-tuning, or from scratch with ``weights: null``) and
  ``efficientnetv2b0_scratch`` (always from scratch, so both can share a grid; not a transfer model:
  its base's layers are its own): the reference's modern architecture (``presets/reference.yaml``),
  which takes the reference recipe's training options (``recipe``).

Each applies its Keras application's own ``preprocess_input`` to the 0–255 RGB pixels. Their
ImageNet weights files: where they are and what they hash to, :mod:`leukobench.models.weights`;
fetching them, :mod:`leukobench.models.weights_fetch`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from leukobench.models.layers import check_head, output_layer
from leukobench.models.registry import MODELS, Application, Builder, check_min_size, register_model, transfer_models
from leukobench.models.weights import find_weights, missing_message, weights_folder, weights_url

if TYPE_CHECKING:
    import keras

#: The smallest image side keras.applications builds its bases for (``include_top=False``): every
#: model here registers it as its ``min_input_size``.
APPLICATION_MIN_SIZE = 32

# ImageNet weights are never downloaded here (a training job may run without network): the
# workflow's local rule imagenet_weights fetches them first (leukobench.models.weights_fetch), into
# Keras' cache (leukobench.models.weights.keras_cache_dir) or training.weights_folder.


def _application(name: str) -> Application:
    """The keras.applications base of transfer model ``name`` (ValueError for any other model)."""
    application = MODELS.attribute(name, "application")
    if application is None:
        raise ValueError(f"model '{name}' is not a transfer model; transfer models: {', '.join(transfer_models())}")
    return application


def resolve_weights(name: str, weights: str | os.PathLike | None) -> str | None:
    """The ``weights`` argument for keras.applications: None or a local file path, never
    "imagenet": Keras would download, and a training job may have no network. For "imagenet" the
    file is looked up (leukobench.models.weights.find_weights); a missing one raises
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
    check_min_size(name, input_shape)
    check_head(head, n_classes)
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
    return Model(inputs, output_layer(x, n_classes, head), name=name)


_TRANSFER_ARGS_DOC = """
    Args:
        input_shape: (height, width, channels) of the uint8 images, channels 3 (RGB) or 1
            (grayscale, repeated to RGB); at least its registered ``min_input_size`` a side.
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
    return register_model(min_input_size=APPLICATION_MIN_SIZE, application=application,
                          recipe=recipe)(build)


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


@register_model(min_input_size=APPLICATION_MIN_SIZE, recipe=True)
def efficientnetv2b0_scratch(input_shape: tuple[int, int, int], n_classes: int = 2,
                             head: str = "auto") -> "keras.Model":
    """``efficientnetv2b0`` trained from scratch, always (random weights, every layer trained,
    batch norms too), so that a grid can hold it beside the ImageNet fine-tuned ``efficientnetv2b0``
    (``training.weights`` is one value per run). Not a transfer model: it takes no ``weights``, needs
    no weights file, and its layers are the model's own (no nested ``base``).

    Args:
        input_shape: (height, width, channels), channels 3 or 1; at least its registered ``min_input_size`` a side.
        n_classes: number of classes.
        head: the output layer, one of :data:`HEADS` (default "auto": sigmoid unit for 2 classes).

    Returns:
        An uncompiled model; its pooled conv features are the layer named ``features``.
    """
    return _transfer_model("efficientnetv2b0_scratch", input_shape, n_classes, None, -1, classifier="reference",
                           head=head, application=EFFICIENTNETV2B0, base_name=None)
