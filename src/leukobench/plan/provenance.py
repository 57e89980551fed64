"""Which code made an output: a digest of the meaning of a workflow script and the leukobench
modules it runs.

Every rule passes ``params: code=code_of(script)``, the digest of its script and of every
``leukobench`` module the script imports, directly or through other leukobench modules (found by
reading their ``import`` statements, inside functions too, not by importing them). Snakemake's
``params`` rerun trigger then reruns exactly the jobs whose code changed: editing
``leukobench/metrics.py`` reruns the rules whose scripts reach it, and no others.

**A digest covers what the code does, not how it is written.** Each file counts as its abstract
syntax tree (Python's own parse, :func:`code_meaning`), with every string that stands alone as a
statement removed (the docstrings of modules, classes and functions, and the strings documenting
an attribute), written out node by node with the fields it sets (line and column numbers left
out). Comments, docstrings, blank lines, line breaks, indentation inside brackets, quotes and
parentheses that change nothing do not count; a changed name, value, call or import does. (A new
Python version that parses the same code into other nodes would change the digests once.)

**A job that runs one entry of a registry gets the digest of that entry's module only.** The
ingest reads one dataset layout, but its script reaches every reader (the registry of readers
imports them all, so that it is complete): a job passes ``leaving_out=``
:func:`other_entries_modules` (the modules of the registry's other entries, less what its own
entry's module imports), and its digest is taken over its script's reach without them and
without what only they import. Editing the Aria reader then reruns the ingest of an Aria dataset
and no C-NMC ingest; in the same way the training of one model leaves out the other families of
builders (:mod:`leukobench.models`), so editing the transfer models retrains their trials, not the
studies' CNNs. (A module so left out still runs at import, where it only defines and registers its
entry.)

**Job logging is not part of any digest.** :mod:`leukobench.plan.joblog`, which every script
calls first to send its output to the rule's log, says how a log reads and never changes an
output, so it is left out (:data:`OUTSIDE_DIGESTS`): editing it reruns nothing. It imports no
other leukobench module, so no module is hidden behind it.

**What a file means is parsed once per text, not once per planning.** Parsing and writing out the
package's modules is most of what planning costs in this module (0.7 s of every ``snakemake -n`` on 2
cores), so :func:`keep_meanings_in` (the Snakefile calls it with the checkout's ``.snakemake/``, shared by
every working directory the checkout plans) keeps each text's
meaning in a file, keyed by the SHA-256 of the text, the Python version and this module's own text:
an entry is never stale (another text, another Python or another way of writing meanings is
another key), and the next planning parses only the files that changed.

**Snakemake's own ``code`` trigger is off.** For a ``script:`` rule Snakemake reruns a job whose
outputs are older than the script file (its modification time, so a comment or a ``git
checkout`` counts), and it records no text of the ``.smk`` files' script rules. The digest above
covers each script's meaning, so the workflow's default profile (``profiles/default/config.yaml``,
which Snakemake reads by itself) sets ``rerun-triggers`` to ``mtime params input software-env``:
a comment in a workflow script or a ``.smk`` file reruns nothing, a changed config value still
reaches its rules through ``params``.
"""

from __future__ import annotations

import ast
import atexit
import hashlib
import marshal
import sys
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from leukobench.io import atomic_path

PACKAGE = "leukobench"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # src/leukobench
OUTSIDE_DIGESTS = ("plan/joblog.py",)  # infrastructure (job logging), relative to the package: in no digest


def direct_imports(source: Path, package_root: Path = PACKAGE_ROOT) -> set[Path]:
    """The files of the package's modules that ``source`` itself imports, anywhere in it (inside
    functions too); a package named stands for its ``__init__.py``."""
    found: set[Path] = set()
    for name in _read(source.read_text(), str(source))[0]:
        target = package_root.joinpath(*name.split(".")[1:])  # a module, or a package (its __init__.py)
        module = target / "__init__.py" if target.is_dir() else target.with_suffix(".py")
        if module.is_file():
            found.add(module)
    return found


def outside_digests(module: Path, package_root: Path = PACKAGE_ROOT) -> bool:
    """Whether ``module`` is infrastructure left out of every digest (:data:`OUTSIDE_DIGESTS`)."""
    return any(module == package_root / name for name in OUTSIDE_DIGESTS)


def imported_modules(source: Path, package_root: Path = PACKAGE_ROOT, leaving_out: Iterable[str] = ()) -> set[Path]:
    """The files of the package's modules ``source`` imports, transitively (``source`` excluded):
    the modules its digest covers, so without the infrastructure of :data:`OUTSIDE_DIGESTS`, and
    without the modules ``leaving_out`` names (paths relative to the package: the other entries of
    a registry, :func:`other_entries_modules`) and what is reached only through them."""
    left_out = {package_root / name for name in leaving_out}
    found: set[Path] = set()
    pending = [source]
    while pending:
        for module in direct_imports(pending.pop(), package_root) - found:
            if not outside_digests(module, package_root) and module not in left_out:
                found.add(module)
                pending.append(module)
    return found


def other_entries_modules(registry: Any, name: str, package_root: Path = PACKAGE_ROOT) -> frozenset[str]:
    """The modules (relative to the package) that define the entries of ``registry`` other than
    ``name``, less ``name``'s own module and what it imports: what a job that runs only ``name``'s
    entry leaves out of its digest (``leaving_out`` of :func:`code_digest`)."""

    def module_of(entry: str) -> Path:
        return Path(sys.modules[registry.get(entry).__module__].__file__).resolve()

    own = module_of(name)
    kept = {own} | imported_modules(own, package_root)
    return frozenset(module.relative_to(package_root).as_posix()
                     for module in {module_of(entry) for entry in registry.names()} - kept)


def _without_documentation(tree: ast.AST) -> ast.AST:
    """``tree`` with every statement that is a bare string (docstrings) removed, in place."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(node, field, None)
            if isinstance(statements, list):
                statements[:] = [statement for statement in statements
                                 if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
                                         and isinstance(statement.value.value, str))]
    return tree


def _written_out(value) -> str:
    """A node as ``Type(field=..., ...)``, fields that are unset (None) or empty left out, so that a
    field a newer Python adds with an empty default (e.g. ``type_params``) changes nothing."""
    if isinstance(value, ast.AST):
        fields = (f"{name}={_written_out(item)}" for name, item in ast.iter_fields(value)
                  if item is not None and not (isinstance(item, list) and not item))
        return f"{type(value).__name__}({', '.join(fields)})"
    if isinstance(value, list):
        return f"[{', '.join(map(_written_out, value))}]"
    return repr(value)


MEANINGS_FILE = "leukobench_code_meanings.marshal"  # in the folder given to keep_meanings_in
# What makes a kept meaning stale other than its text: the Python that parsed it and this module's own text.
_MEANING_SALT = f"{sys.version_info[:2]}\0".encode() + Path(__file__).read_bytes()


class _KeptMeanings:
    """The meanings of texts (:func:`_read`'s results) kept in a file between plannings."""

    def __init__(self):
        self.path: Path | None = None
        self.entries: dict[str, tuple] = {}
        self.used: set[str] = set()
        self.new = False

    def open(self, folder: Path) -> None:
        if self.path is None:
            atexit.register(self.save)
        self.path = Path(folder).absolute() / MEANINGS_FILE  # where it was asked for, whatever the directory at exit
        try:
            with open(self.path, "rb") as kept:
                entries = marshal.load(kept)
        except (OSError, EOFError, ValueError, TypeError):  # none yet, or unreadable: parsed again, then rewritten
            return
        if isinstance(entries, dict):
            self.entries = {**entries, **self.entries}  # with what this process read before

    def save(self) -> None:
        """Write the meanings this planning used (and no others) when it parsed one anew; a cache, so a
        folder that cannot be written leaves planning as it was."""
        if self.path is None or not self.new:
            return
        try:
            with atomic_path(self.path) as partial, open(partial, "wb") as kept:
                marshal.dump({key: self.entries[key] for key in self.used}, kept)
        except OSError:
            pass
        self.new = False


_KEPT = _KeptMeanings()


def keep_meanings_in(folder: str | Path) -> None:
    """Read the meanings kept in ``folder`` and keep there, when the process ends, those it used (see the
    module docstring)."""
    _KEPT.open(Path(folder))


def _read(source: str, filename: str) -> tuple[tuple[str, ...], str]:
    """The package modules ``source`` names in its imports (dotted), and its meaning (:func:`code_meaning`):
    one parse per text, however many scripts reach the module, and none for a text whose meaning is kept
    (:func:`keep_meanings_in`)."""
    key = hashlib.sha256(_MEANING_SALT + b"\0" + source.encode()).hexdigest()
    _KEPT.used.add(key)
    if key not in _KEPT.entries:
        _KEPT.entries[key] = _parsed(source, filename)
        _KEPT.new = True
    return _KEPT.entries[key]


def _parsed(source: str, filename: str) -> tuple[tuple[str, ...], str]:
    """:func:`_read`'s result, from the text's syntax tree."""
    tree = ast.parse(source, filename=filename)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from leukobench import metrics` names a module too
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return tuple(name for name in names if name.split(".")[0] == PACKAGE), _written_out(_without_documentation(tree))


def code_meaning(source: str, filename: str = "<code>") -> str:
    """What ``source`` does, as text: its syntax tree without docstrings, comments or layout (see the
    module docstring). Two sources that differ only in those give the same text."""
    return _read(source, filename)[1]


@lru_cache(maxsize=None)
def code_digest(script: str | Path, package_root: Path = PACKAGE_ROOT,
                leaving_out: frozenset[str] = frozenset()) -> str:
    """A short digest of the meaning of ``script`` and of the package modules it reaches (see the
    module docstring), less ``leaving_out`` (:func:`imported_modules`)."""
    script = Path(script)
    if not script.is_file():
        raise FileNotFoundError(f"{script}: no such workflow script")
    digest = hashlib.sha256()
    reached = imported_modules(script, package_root, leaving_out)
    for name, path in [(script.name, script), *sorted((module.relative_to(package_root).as_posix(), module)
                                                      for module in reached)]:
        digest.update(name.encode() + b"\0" + code_meaning(path.read_text(), str(path)).encode() + b"\0")
    return digest.hexdigest()[:16]
