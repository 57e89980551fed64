"""What names a trial (a point of the experiment grid): the planning side and the report read it.

The keys that name a trial, in the order of its folder names and of the columns of metrics.csv;
and how a smoke run (``scale`` < 1) scales the values of two of them (the planning side scales the
grid, the report compares a published number with the trial a scaled run really ran). No training,
fit or evaluation reaches this module: editing it reruns the aggregation and the report only.
What an image's subject is lives in :mod:`leukobench.subjects`.
"""


PARTITION_KEYS = ("split_method", "fold")  # how a dataset is split; fold only with split.folds
GRID_KEYS = ("dataset", *PARTITION_KEYS, "variant", "size", "model", "optimizer", "learning_rate", "loss", "epochs",
             "batch_size", "seed")
HYBRID_KEYS = (*GRID_KEYS, "classifier")
CLASSICAL_KEYS = ("dataset", *PARTITION_KEYS, "variant", "size", "features", "classifier", "seed")
TRIAL_KEYS = ("approach", *GRID_KEYS[:6], "features", "classifier", *GRID_KEYS[6:])  # every column naming a trial

def scaled_epochs(epochs: int, scale: float) -> int:
    """A smoke run's epoch count."""
    return max(1, round(epochs * scale))


def scaled_size(size: int, scale: float, smoke_min_size: int) -> int:
    """A smoke run's image size: smaller, never below ``smoke_min_size``, the size every registered
    model accepts (:func:`leukobench.plan.config.smoke_min_size`, read from the model registry)."""
    return max(smoke_min_size, min(size, round(size * scale)))
