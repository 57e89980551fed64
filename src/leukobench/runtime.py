"""What every workflow script does first: send its output to the rule's log; a cell's parameters as plain values."""

from __future__ import annotations

import os
import sys


def log_to(path: str) -> None:
    """Redirect stdout and stderr, Python's and the C libraries' (TensorFlow, OpenCV), to ``path``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    log = open(path, "w", buffering=1)  # noqa: SIM115 - stays open for the life of the job
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log


def plain(cell: dict) -> dict:
    """A cell's parameters as plain Python values (Paramspace gives numpy scalars), for JSON."""
    return {key: value.item() if hasattr(value, "item") else value for key, value in cell.items()}
