"""What the benchmark scripts share: their synthetic raw images and the cores they may use."""

from __future__ import annotations

import os
from pathlib import Path

from leukobench.data.synthetic import SyntheticSpec, write_cnmc_tree


def write_synthetic_cells(root: Path, images: int, image_size: int, min_subjects: int = 6) -> Path:
    """About ``images`` synthetic cells in the C-NMC layout under ``root``: 50 per subject, at least
    ``min_subjects`` subjects (enough of each class for a subject-disjoint split)."""
    subjects = max(min_subjects, images // 50)
    write_cnmc_tree(root, SyntheticSpec(subjects=subjects, cells_per_subject=max(1, images // subjects),
                                        image_size=image_size))
    return root


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
