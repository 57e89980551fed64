"""Job logging: what every workflow script does first, send its output to the rule's log, with
TensorFlow's C++ start-up notices left out (and, the job being a short-lived process, let Python's
garbage collector run less often: :func:`collect_less_often`).

Infrastructure, not part of any job's result: it changes what a log says, never an output, so
:mod:`leukobench.plan.provenance` leaves it out of every rule's code digest (editing it reruns
nothing). It imports nothing from leukobench, so that nothing else hides behind it.

TensorFlow's C++ log level is ``TF_CPP_MIN_LOG_LEVEL`` (0 everything, 1 warnings and errors,
2 errors, 3 none). leukobench sets it to :data:`TF_LOG_LEVEL` (warnings and above) unless the
user set it. TensorFlow 2.21 writes its first notices (oneDNN, "Could not find cuda drivers", CPU
instructions) before its logging reads that variable, so :func:`filter_native_log` filters the
process's standard error by the same level; and where TensorFlow found no CUDA driver, the
``failed call to cuInit`` error that follows says the same thing again and is replaced by one
line of ours. Everything else, a real error or a traceback, passes unchanged.
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import sys
import threading

TF_LOG_LEVEL = "1"  # TensorFlow's C++ log: warnings and above, unless TF_CPP_MIN_LOG_LEVEL says otherwise
SEVERITIES = "IWEF"  # info, warning, error, fatal: TF_CPP_MIN_LOG_LEVEL 1 hides I, 2 also W, 3 also E
NATIVE_LINE = re.compile(  # absl's "I0000 00:00:17.9 3703 port.cc:153] ..." and TF's older "2025-...: I path:1] ..."
    r"^(?:(?P<absl>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: (?P<tf>[IWEF]) )"
)
ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
CONTINUATION = "To enable the following instructions:"  # the second line of TensorFlow's CPU-feature notice
NO_DRIVER = "Could not find cuda drivers on your machine"
NO_DRIVER_NOTE = "leukobench: TensorFlow found no CUDA driver; it runs on the CPU\n"
CUINIT_FAILED = "failed call to cuInit"
# A job's collection thresholds (Python's default: 700, 10, 10); see collect_less_often.
JOB_GC_THRESHOLDS = (50_000, 20, 100)


def tf_log_level() -> int:
    """The C++ log level in force: the user's TF_CPP_MIN_LOG_LEVEL, else :data:`TF_LOG_LEVEL`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    try:
        return int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        return int(TF_LOG_LEVEL)


class NativeLogFilter:
    """Decides, line by line, what of TensorFlow's C++ output a user reads (see the module's doc)."""

    def __init__(self, level: int):
        self.level = level
        self.no_driver = False
        self.dropped_info = False

    def __call__(self, line: str) -> str:
        """The text to write for one line (with its newline): the line, a note of ours, or ''."""
        match = NATIVE_LINE.match(line)
        if match is None:
            if self.level >= 1 and (line.startswith(ABSL_BANNER) or (self.dropped_info and line.startswith(CONTINUATION))):
                return ""
            self.dropped_info = False
            return line
        severity = SEVERITIES.index(match["absl"] or match["tf"])
        note = ""
        if NO_DRIVER in line and not self.no_driver:
            self.no_driver = True
            note = NO_DRIVER_NOTE if self.level >= 1 else ""
        if self.no_driver and CUINIT_FAILED in line and self.level >= 1:
            return ""
        self.dropped_info = severity < self.level and severity == 0
        return note if severity < self.level else line


def filter_native_log(target_fd: int) -> None:
    """Route file descriptor 2 (where C libraries log) through :class:`NativeLogFilter` to ``target_fd``.

    A thread copies the lines as they come; at exit the pipe is closed and drained, so nothing
    written before the process ends normally or with a traceback is lost.
    """
    keep = NativeLogFilter(tf_log_level())
    read_end, write_end = os.pipe()
    out = os.dup(target_fd)
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)

    def write(text: str) -> None:
        try:
            os.write(out, text.encode("utf-8", "surrogateescape"))
        except OSError:  # the reader went away (a closed terminal or pipe): keep draining, never block writers
            pass

    def copy() -> None:
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    write(keep(line.decode("utf-8", "surrogateescape") + "\n"))
        if pending:
            write(keep(pending.decode("utf-8", "surrogateescape")))

    thread = threading.Thread(target=copy, name="native-log-filter", daemon=True)
    thread.start()

    def drain() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(out, 2)  # closes the pipe's last write end: the thread reads to the end and stops
        thread.join(timeout=10)

    atexit.register(drain)


def collect_less_often() -> None:
    """Python's cyclic garbage collector at :data:`JOB_GC_THRESHOLDS` in this process.

    A job imports large libraries (TensorFlow and Keras, scikit-learn, matplotlib) whose objects
    live as long as the job, and a Keras job then traces its model into graphs of many more. At
    Python's default thresholds (700, 10, 10) a collection runs every 700 allocations and walks
    every live object each time they have grown by a quarter: during the imports and the trace,
    many times over, finding almost nothing to free (19 % of a ResNet50 smoke trial's samples in
    py-spy). At these, TensorFlow and Keras import 0.5-1 s faster and a light job's imports 0.2-0.3 s
    (of 1.3-2 s). Cycles are still collected, less often; nothing a job computes depends on when."""
    gc.set_threshold(*JOB_GC_THRESHOLDS)


def log_to(path: str) -> None:
    """Send stdout and stderr, Python's and the C libraries' (TensorFlow, OpenCV), to ``path``;
    TensorFlow's start-up notices below the log level are left out (:func:`filter_native_log`).
    Called first by every workflow script, before it imports anything large, so it also sets the
    job's garbage collection (:func:`collect_less_often`)."""
    collect_less_often()
    open(path, "w").close()
    # append mode: Python's writes and the filter thread's land one after the other, never over each other
    log = open(path, "a", buffering=1, errors="backslashreplace")  # noqa: SIM115 - open for the life of the job
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    filter_native_log(log.fileno())

