"""Which code made an output: a digest of the leukobench modules a workflow script runs.

Snakemake reruns a job when its script file changes (the ``code`` rerun trigger) but not when a
module that script imports changes. Every rule therefore passes ``params: code=code_of(script)``:
the digest of the script and of every ``leukobench`` module it imports, directly or through other
leukobench modules (found by reading their ``import`` statements, not by importing them). Editing
``leukobench/metrics.py`` changes the digest of every rule whose script reaches it, and the
``params`` rerun trigger reruns exactly those jobs. Comments count as changes; whitespace too.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "leukobench"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # src/leukobench


def direct_imports(source: Path, package_root: Path = PACKAGE_ROOT) -> set[Path]:
    """The files of the package's modules that ``source`` itself imports, anywhere in it (inside
    functions too); a package named stands for its ``__init__.py``."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from leukobench import metrics` names a module too
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] != PACKAGE:
                continue
            target = package_root.joinpath(*parts[1:])  # a module, or a package (its __init__.py)
            module = target / "__init__.py" if target.is_dir() else target.with_suffix(".py")
            if module.is_file():
                found.add(module)
    return found


def imported_modules(source: Path, package_root: Path = PACKAGE_ROOT) -> set[Path]:
    """The files of the package's modules ``source`` imports, transitively (``source`` excluded)."""
    found: set[Path] = set()
    pending = [source]
    while pending:
        for module in direct_imports(pending.pop(), package_root) - found:
            found.add(module)
            pending.append(module)
    return found


@lru_cache(maxsize=None)
def code_digest(script: str | Path, package_root: Path = PACKAGE_ROOT) -> str:
    """A short digest of ``script`` and the package modules it reaches (see the module docstring)."""
    script = Path(script)
    if not script.is_file():
        raise FileNotFoundError(f"{script}: no such workflow script")
    files = [script, *sorted(imported_modules(script, package_root))]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
