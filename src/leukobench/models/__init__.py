"""The models: one registry of Keras builders, the builders by family (as timm and
keras.applications lay theirs out), and the transfer models' ImageNet weights files.

* :mod:`~leukobench.models.registry`: :data:`MODELS` (one name, one builder, with its minimum input
  size: declared once, where the builder is registered) and the calls on it, :func:`create_model`.
* :mod:`~leukobench.models.layers`: what every builder shares, the scaled input and the output head.
* :mod:`~leukobench.models.studies`: the CNNs of the four studies (``varol_cnn1`` … ``varol_cnn4``,
  ``abed_cnn``, ``rezayi_cnn``, ``zhang_cnn``).
* :mod:`~leukobench.models.reference`: the reference's small residual CNN (``reference_resnet_small``).
* :mod:`~leukobench.models.transfer`: the models on a keras.applications base (``vgg16``,
  ``resnet50``, ``vgg19``, ``densenet169``, ``efficientnetv2b0``, ``efficientnetv2b0_scratch``);
  their ImageNet weights files: :mod:`~leukobench.models.weights` (where they are, what they hash
  to) and :mod:`~leukobench.models.weights_fetch` (the workflow's one download of each).

Import the registry from here (``from leukobench.models import MODELS, create_model``): this package
registers every family, and a workflow script that imports it has every family in its code digest
(:mod:`leukobench.plan.provenance`), as it has them at run time, but for the training of one model,
whose digest leaves out the other families (``other_entries_modules``). A new model is one builder in its
family's module, registered with ``@register_model``.
"""

from leukobench.models import reference, studies, transfer  # noqa: F401 - each registers its builders
from leukobench.models.layers import HEADS
from leukobench.models.registry import (MIN_INPUT_SIZE, MODELS, Application, Builder, builder_parameters,
                                        create_model, list_models, recipe_models, register_model, transfer_models)
from leukobench.models.transfer import resolve_weights

__all__ = ["HEADS", "MIN_INPUT_SIZE", "MODELS", "Application", "Builder", "builder_parameters",
           "create_model", "list_models", "recipe_models", "register_model", "resolve_weights", "transfer_models"]
