"""Config text a job reads as a file, never as a rule's ``params:``.

Snakemake pastes every rule's ``params`` unescaped into a ``<script>`` element of the HTML report
(``snakemake --report``), so a name or note from the config (a study's ``published`` notes, a
dataset's class names and patient pattern) must not be a param: a note ``</script><img src=x
onerror=alert(4)>`` would be live in ``report.html``. Such a section is written at planning time,
by an input function of the rule that reads it (``settings_of`` in ``workflow/rules/common.smk``),
to ``results/settings/<name>.json``, and the job reads it with :func:`read_settings`. The file is
rewritten only when its content changes, and Snakemake reruns a job whose input changed (it keeps
the checksum of small inputs: a rewrite with the same content reruns nothing), so an edit of the
section reruns exactly the jobs that read it, as a param would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from leukobench.io import atomic_path

SETTINGS = "results/settings/{name}.json"


def settings_text(value: object) -> str:
    """The file's content: ``value`` as JSON, keys sorted, so equal sections give equal files."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def write_settings(path: str | os.PathLike, value: object) -> str:
    """Write ``value`` to ``path`` (atomically) unless the file already holds it; return the path."""
    path, text = Path(path), settings_text(value)
    try:
        if path.read_text(encoding="utf-8") == text:
            return str(path)
    except (OSError, UnicodeDecodeError):
        pass
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return str(path)


def read_settings(path: str | os.PathLike) -> object:
    """The section a job was given as a settings file (:func:`write_settings`)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a settings file written at planning time ({error}); run snakemake again "
                         "to write it") from None
