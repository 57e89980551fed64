"""Shared test fixtures: small image trees written in the datasets' real layouts."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
# The one place the tests find the project's shared fixtures (real images, not in git): the shared/ folder
# beside this checkout (../shared), or inside it where a copy of the working tree carries shared/ along.
SHARED_FIXTURES = next((root / "shared" / "fixtures" for root in (REPO.parent, REPO)
                        if (root / "shared" / "fixtures").is_dir()), REPO.parent / "shared" / "fixtures")
CNMC_SAMPLE = SHARED_FIXTURES / "cnmc_sample"


def write_image(path: Path, seed: int, size: int = 40) -> Path:
    """A small random BMP at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


def write_cnmc_layout(root: Path, subjects: dict[str, int], fold_of=lambda s: 0) -> list[Path]:
    """A Kaggle-layout C-NMC tree: subjects maps name (H<n> = healthy) to the number of cells."""
    paths = []
    for s, (subject, cells) in enumerate(subjects.items()):
        cls = "hem" if subject.startswith("H") else "all"
        for cell in range(1, cells + 1):
            name = f"UID_{subject}_{cell}_1_{cls}.bmp"
            paths.append(write_image(root / "training_data" / f"fold_{fold_of(subject)}" / cls / name, seed=100 * s + cell))
    return paths


def tiny_cnmc_split(root: Path, cells_per_subject: int):
    """A C-NMC tree of 6 ALL and 6 healthy subjects under ``root``, read and split 50/25/25 by subject."""
    from leukobench.data.readers import read_dataset
    from leukobench.data.splits import assign_splits

    subjects = {**{str(s): cells_per_subject for s in range(1, 7)}, **{f"H{s}": cells_per_subject for s in range(1, 7)}}
    write_cnmc_layout(root, subjects)
    manifest, _ = read_dataset("cnmc", root)
    return manifest, assign_splits(manifest, "subject", {"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)


def with_shuffled_training_labels(store_path: Path, out_path: Path, seed: int = 0) -> Path:
    """The same store with the train split's labels permuted (val and test untouched): a model trained on it
    must not beat chance."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(store_path)
    labels = table.column("label").to_numpy().copy()
    train = np.flatnonzero(table.column("split").to_numpy(zero_copy_only=False) == "train")
    labels[train] = labels[np.random.default_rng(seed).permutation(train)]
    index = table.schema.get_field_index("label")
    pq.write_table(table.set_column(index, table.schema.field(index), pa.array(labels, type=pa.int16())), out_path)
    return out_path


@pytest.fixture
def cnmc_sample() -> Path:
    """The six real C-NMC images of the shared fixtures (SHARED_FIXTURES; skip when the folder is absent)."""
    if not CNMC_SAMPLE.is_dir():
        pytest.skip(f"real C-NMC sample not found at {CNMC_SAMPLE} (it lives in the project's shared/ folder)")
    return CNMC_SAMPLE


def pytest_terminal_summary(terminalreporter):
    """Print the lines that tests recorded as property "terminal_summary" (e.g. test_slurm.py: its SLURM job ids)."""
    lines = [value for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, value in getattr(report, "user_properties", ()) if name == "terminal_summary"]
    if lines:
        terminalreporter.section("recorded by the tests")
        for line in lines:
            terminalreporter.write_line(line)


# The files that take longest (`make test` with --durations=0, summed per file: finished runs, a SLURM
# cluster, TensorFlow trainings), longest first, test_slurm.py before them all: its worker mostly waits on
# the cluster's jobs while the other runs a long file. Collected in this order, and run in it with
# --no-loadscope-reorder (the Makefile; pytest-xdist's default reorders the files by their number of tests),
# so the workers take the long files first and end together on the short ones.
LONGEST_FIRST = ("test_slurm.py", "test_workflow.py", "test_train.py", "test_faults.py", "test_models.py",
                 "test_workflow_plans.py", "test_learning.py", "test_saliency.py", "test_report.py", "test_weights.py",
                 "test_predict.py", "test_learned.py", "test_synthetic.py", "test_reference.py", "test_store.py",
                 "test_kaggle.py", "test_joblog.py", "test_plots.py")


def pytest_collection_modifyitems(items):
    """Every test of test_workflow.py and test_workflow_plans.py starts snakemake (a finished tiny run, or
    the plan of one): marked ``workflow``, so that ``-m "not workflow"`` (make test-fast) leaves them out
    like the end-to-end runs. The files of LONGEST_FIRST are run first, each file's tests in their order."""
    for item in items:
        if item.path.name in ("test_workflow.py", "test_workflow_plans.py"):
            item.add_marker(pytest.mark.workflow)
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
