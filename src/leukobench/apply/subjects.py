"""``leukobench predict --by-subject``: the subject in each file name, found by a pattern that is
tried in a separate process first (so that one that backtracks for ever is refused), and the
subjects' verdicts from their cells' scores."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from leukobench.io import printable
from leukobench.metrics import aggregate_by_subject
from leukobench.predictions import predict_labels


PATTERN_SECONDS = 1.0  # --by-subject: the longest its pattern may take on one file name
CHILD_START_SECONDS = 30.0  # the matching process's start (Python, reading the names), before any name's limit
EMPTY_SUBJECT = ("--by-subject: the pattern's subject group matches nothing (an empty string) in this file's name, "
                 "so there is no subject to pool the image under; make the group match at least one character")
# The matching, in a separate Python (`-I -S`: nothing but the standard library): a pattern that
# backtracks catastrophically on a name is stopped by killing it, which a thread could not be.
_MATCH_SUBJECTS = r"""
import json, re, sys
lines = sys.stdin.buffer.read().decode("utf-8").splitlines()
pattern = re.compile(json.loads(lines[0]))
group = "subject" if "subject" in pattern.groupindex else 1
sys.stdout.write("true\n")  # ready: the names are read, the timing starts
sys.stdout.flush()
for line in lines[1:]:
    found = pattern.search(json.loads(line))
    sys.stdout.write(json.dumps(None if found is None else (found[group] or "")) + "\n")
    sys.stdout.flush()
"""


class SubjectPatternError(ValueError):
    """``--by-subject``'s pattern is not one predict can use."""


def subject_pattern(pattern: str) -> re.Pattern:
    """``--by-subject``'s pattern, compiled: it must have a group named ``subject`` (or exactly one group)."""
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise SubjectPatternError(f"--by-subject {pattern!r} is not a regular expression ({error})") from None
    if "subject" not in compiled.groupindex and compiled.groups != 1:
        raise SubjectPatternError(f"--by-subject {pattern!r} needs a group naming the subject: (?P<subject>...) or "
                                  "one (...) group, as the default (C-NMC's file names, `leukobench predict --help`) has")
    return compiled


def find_subjects(pattern: re.Pattern, files: list[Path], limit: float = PATTERN_SECONDS) -> list[str | None]:
    """The subject that ``pattern`` finds in each file's name: its ``subject`` group (or its one
    group), "" where the group matches the empty string or takes no part in the match, None where
    the pattern does not match the name. Each name is given ``limit`` seconds (a name is at most a
    few hundred characters: a sane pattern takes microseconds); a pattern that takes longer on any
    name, as one that backtracks catastrophically (``(a+)+``, ``(\\w+\\s?)+$``) does, is refused
    with :class:`SubjectPatternError` naming the pattern, the name and the limit, before any image
    is read."""
    import queue
    import subprocess
    import threading

    names = [Path(f).name for f in files]
    child = subprocess.Popen([sys.executable, "-I", "-S", "-c", _MATCH_SUBJECTS], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    results: queue.Queue = queue.Queue()

    def feed() -> None:
        try:
            child.stdin.write("\n".join(json.dumps(text) for text in (pattern.pattern, *names)).encode() + b"\n")
            child.stdin.close()
        except OSError:  # killed: the reader says so
            pass

    def read() -> None:
        for line in child.stdout:
            results.put(json.loads(line))
        results.put(EOFError)

    threads = [threading.Thread(target=feed, daemon=True), threading.Thread(target=read, daemon=True)]
    for thread in threads:
        thread.start()
    found: list[str | None] = []
    try:
        try:
            ready = results.get(timeout=CHILD_START_SECONDS)
        except queue.Empty:
            ready = None
        if ready is not True:
            raise RuntimeError(f"--by-subject: the process matching the file names did not start (exit code "
                               f"{child.poll()})")
        for name in names:
            try:
                value = results.get(timeout=limit)
            except queue.Empty:
                raise SubjectPatternError(
                    f"--by-subject {pattern.pattern!r} took more than {limit:g} s on the file name {printable(name)!r} "
                    "(a pattern with nested repeats such as (a+)+ or (\\w+_?)+ can take years on one name); "
                    "give a pattern without a repeat inside a repeat, as the default (`leukobench predict --help`) "
                    "is") from None
            if value is EOFError:
                raise RuntimeError(f"--by-subject: the matching process ended early (exit code {child.wait()})")
            found.append(value)
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            try:
                stream.close()
            except OSError:
                pass
    return found


def subject_table(rows: list[dict], class_names: list[str],
                  aggregation: str = "mean") -> tuple[pd.DataFrame, list[str]]:
    """One row per subject of the classified images (each row's ``subject``, from
    :func:`find_subjects`): ``subject``, ``cells``, ``predicted_class`` and the aggregate
    ``score_<class>`` (:func:`leukobench.metrics.aggregate_by_subject`, the evaluation's subject
    verdict); and the paths whose file name the pattern does not match (``subject`` None)."""
    subjects, scores, unmatched = [], [], []
    for row in rows:
        if row.get("subject") is None:
            unmatched.append(row["path"])
            continue
        subjects.append(row["subject"])
        scores.append([row[f"score_{name}"] for name in class_names])
    if not subjects:
        return pd.DataFrame(columns=["subject", "cells", "predicted_class", *(f"score_{n}" for n in class_names)]), unmatched
    scores = np.asarray(scores, dtype=np.float64)
    binary = len(class_names) == 2
    names = sorted(set(subjects))  # grouped by number: pandas' string dtype cannot hold a name that is not UTF-8
    number = {name: k for k, name in enumerate(names)}
    table = aggregate_by_subject(scores[:, 1] if binary else scores, np.asarray([number[s] for s in subjects]),
                                 aggregation)
    values = table.drop(columns="cells").to_numpy()
    values = np.column_stack([1 - values[:, 0], values[:, 0]]) if binary else values
    out = pd.DataFrame({"subject": pd.Series([names[k] for k in table.index], dtype=object),
                        "cells": table["cells"].to_numpy(),
                        "predicted_class": np.asarray(class_names)[predict_labels(values[:, 1] if binary else values)]})
    for k, name in enumerate(class_names):
        out[f"score_{name}"] = values[:, k]
    return out, unmatched
