"""What names a cell and a subject, shared by every layer.

The keys that name a cell (a point of the experiment grid), in the order of its folder names and
of the columns of metrics.csv; how a smoke run (``scale`` < 1) scales the values of two of them
(the planning side scales the grid, the report compares a published number with the cell a
scaled run really ran); and when an image's subject is unknown, which the splits and the
bootstrap must read the same way.
"""

import numpy as np
import pandas as pd


PARTITION_KEYS = ("split_method", "fold")  # how a dataset is split; fold only with split.folds
GRID_KEYS = ("dataset", *PARTITION_KEYS, "variant", "size", "model", "optimizer", "learning_rate", "loss", "epochs",
             "batch_size", "seed")
HYBRID_KEYS = (*GRID_KEYS, "classifier")
CLASSICAL_KEYS = ("dataset", *PARTITION_KEYS, "variant", "size", "features", "classifier", "seed")
CELL_KEYS = ("approach", *GRID_KEYS[:6], "features", "classifier", *GRID_KEYS[6:])  # every column naming a cell

SUBJECT_AGGREGATIONS = ("mean", "median", "positive_fraction", "majority")  # how a subject's cells make its verdict
CNMC_SUBJECT = r"UID_(?P<subject>H?\d+)_"  # the subject in C-NMC's file names (leukobench predict --by-subject)
SMOKE_MIN_SIZE = 32  # the smallest size every registered model accepts


def scaled_epochs(epochs: int, scale: float) -> int:
    """A smoke run's epoch count."""
    return max(1, round(epochs * scale))


def scaled_size(size: int, scale: float) -> int:
    """A smoke run's image size: smaller, never below :data:`SMOKE_MIN_SIZE`."""
    return max(SMOKE_MIN_SIZE, min(size, round(size * scale)))


# Fewer resampling groups (subjects, or images where subjects are unknown) than this: no interval.
# A percentile bootstrap over G groups can only draw C(2G - 1, G) distinct resamples (126 for
# G = 5, 92,378 for G = 10), so its 2.5 % and 97.5 % percentiles sit on a handful of distinct
# values; it also shrinks the variance of a mean over groups by (G - 1) / G, and its percentile
# intervals over few groups cover well under their nominal 95 % (studies of the cluster bootstrap
# ask for at least 10 or more clusters). Reporting no interval, and why, is more honest than that.
MIN_INTERVAL_GROUPS = 10


def unknown_subjects(ids) -> np.ndarray:
    """Boolean mask of the entries of ``ids`` that name no subject: missing (None, NaN) or empty.

    The one rule for "subject unknown", used by the bootstrap (each such image is its own
    resampling group) and by :mod:`leukobench.data.splits` (each such image, with its byte-identical
    copies, is its own splitting group).
    """
    values = pd.Series(np.asarray(ids, dtype=object).ravel())
    return (values.isna() | values.astype(str).str.strip().eq("")).to_numpy()


def subject_counts(ids) -> tuple[int, int]:
    """How many subjects ``ids`` name, and how many images have none (:func:`unknown_subjects`):
    the split log and the bootstrap's note count them the same way."""
    unknown = unknown_subjects(ids)
    return int(pd.Series(np.asarray(ids, dtype=object).ravel())[~unknown].nunique()), int(unknown.sum())
