"""Where a trained Keras trial looks: Grad-CAM heat maps, and how much of their mass lies on the cell.

A classifier of segmented cells can score well for the wrong reason: the outline, the size of the
black margin, a stain shift of one subject, an artefact at the border. Grad-CAM (Selvaraju et al.,
"Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017)
shows which part of an image moved the score of one class: the gradient of that class's logit
with respect to the last convolutional feature map, averaged over the map's positions, weights the
map's channels; their weighted sum, rectified (only evidence *for* the class), is the heat map.

* :func:`grad_cam`: ``(n, H, W)`` heat maps in [0, 1] (each divided by its maximum), upsampled to the
  input size, for any model of :mod:`leukobench.models` (the studies' CNNs, and the transfer
  models, whose conv maps live in the nested ``keras.applications`` sub-model named ``base``).
* :func:`cell_share`: the share of each heat map's mass that lies on the cell rather than on the
  black background (C-NMC cells and the synthetic ones are segmented on pure black), one number per
  image that says whether a model looks at the cell.
* :func:`saliency_of_trial`: a trained trial's ``saliency.json`` of its test images, and the sheet's
  panels (images, heat maps, predictions) in ``saliency_panels.npz``
  (:mod:`leukobench.learn.saliency_panels`), written by its ``inspect`` job
  (``evaluation.saliency: all``); the sheet itself is drawn from them by the rule ``saliency_sheet``
  (:mod:`leukobench.learn.saliency_sheet`, with the shared look of :mod:`leukobench.style`), so
  that editing the look redraws it without running Grad-CAM, a model pass, again.
* :func:`saliency_of_chosen_trials`: the sheets' panels and the summaries of the chosen trials of a
  dataset, in its one ``saliency_best`` job (``evaluation.saliency: chosen``); the local rule
  ``saliency_best_sheets`` draws them (:func:`leukobench.learn.saliency_sheet.draw_saliency_sheets`).

Images are uint8 ``(n, H, W, C)`` exactly as the store holds them (RGB, or one gray channel):
rescaling and normalisation are layers of every model. Keras and TensorFlow are imported inside
:func:`grad_cam` only (Keras 3 on the TensorFlow backend: the gradients come from ``tf.GradientTape``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from leukobench.io import atomic_folder, atomic_path
from leukobench.learn.saliency_panels import write_sheet_panels

if TYPE_CHECKING:
    import keras

    from leukobench.data.store import Store
    from leukobench.learn.saved_model import TrainedModel

__all__ = ["CELL_THRESHOLD", "MAX_CELL_AREA", "SALIENCY_BATCH", "SALIENCY_MODES", "cell_mask", "cell_share",
           "feature_map_layer", "grad_cam", "saliency_of_trial", "saliency_of_chosen_trials", "share_text"]

SALIENCY_BATCH = 64  # images per gradient pass
#: evaluation.saliency: which Keras trials get a Grad-CAM sheet. ``chosen``: the trial behind the best
#: configuration of each model (chosen on validation; one job per dataset draws them after the
#: evaluations); ``all``: every Keras trial (in the one job of its inspection passes); ``none``: no Grad-CAM.
SALIENCY_MODES = ("none", "chosen", "all")

#: A pixel belongs to the cell when its brightest channel is above this level (0–255). The
#: background of C-NMC images is exactly 0 (they are lossless BMPs, segmented on black), and the
#: synthetic cells' pixels are never black; stained cell pixels are above about 25 in their brightest
#: channel. 10 keeps the edge pixels a resize blends with the black margin (mostly cell) and leaves
#: out faint noise on the background.
CELL_THRESHOLD = 10
#: An image whose "cell" by that threshold covers more than this share has no dark background (a
#: smear field as Aria's, ALL-IDB's): the cell cannot be told from the rest, and the share of the
#: heat on it would read 1, a model that looks only at the cell. Such an image gets no share.
MAX_CELL_AREA = 0.9

# Layers that only subsample or mask the conv map before them: the map is taken before them (finer).
_SKIPPED_LAYERS = ("MaxPooling2D", "AveragePooling2D", "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise")


def feature_map_layer(model: "keras.Model") -> tuple[str, ...]:
    """The path of names to the layer whose output Grad-CAM explains, e.g. ``("conv3",)`` or
    ``("base", "block5_conv3")``: the last layer with a 4-D ``(batch, h, w, channels)`` output,
    looking inside a nested sub-model (a transfer model's ``base``), and stepping back over pooling
    and dropout layers (which only subsample or mask the map before them, so that map is finer).

    Raises:
        ValueError: the model has no layer with a 4-D output.
    """
    path = _find_feature_map(model)
    if path is None:
        raise ValueError(f"model '{model.name}' has no layer with a 4-D (batch, height, width, channels) output "
                         "to take a Grad-CAM map from")
    return path


def _find_feature_map(model) -> tuple[str, ...] | None:
    for layer in reversed(model.layers[1:]):  # the input layer is no feature map
        if hasattr(layer, "layers"):  # a nested model, e.g. a keras.applications base
            inner = _find_feature_map(layer)
            if inner is not None:
                return (layer.name, *inner)
        elif len(layer.output.shape) == 4 and type(layer).__name__ not in _SKIPPED_LAYERS:
            return (layer.name,)
    return None


def _map_and_logits(model, path: tuple[str, ...]):
    """A function of a float batch giving ``(feature map, logits)``: the layer at ``path`` and the
    model's pre-activation output (the input of a sigmoid or softmax ``Dense`` head through its
    kernel; else the output itself, with ``is_logit`` False)."""
    import keras

    head = model.layers[-1]
    activation = getattr(getattr(head, "activation", None), "__name__", None)
    is_logit = isinstance(head, keras.layers.Dense) and activation in ("sigmoid", "softmax")
    target = head.input if is_logit else model.output
    features = _split(model, path, target)

    def call(x):
        feature_map, y = features(x)
        return feature_map, (keras.ops.matmul(y, head.kernel) + head.bias if is_logit else y)

    return call, is_logit


def _split(model, path: tuple[str, ...], target):
    """A function of ``model``'s input giving (the output of the layer at ``path``, ``target``).

    A layer inside a nested model is reached by cutting the outer graph at the nested model's call:
    (outer input → nested model's input) → nested model, giving the map and its own output → (nested
    output → ``target``). Every part runs in inference mode (dropout off, batch norms frozen).
    """
    import keras

    layer = model.get_layer(path[0])
    if len(path) == 1:
        both = keras.Model(model.input, [layer.output, target])
        return lambda x: both(x, training=False)
    nodes = layer._inbound_nodes  # Keras 3 keeps the calls of a layer in its graphs here
    if len(nodes) != 1 or len(nodes[0].input_tensors) != 1:
        raise ValueError(f"model '{model.name}': the nested model '{layer.name}' must be called once, on one input")
    before = keras.Model(model.input, nodes[0].input_tensors[0])
    inner = _split(layer, path[1:], layer.output)
    after = keras.Model(nodes[0].output_tensors[0], target)

    def call(x):
        feature_map, inner_output = inner(before(x, training=False))
        return feature_map, after(inner_output, training=False)

    return call


def grad_cam(model: "keras.Model", images: np.ndarray, class_index: int | Sequence[int] | np.ndarray | None = None,
             batch_size: int = SALIENCY_BATCH) -> np.ndarray:
    """Grad-CAM heat maps of ``images`` for one class each.

    For each image, the gradient of the class's logit (the head's pre-activation) with respect to the
    feature map of :func:`feature_map_layer` is averaged over the map's positions; these weights sum
    the map's channels, the sum is rectified, upsampled bilinearly to the image size and divided by
    its maximum. A one-unit sigmoid head scores class 1 with its logit ``z`` and class 0 with ``-z``
    (class 0's probability is ``1 - sigmoid(z) = sigmoid(-z)``); a softmax head scores class ``c``
    with its logit ``z_c``. A map with no positive evidence is all zeros.

    Args:
        model: a Keras model of :mod:`leukobench.models` (or any with a 4-D conv map and a
            one-unit sigmoid or softmax head).
        images: uint8 ``(n, H, W, C)``, as the store holds them (the model scales them itself).
        class_index: the class to explain: None = each image's predicted class; an int = that class
            for every image; a sequence = one class per image (e.g. the true labels).
        batch_size: images per gradient pass.

    Returns:
        float32 ``(n, H, W)`` in [0, 1].

    Raises:
        ValueError: images of another shape than the model's input, or a class outside its head.
    """
    import tensorflow as tf

    images = np.asarray(images)
    expected = tuple(model.input_shape[1:])
    if images.ndim != 4 or any(e is not None and e != s for e, s in zip(expected, images.shape[1:])):
        raise ValueError(f"images must be (n, {', '.join(map(str, expected))}) for model '{model.name}', got {images.shape}")
    n_units = int(model.output_shape[-1])
    n_classes = 2 if n_units == 1 else n_units
    classes = None if class_index is None else np.broadcast_to(np.asarray(class_index), (len(images),))
    if classes is not None and (not np.issubdtype(classes.dtype, np.integer) or ((classes < 0) | (classes >= n_classes)).any()):
        raise ValueError(f"class_index must be None or class numbers in 0..{n_classes - 1}, got {class_index!r}")
    call, is_logit = _map_and_logits(model, feature_map_layer(model))
    maps = np.zeros(images.shape[:3], dtype=np.float32)
    for start in range(0, len(images), batch_size):
        x = tf.cast(images[start:start + batch_size], tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)  # records every op, frozen bases included
            feature_map, logits = call(x)
            score = _class_score(logits, None if classes is None else classes[start:start + batch_size], is_logit)
        gradients = tape.gradient(score, feature_map)  # (b, h, w, k); the sum's gradient is each image's own
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * feature_map, axis=-1, keepdims=True))
        cam = tf.image.resize(cam, images.shape[1:3], method="bilinear")[..., 0]
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        maps[start:start + batch_size] = tf.math.divide_no_nan(cam, peak).numpy()
    return np.clip(maps, 0.0, 1.0)


def _class_score(logits, classes: np.ndarray | None, is_logit: bool):
    """The summed score of each image's class (predicted when ``classes`` is None)."""
    import tensorflow as tf

    if logits.shape[-1] == 1:  # sigmoid: class 1 scores z (or p), class 0 scores -z (or 1 - p)
        z = logits[:, 0]
        threshold = 0.0 if is_logit else 0.5
        positive = z > threshold if classes is None else tf.constant(classes == 1)
        return tf.reduce_sum(tf.where(positive, z, -z))
    chosen = tf.argmax(logits, axis=-1) if classes is None else tf.constant(classes, dtype=tf.int64)
    return tf.reduce_sum(tf.gather(logits, chosen, axis=1, batch_dims=1))


def cell_mask(images: np.ndarray, threshold: int = CELL_THRESHOLD) -> np.ndarray:
    """Boolean ``(n, H, W)``: the pixels whose brightest channel is above ``threshold`` (the cell)."""
    images = np.asarray(images)
    if images.ndim == 3:  # (n, H, W) gray
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be (n, H, W, C) or (n, H, W), got shape {images.shape}")
    return images.max(axis=-1) > threshold


def cell_share(heatmaps: np.ndarray, images: np.ndarray, threshold: int = CELL_THRESHOLD) -> np.ndarray:
    """The share of each heat map's mass on the cell: ``sum(heat on cell) / sum(heat)``, ``(n,)``.

    1 = the model looked only at the cell, 0 = only at the black background; a uniform map gives
    the cell's area share. A map with no mass (all zeros) gives NaN, and so does an image without a
    dark background (its cell covering more than :data:`MAX_CELL_AREA` of it).

    Args:
        heatmaps: ``(n, H, W)`` non-negative, e.g. from :func:`grad_cam`.
        images: the uint8 ``(n, H, W, C)`` (or ``(n, H, W)``) images the maps are of.
        threshold: a pixel is cell when its brightest channel is above it (:data:`CELL_THRESHOLD`).
    """
    heat = np.asarray(heatmaps, dtype=np.float64)
    mask = cell_mask(images, threshold)
    if heat.shape != mask.shape:
        raise ValueError(f"heatmaps {heat.shape} and images {np.shape(images)} differ in number or size")
    if not np.isfinite(heat).all() or (heat < 0).any():
        raise ValueError("heatmaps must be finite and non-negative")
    total = heat.sum(axis=(1, 2))
    on_cell = (heat * mask).sum(axis=(1, 2))
    measured = (total > 0) & _on_dark_background(mask)
    return np.divide(on_cell, total, out=np.full(len(heat), np.nan), where=measured)


def _on_dark_background(mask: np.ndarray) -> np.ndarray:
    """Per image of a :func:`cell_mask`, whether it has a background to tell its cell from."""
    return mask.mean(axis=(1, 2)) <= MAX_CELL_AREA


def saliency_of_trial(model: "TrainedModel | str | os.PathLike", store: "Store | str | os.PathLike",
                     predictions_path: str | os.PathLike, summary_path: str | os.PathLike | None,
                     panels_path: str | os.PathLike, split: str = "test") -> dict:
    """Where a trained trial looks on the images of one split of its store: its Grad-CAM sheet's
    panels (:func:`leukobench.learn.saliency_panels.write_sheet_panels`, drawn by
    :func:`leukobench.learn.saliency_sheet.draw_saliency_sheet`) and its summary: the mean share of
    the heat on the trial (``saliency_on_cell``, over the images with any heat and a dark background,
    ``images_on_background`` of them; the background-only baseline is their mean area share,
    ``cell_area``; both None where no image has one), per true class too, the feature map
    explained and the threshold. ``model`` and ``store`` are paths, or loaded where the job's other
    pass (test-time augmentation) uses them too; the sheet's labels, verdicts and scores are the
    trial's predictions (``predictions_path``, written by its training from this model and store), not
    predicted again. Writes the summary to ``summary_path`` (the trial's ``saliency.json``; None: not
    written) and returns it."""
    from leukobench.data.store import Store, load_store
    from leukobench.learn.saved_model import TrainedModel, check_prepared_as
    from leukobench.predictions import read_predictions, scores_of

    source = "the store" if isinstance(store, Store) else store
    model = model if isinstance(model, TrainedModel) else TrainedModel.load(model)
    store = store if isinstance(store, Store) else load_store(store)
    check_prepared_as(model, store, source)
    mask = (store.frame["split"] == split).to_numpy()
    if not mask.any():
        raise ValueError(f"{source} has no images in the split '{split}' to show where the model looks")
    images = store.images[mask]
    predictions, _ = read_predictions(predictions_path)
    part = predictions[predictions["split"] == split]
    if part["image_id"].tolist() != store.frame.loc[mask, "image_id"].tolist():
        raise ValueError(f"{source} holds other {split} images than {predictions_path}: train the trial again")
    labels, predicted = part["label"].to_numpy(), part["pred"].to_numpy()
    heat = grad_cam(model.model, images)
    shares = cell_share(heat, images)
    mask = cell_mask(images)
    areas, on_background = mask.mean(axis=(1, 2)), _on_dark_background(mask)  # the images with a share
    summary = {
        "split": split, "images": int(len(images)), "feature_map": "/".join(feature_map_layer(model.model)),
        "threshold": CELL_THRESHOLD, "images_on_background": int(on_background.sum()),
        "saliency_on_cell": _mean(shares), "cell_area": _mean(areas[on_background]),
        "saliency_on_cell_by_class": {name: _mean(shares[labels == k]) for k, name in enumerate(model.class_names)},
    }
    write_sheet_panels(panels_path, images, heat, labels, predicted, scores_of(part), model.class_names,
                       title=f"Where the model looks (Grad-CAM of the predicted class), {split} split: "
                             + share_text(summary))
    if summary_path is not None:
        with atomic_path(summary_path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2))
    return summary


def saliency_of_chosen_trials(chosen: Sequence[tuple[str, str]], models: Sequence[str | os.PathLike],
                             predictions: Sequence[str | os.PathLike], stores: Sequence[str | os.PathLike],
                             summary_path: str | os.PathLike, panels_folder: str | os.PathLike) -> list[dict]:
    """What ``evaluation.saliency: chosen`` does for a dataset, in one job: the Grad-CAM sheet's panels
    of each chosen trial (``chosen``: name and trial folder, as
    :func:`leukobench.report.selection.chosen_keras_trials` gives them), ``<name>.npz`` in
    ``panels_folder`` (drawn by :func:`leukobench.learn.saliency_sheet.draw_saliency_sheets`, so that
    the figures' look runs no model again), and one summary file, a list of :func:`saliency_of_trial`'s
    summaries each with its ``trial`` and ``name``. ``models`` are the dataset's Keras trials'
    ``model.keras`` files, ``predictions`` their ``predictions.parquet`` and ``stores`` their stores, in
    the same order; each chosen trial's model is loaded once. The folder and the file appear only complete."""
    inputs_of = {str(Path(model).parent): (store, trial_predictions)
                 for model, trial_predictions, store in zip(models, predictions, stores, strict=True)}
    unknown = [folder for _, folder in chosen if folder not in inputs_of]
    if unknown:
        raise ValueError(f"chosen trials {unknown} are not among the given models' trials {sorted(inputs_of)}")
    summaries = []
    with atomic_folder(panels_folder) as folder:
        for name, trial in chosen:
            store, trial_predictions = inputs_of[trial]
            summary = saliency_of_trial(Path(trial) / "model.keras", store, trial_predictions, None, folder / f"{name}.npz")
            summaries.append({"trial": trial, "name": name, **summary})
            print(f"{name} ({trial}): {share_text(summary)}", flush=True)
    with atomic_path(summary_path) as tmp:
        tmp.write_text(json.dumps(summaries, indent=2))
    return summaries


def share_text(summary: dict) -> str:
    """The saliency summary in words, for the sheet's title and the job's log."""
    if summary["saliency_on_cell"] is None:
        return (f"no image has a dark background (the cell found in more than {MAX_CELL_AREA:.0%} of each), "
                "so the heat's share on the cell is not measured")
    measured = summary["images_on_background"]
    some = "" if measured == summary["images"] else f" (the {measured} of {summary['images']} images on a dark background)"
    return (f"{summary['saliency_on_cell']:.2f} of the heat on the cell, which covers {summary['cell_area']:.2f} "
            f"of the image{some}")


def _mean(values: np.ndarray) -> float | None:
    """The mean of the finite values, None when there are none (JSON has no NaN)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None

