"""When an image's subject is unknown, and how many subjects a bootstrap interval needs.

The one rule for "subject unknown" and the one count of subjects, which the splits (subject-disjoint
parts), the bootstrap (resampling groups) and the report's subject figures must read the same way,
and the fewest resampling groups that get an interval (the split's log warns below it, the
evaluation reports no interval below it). Nothing else is here: editing this module reruns the
splits and everything after them.
"""

import numpy as np
import pandas as pd

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
