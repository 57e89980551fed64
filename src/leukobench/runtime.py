"""What every workflow script does first: send its output to the rule's log."""

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
