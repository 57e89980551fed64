"""The model registry: one name, one Keras builder, and the calls on it.

A builder is one function of the functional API that takes the input shape and the number of
classes and returns an uncompiled ``keras.Model`` (:mod:`leukobench.models` lists them by family).
The builders are entries of :data:`MODELS` (a :class:`leukobench.registry.Registry`), each with its
minimum input size and, for the transfer models, its ``keras.applications`` base; :data:`MIN_INPUT_SIZE`,
:func:`transfer_models` and :func:`recipe_models` are read from it. Keras is imported inside the
builders, so listing or checking model names (as the workflow does when it validates the config)
does not start TensorFlow; neither does :data:`MIN_INPUT_SIZE`.

The minimum input size of a model is declared once, where it is registered
(``@register_model(min_input_size=...)``), and read from :data:`MIN_INPUT_SIZE` everywhere else.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from leukobench.models.layers import check_head
from leukobench.registry import Registry

if TYPE_CHECKING:
    import keras

Builder = Callable[..., "keras.Model"]


@dataclass(frozen=True)
class Application:
    """The ``keras.applications`` conv base of a transfer model."""

    cls: str  # the keras.applications class, e.g. "VGG16"
    module: str  # its module under keras.applications, which has its preprocess_input
    url_folder: str  # the folder of its weights under Keras' URL (leukobench.models.weights.KERAS_WEIGHTS_URL)
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


def transfer_models() -> list[str]:
    """The registered models built on a keras.applications base (they take ``weights``)."""
    return MODELS.names(transfer=True)


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
        check_head(kwargs["head"], n_classes)
    check_min_size(name, input_shape)
    return builder(input_shape=tuple(input_shape), n_classes=n_classes, **kwargs)


def check_min_size(name: str, input_shape: tuple[int, int, int]) -> None:
    """ValueError when ``input_shape`` is smaller than model ``name``'s registered minimum (:data:`MIN_INPUT_SIZE`)."""
    minimum = MODELS.attribute(name, "min_input_size")
    height, width = input_shape[0], input_shape[1]
    if min(height, width) < minimum:
        raise ValueError(
            f"model '{name}' needs images of at least {minimum}x{minimum} pixels, "
            f"got {height}x{width} (input_shape {tuple(input_shape)})"
        )
