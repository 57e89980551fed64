"""The reference recipe's training parts (``presets/reference.yaml``): what a careful practitioner
adds to a plain ``compile`` + ``fit``, each a ``training:`` option that is off by default.

* :func:`cell_augmentation`: online augmentation of the training images, fresh every epoch, in a
  layer that runs only in training: a random flip and a random multiple
  of 90 degrees (together the eight symmetries of a square; a trial on a slide has no up or left),
  and a small jitter of brightness, contrast and the gain of each colour channel (stain and
  illumination differ from slide to slide). It wraps the model for ``fit`` only
  (:func:`for_fitting`): the saved model is the plain one, so ``leukobench predict``, the
  conv features and Grad-CAM see exactly the layers of a model trained without it.
* :func:`learning_rate`: a constant rate, or a linear warm-up to the grid's learning rate followed
  by a cosine decay to zero over the remaining steps (``keras.optimizers.schedules.CosineDecay``).
* :func:`resumable_early_stopping`: Keras' ``EarlyStopping`` with ``restore_best_weights``, whose
  state (best validation loss, its epoch and weights, the wait, its decision to stop) is part of
  the training's backup (:mod:`leukobench.learn.backup`), so a killed training that resumes still
  returns the weights of the best epoch of the whole training and stops where it would have.

The optimizer (``adamw``) and label smoothing are in :mod:`leukobench.learn.train`.
"""

from __future__ import annotations

import math

#: The jitter of :class:`CellAugmentation`: relative, per image (and per channel for the gain).
BRIGHTNESS, CONTRAST, CHANNEL_GAIN = 0.1, 0.1, 0.05
LR_SCHEDULES = ("constant", "cosine")


def cell_augmentation(seed: int = 0):
    """The augmentation layer (Keras is imported here, not when this module is)."""
    import keras

    class CellAugmentation(keras.layers.Layer):
        """Random flip, random k x 90 degree rotation, brightness, contrast and colour-gain jitter
        of uint8-range images; the identity outside training."""

        def __init__(self, seed: int = 0, **kwargs):
            super().__init__(**kwargs)
            self.seed = seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=None):
            from keras import ops

            images = ops.cast(images, "float32")
            if not training:
                return images
            batch = ops.shape(images)[0]
            uniform = lambda shape, low, high: keras.random.uniform(shape, low, high, seed=self.generator)  # noqa: E731
            flip = ops.cast(uniform((batch, 1, 1, 1), 0.0, 1.0) < 0.5, "float32")
            x = flip * ops.flip(images, axis=2) + (1.0 - flip) * images
            if images.shape[1] == images.shape[2]:  # a square: all four quarter turns
                turns = ops.floor(uniform((batch,), 0.0, 4.0))
                rotated = [x, ops.rot90(x, 1, axes=(1, 2)), ops.rot90(x, 2, axes=(1, 2)), ops.rot90(x, 3, axes=(1, 2))]
                x = sum(ops.reshape(ops.cast(ops.equal(turns, float(k)), "float32"), (-1, 1, 1, 1)) * r
                        for k, r in enumerate(rotated))
            else:  # a rectangle: half turns only, which keep its shape
                half = ops.cast(uniform((batch, 1, 1, 1), 0.0, 1.0) < 0.5, "float32")
                x = half * ops.flip(ops.flip(x, axis=1), axis=2) + (1.0 - half) * x
            channels = images.shape[-1]
            mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
            contrast = uniform((batch, 1, 1, 1), 1.0 - CONTRAST, 1.0 + CONTRAST)
            x = (x - mean) * contrast + mean
            gain = uniform((batch, 1, 1, 1), 1.0 - BRIGHTNESS, 1.0 + BRIGHTNESS) * \
                uniform((batch, 1, 1, channels), 1.0 - CHANNEL_GAIN, 1.0 + CHANNEL_GAIN)
            return ops.clip(x * gain, 0.0, 255.0)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "seed": self.seed}

    return CellAugmentation(seed, name="augmentation")


def for_fitting(model, augmentation: bool = False, seed: int = 0):
    """The model ``fit`` trains and the optimizer belongs to: ``model`` behind an input of its own
    and, with ``augmentation``, behind a :func:`cell_augmentation` layer. It shares every weight
    with ``model``, the one to save and to apply, which is never compiled: its file holds the
    weights but not the optimizer's state (with Adam twice the weights, which the training backup
    holds while it trains), so it saves and loads in half the time, at a third of the size."""
    import keras

    inputs = keras.layers.Input(shape=model.input_shape[1:], name="pixels")
    outputs = model(cell_augmentation(seed)(inputs) if augmentation else inputs)
    return keras.Model(inputs, outputs, name=f"{model.name}_{'augmented' if augmentation else 'fitted'}")


def learning_rate(schedule: str, rate: float, epochs: int, steps_per_epoch: int, warmup_epochs: int = 0):
    """The optimizer's ``learning_rate``: ``rate`` itself (``constant``, no warm-up), or a schedule
    of steps: linear warm-up from 0 to ``rate`` over ``warmup_epochs``, then (``cosine``) a cosine
    decay to 0 at the last step, or (``constant``) ``rate`` to the end. A warm-up as long as the
    training or longer (``scale`` shrinks epochs, not the warm-up) stops one step before its end."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule '{schedule}' unknown; allowed: {', '.join(LR_SCHEDULES)}")
    if schedule == "constant" and not warmup_epochs:
        return rate
    import keras

    total = max(1, epochs * steps_per_epoch)
    warmup = min(total - 1, warmup_epochs * steps_per_epoch)
    decay = total - warmup if schedule == "cosine" else 10 ** 12  # constant: a cosine too long to move
    if warmup:
        return keras.optimizers.schedules.CosineDecay(0.0, decay, alpha=0.0, warmup_target=rate, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(rate, decay, alpha=0.0)


def steps_per_epoch(images: int, batch_size: int) -> int:
    return max(1, math.ceil(images / batch_size))


def resumable_early_stopping(patience: int):
    """Keras' ``EarlyStopping`` on the validation loss with ``restore_best_weights``, whose state
    (best value, its epoch and weights, the wait, the epoch it stopped at) the training's backup
    saves with the rest of the training after every epoch (:mod:`leukobench.learn.backup`) and
    gives back when the training resumes; to be listed before the backup callback, so the state of
    an epoch is the one after early stopping judged it."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        resumed: tuple | None = None

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)  # resets everything; a resumed training then takes its saved state
            if self.resumed is not None:
                state, self.best_weights = self.resumed
                self.wait, self.best_epoch = int(state["wait"]), int(state["best_epoch"])
                self.stopped_epoch, self.best = int(state["stopped_epoch"]), state["best"]

        def resume_from(self, state: dict, best_weights) -> None:
            self.resumed = (state, best_weights)

        def resume_state(self) -> dict:
            return {"best": None if self.best is None else float(self.best), "best_epoch": int(self.best_epoch),
                    "wait": int(self.wait), "stopped_epoch": int(self.stopped_epoch)}

    return ResumableEarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
