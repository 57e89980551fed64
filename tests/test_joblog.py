"""A job's log holds leukobench's own lines and real errors, not TensorFlow's start-up notices."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from leukobench.plan.joblog import ABSL_BANNER, JOB_GC_THRESHOLDS, NO_DRIVER_NOTE, NativeLogFilter

# what TensorFlow 2.21 writes to a CPU-only machine's standard error when it starts
START_UP = [
    ABSL_BANNER,
    "I0000 00:00:1795811824.631396    3703 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1795811824.632491    3703 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.",
    "I0000 00:00:1795811824.948248    3703 cpu_feature_guard.cc:227] This TensorFlow binary is optimized",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.",
    "E0000 00:00:1795811829.971769    3703 cuda_platform.cc:52] failed call to cuInit: INTERNAL: UNKNOWN ERROR (303)",
]


def filtered(lines, level):
    keep = NativeLogFilter(level)
    return "".join(keep(line + "\n") for line in lines)


def test_warnings_and_above_hide_the_start_up_notices_and_say_once_that_there_is_no_gpu():
    assert filtered(START_UP, 1) == NO_DRIVER_NOTE


def test_real_errors_warnings_and_our_own_lines_pass():
    lines = ["epoch 1/2: loss=0.1", "W0000 00:00:1.5 12 loader.cc:3] a warning",
             "E0000 00:00:1.5 12 session.cc:9] out of memory", "2019-08-26 11:45:20.776347: E tf/x.cc:1] old format",
             "Traceback (most recent call last):", "To enable the following instructions: not after an info line"]
    assert filtered(lines, 1) == "".join(line + "\n" for line in lines)


def test_cuinit_failing_with_a_driver_present_is_a_real_error():
    line = "E0000 00:00:1.5 12 cuda_platform.cc:52] failed call to cuInit: CUDA_ERROR_UNKNOWN"
    assert filtered([line], 1) == line + "\n"


def test_the_users_level_wins():
    assert filtered(START_UP, 0) == "".join(line + "\n" for line in START_UP)
    assert "W0000" not in filtered(["W0000 00:00:1.5 12 a.cc:1] w"], 2)
    assert filtered(["E0000 00:00:1.5 12 a.cc:1] e"], 3) == ""


JOB = """
import gc, os, sys
from leukobench.plan.joblog import log_to
log_to(sys.argv[1])
print("collection thresholds", gc.get_threshold())
import tensorflow as tf
tf.constant(1) + 1
print("our line")
os.write(2, b"I0000 00:00:1.5 12 port.cc:153] an info notice of a C++ library\\n")
os.write(2, b"E0000 00:00:1.5 12 real.cc:52] a real error\\n")
raise SystemExit("the job failed")
"""


@pytest.mark.parametrize("level", [None, "0"])
@pytest.mark.slow
def test_a_job_log_shows_our_lines_and_errors_only(tmp_path, level):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    log = tmp_path / "job.log"
    result = subprocess.run([sys.executable, "-c", JOB, str(log)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    text = log.read_text()
    for wanted in ("our line", "a real error", "the job failed"):
        assert wanted in text
    # set before the job imports anything large (joblog.collect_less_often), not Python's (700, 10, 10)
    assert f"collection thresholds {JOB_GC_THRESHOLDS}" in text and JOB_GC_THRESHOLDS != (700, 10, 10)
    # the job writes its own info notice: what TensorFlow itself prints at start-up differs from machine to machine
    if level is None:  # the default: what a user reads is ours
        assert "I0000" not in text and "cuInit" not in text and "absl::InitializeLog" not in text, text
    else:  # TF_CPP_MIN_LOG_LEVEL=0, set by the user, shows the C++ libraries' notices again
        assert "I0000 00:00:1.5 12 port.cc:153] an info notice of a C++ library" in text, text


def test_every_visible_gpu_gets_memory_growth_before_tensorflow_runs(monkeypatch):
    """What lets several Keras jobs share one GPU (learn/devices.share_gpus, called by every training and by
    predict): memory growth on each GPU TensorFlow lists; no GPU, nothing to set."""
    import tensorflow as tf

    from leukobench.learn import devices

    gpus = ["/physical_device:GPU:0", "/physical_device:GPU:1"]
    grown = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: grown.append((gpu, on)))
    assert devices.share_gpus() == gpus and grown == [(gpu, True) for gpu in gpus]
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: [])
    grown.clear()
    assert devices.share_gpus() == [] and grown == []
