"""Whether two versions of the code give the same results on one config (issue 21, item 7).

    python benchmarks/compare_results.py [--baseline c50137b] [--candidate REV] [--config c50137b:config.yaml]
                                         [--cores N] [--keep DIR] [--tolerance 0] [--explain]

Each version's code, a git revision (--baseline; --candidate, by default this working tree), is
exported into a folder of its own with the config (--config REV:PATH, a file as committed) as its
config.yaml, and the workflow runs there as a user runs it: `python -m snakemake --cores N
--resources gpu=1`, Snakemake reading the tree's own profiles/default, the tree's src/ first on
PYTHONPATH so that each tree runs its own package. With --keep DIR the runs stay in
DIR/config-<sha256 of the config>/<commit id>/leukobench (the working tree: worktree-<sha256 of the
files a run may read>), so a second call with the same revision and config finds its run finished
and Snakemake reruns nothing.

A config key whose values changed since the config was written is translated for a tree whose
schema no longer allows the old value, by the explicit table CONFIG_TRANSLATIONS, and printed.

Then results/report/metrics.csv, the best-configuration table and reproduction.csv of the two runs
are compared. Rows are matched on their key columns (KEY_COLUMNS), not on their order; every column
both tables have is compared, value by value: equal text, or numbers equal within --tolerance
(default 0: exactly equal; the largest difference is printed). Timing columns (TIMING_COLUMNS) are
left out, columns renamed since (RENAMED_COLUMNS, and RENAMED_PATHS inside values) are compared
under their new names, so the script works before and after a rename. A key column added since
(KEY_DEFAULTS: metrics.csv's `level`, `subject_aggregation`, `calibration`, `tta`) is given, in the
table without it, the value its rows stood for (a cell-level row, not calibrated, no test-time
augmentation), so an older run's rows match the newer run's plain ones. Columns only one side has
are listed as added or removed, not counted as differences; rows only one side has are listed and
are differences. A short summary per file: rows and columns compared, the differing values by
column with a few examples. With --explain, a difference that EXPLANATIONS accounts for (a known,
intended change since the baseline) is printed with its cause and does not fail the comparison;
without it, every difference fails. Exit status 0 when the results are the same, 1 when not.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import yaml

from common import available_cores  # benchmarks/common.py
from workflow_speed import COMPARED, REPO, TIMING_COLUMNS, Checkout, code_copy

NOTHING = "Nothing to be done"
# the key columns of each compared table, under their current names (those present in both are used)
KEY_COLUMNS = {
    "metrics.csv": ("trial", "split", "level", "subject_aggregation", "calibration", "tta"),
    "best_configurations.csv": ("approach", "dataset", "split_method", "variant", "model", "features", "classifier"),
    "reproduction.csv": ("source", "data", "dataset", "configuration", "split", "metric"),
}
# key columns added since an older run wrote its table: the value each row of a table without the column stood for
KEY_DEFAULTS = {
    "metrics.csv": {"level": "cell", "subject_aggregation": "", "calibration": "none", "tta": "none"},
}
# columns renamed since the baseline (old name -> new name), and path prefixes renamed inside values
RENAMED_COLUMNS = {"cell": "trial"}
RENAMED_PATHS = {"results/cells/": "results/trials/"}


@dataclass(frozen=True)
class ConfigTranslation:
    """A config value that a newer schema spells otherwise: ``old`` at ``key`` becomes ``new``."""
    key: tuple[str, ...]
    old: object
    new: object
    why: str


CONFIG_TRANSLATIONS = (
    ConfigTranslation(("evaluation", "saliency"), True, "all",
                      "b2f7004: evaluation.saliency is none | chosen | all; true (Grad-CAM of every Keras trial) is all"),
)


@dataclass(frozen=True)
class Explanation:
    """A known, intended change since the baseline: the differences of ``columns`` in ``file`` for
    which ``applies(row)`` holds (row: the key columns, ``column``, ``baseline`` and ``candidate``)."""
    file: str
    columns: tuple[str, ...]
    applies: Callable[[pd.Series], bool]
    cause: str


EXPLANATIONS: tuple[Explanation, ...] = ()


# ----------------------------------------------------------------------------- comparison

@dataclass
class Comparison:
    """What two versions of one table have in common and where they differ."""
    name: str
    keys: list[str]
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    timing: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    defaulted: list[str] = field(default_factory=list)  # key columns one table lacked, given their default (KEY_DEFAULTS)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    only_baseline: pd.DataFrame | None = None
    only_candidate: pd.DataFrame | None = None
    differences: pd.DataFrame | None = None  # keys, column, baseline, candidate, difference, cause
    max_difference: float | None = None
    missing: str | None = None  # "baseline" / "candidate": the table only one run wrote

    def unexplained(self) -> int:
        differing = 0 if self.differences is None else int(self.differences["cause"].eq("").sum())
        rows = sum(len(t) for t in (self.only_baseline, self.only_candidate) if t is not None)
        return differing + rows + (self.missing in ("baseline", "candidate"))  # a table neither wrote is no difference


def read_table(path: Path) -> pd.DataFrame:
    """A CSV as written: every value as its text ('' where empty), so nothing is lost to parsing."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def with_current_names(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The table with renamed columns and paths under their new names, and which columns were renamed."""
    renamed = [f"{old} -> {new}" for old, new in RENAMED_COLUMNS.items() if old in table and new not in table]
    table = table.rename(columns={old: new for old, new in RENAMED_COLUMNS.items() if new not in table})
    for column in table:
        for old, new in RENAMED_PATHS.items():
            table[column] = table[column].str.replace(old, new, regex=False)
    return table, renamed


def is_timing(column: str) -> bool:
    return any(column == name or column.startswith(f"{name}_") for name in TIMING_COLUMNS)


class UnmatchedRows(ValueError):
    """The key columns of a table do not name one row each: its rows cannot be matched."""


def with_key_defaults(name: str, baseline: pd.DataFrame, candidate: pd.DataFrame
                      ) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Both tables with the key columns of KEY_DEFAULTS that only one of them has given to the
    other at their default, and what was given ("level = 'cell' in the baseline")."""
    tables, given = {"baseline": baseline, "candidate": candidate}, []
    for key, value in KEY_DEFAULTS.get(name, {}).items():
        for side, other in (("baseline", "candidate"), ("candidate", "baseline")):
            if key in tables[other] and key not in tables[side]:
                tables[side] = tables[side].assign(**{key: value})
                given.append(f"{key} = {value!r} in the {side}")
    return tables["baseline"], tables["candidate"], given


def compare_tables(name: str, baseline: pd.DataFrame, candidate: pd.DataFrame, tolerance: float = 0.0,
                   explanations: tuple[Explanation, ...] = ()) -> Comparison:
    """Compare two versions of a table (text values, as :func:`read_table` gives them) row by row.
    Raises :class:`UnmatchedRows` where the key columns do not name one row each."""
    baseline, renamed_b = with_current_names(baseline)
    candidate, renamed_c = with_current_names(candidate)
    baseline, candidate, defaulted = with_key_defaults(name, baseline, candidate)
    keys = [key for key in KEY_COLUMNS[name] if key in baseline and key in candidate]
    result = Comparison(name, keys, renamed=sorted(set(renamed_b + renamed_c)), defaulted=defaulted)
    for side, table in (("baseline", baseline), ("candidate", candidate)):
        duplicated = table[table.duplicated(keys, keep=False)]
        if not keys or len(duplicated):
            raise UnmatchedRows(f"{name}: the key columns {keys} do not name one row each in the {side} "
                                f"({len(duplicated)} rows share theirs): cannot match rows")
    common = [c for c in baseline if c in candidate and c not in keys]
    result.timing = [c for c in common if is_timing(c)]
    result.columns = [c for c in common if not is_timing(c)]
    result.added = [c for c in candidate if c not in baseline]
    result.removed = [c for c in baseline if c not in candidate]
    merged = baseline[keys + result.columns].merge(candidate[keys + result.columns], on=keys, how="outer",
                                                   suffixes=(" baseline", " candidate"), indicator=True)
    result.only_baseline = merged.loc[merged["_merge"] == "left_only", keys].reset_index(drop=True)
    result.only_candidate = merged.loc[merged["_merge"] == "right_only", keys].reset_index(drop=True)
    both = merged[merged["_merge"] == "both"]
    result.rows = len(both)
    differences, largest = [], []
    for column in result.columns:
        before, after = both[f"{column} baseline"], both[f"{column} candidate"]
        numbers = pd.to_numeric(before, errors="coerce"), pd.to_numeric(after, errors="coerce")
        numeric = numbers[0].notna() & numbers[1].notna()
        gap = (numbers[0] - numbers[1]).abs()[numeric]
        largest.append(gap.max() if len(gap) else None)
        same = (before == after) | (numeric & ((numbers[0] == numbers[1]) | (gap <= tolerance)))
        if (~same).any():
            rows = both.loc[~same, keys].assign(column=column, baseline=before[~same], candidate=after[~same],
                                                difference=gap.reindex(before.index)[~same])
            differences.append(rows)
    found = [value for value in largest if value is not None and pd.notna(value)]
    result.max_difference = max(found) if found else None
    if differences:
        table = pd.concat(differences, ignore_index=True)
        table["cause"] = [next((e.cause for e in explanations if e.file == name and row["column"] in e.columns
                                and e.applies(row)), "") for _, row in table.iterrows()]
        result.differences = table
    return result


def compare_runs(baseline: Path, candidate: Path, tolerance: float = 0.0,
                 explanations: tuple[Explanation, ...] = ()) -> list[Comparison]:
    """Compare the tables of COMPARED that two finished runs wrote (a table neither wrote is skipped)."""
    comparisons = []
    for path in COMPARED:
        name = Path(path).name
        there = [(folder / path).exists() for folder in (baseline, candidate)]
        if not any(there):
            comparisons.append(Comparison(name, [], missing="both"))
        elif not all(there):
            comparisons.append(Comparison(name, [], missing="candidate" if there[0] else "baseline"))
        else:
            comparisons.append(compare_tables(name, read_table(baseline / path), read_table(candidate / path),
                                              tolerance, explanations))
    return comparisons


def summary(result: Comparison, examples: int = 3) -> str:
    """A few lines on one table: what was compared, what differs, a few examples of each difference."""
    if result.missing == "both":
        return f"{result.name}: written by neither run (no rule makes it with this config)"
    if result.missing:
        return f"{result.name}: DIFFERS: only the {'baseline' if result.missing == 'candidate' else 'candidate'} wrote it"
    lines = [f"{result.name}: {result.rows} rows compared on {', '.join(result.keys)}; "
             f"{len(result.columns)} columns compared"
             + (f", largest numeric difference {result.max_difference:.3g}" if result.max_difference is not None else "")]
    for label, names in (("timing columns left out", result.timing), ("renamed", result.renamed),
                         ("key columns added since, at the value the older rows stood for", result.defaulted),
                         ("columns only in the candidate (added)", result.added),
                         ("columns only in the baseline (removed)", result.removed)):
        if names:
            lines.append(f"  {label}: {', '.join(names)}")
    for side, rows in (("baseline", result.only_baseline), ("candidate", result.only_candidate)):
        if rows is not None and len(rows):
            shown = "; ".join(_key_text(row, result.keys) for _, row in rows.head(examples).iterrows())
            lines.append(f"  {len(rows)} rows only in the {side}, e.g. {shown}")
    if result.differences is not None:
        for (column, cause), group in result.differences.groupby(["column", "cause"], sort=False):
            gap = group["difference"].max()
            lines.append(f"  {column}: {len(group)} of {result.rows} rows differ"
                         + (f" (by up to {gap:.3g})" if pd.notna(gap) else "")
                         + (f"; explained: {cause}" if cause else ""))
            for _, row in group.head(examples).iterrows():
                lines.append(f"    {_key_text(row, result.keys)}: {row['baseline']!r} -> {row['candidate']!r}")
    explained = 0 if result.differences is None else int(result.differences["cause"].ne("").sum())
    verdict = ("EQUAL" if not result.unexplained() and not explained
               else f"equal but for {explained} explained values" if not result.unexplained()
               else f"DIFFERS: {result.unexplained()} unexplained differences")
    lines[0] += f": {verdict}"
    return "\n".join(lines)


def _key_text(row: pd.Series, keys: list[str]) -> str:
    return ", ".join(f"{key}={row[key]}" for key in keys if row[key] != "")


# ----------------------------------------------------------------------------- the runs

def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True).stdout


def config_of(spec: str) -> bytes:
    """The config REV:PATH as committed."""
    revision, _, path = spec.partition(":")
    if not path:
        sys.exit(f"--config {spec}: expected REV:PATH, e.g. c50137b:config.yaml")
    return subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:{path}"], capture_output=True,
                          check=True).stdout


NOT_READ_BY_RUNS = ("benchmarks", "docs", "tests", "README.md")  # left out of a working tree's digest


def files_digest(folder: Path) -> str:
    """sha256 over the paths and contents of a code folder's files that a workflow run may read (all
    but NOT_READ_BY_RUNS: editing this script or the docs does not make a kept run of the tree stale)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*")
                       if p.is_file() and p.relative_to(folder).parts[0] not in NOT_READ_BY_RUNS):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def schema_allows(schema: dict, key: tuple[str, ...], value: object) -> bool:
    """Whether a config schema allows ``value`` at ``key`` as far as its enum says (no enum: yes)."""
    node = schema
    for part in key:
        node = node.get("properties", {}).get(part)
        if node is None:
            return True
    return "enum" not in node or value in node["enum"]


def translated(config: bytes, schema: dict) -> tuple[bytes, list[str]]:
    """The config as a tree with this schema reads it: values its schema no longer allows translated
    (CONFIG_TRANSLATIONS), and what was translated."""
    values, notes = yaml.safe_load(config), []
    for translation in CONFIG_TRANSLATIONS:
        *parents, last = translation.key
        node = values
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if (isinstance(node, dict) and last in node and node[last] == translation.old
                and not schema_allows(schema, translation.key, translation.old)):
            node[last] = translation.new
            notes.append(f"{'.'.join(translation.key)}: {translation.old!r} -> {translation.new!r} ({translation.why})")
    return (yaml.safe_dump(values, sort_keys=False).encode() if notes else config), notes


def prepared_tree(revision: str | None, config: bytes, root: Path) -> tuple[Path, list[str]]:
    """The folder where ``revision`` (None: this working tree) runs ``config``, exported there with
    the config as its config.yaml unless it is there already (root/config-<sha256 of the
    config>/<commit id, or worktree-<sha256 of its files>>/leukobench), and the config's translations."""
    runs = root / f"config-{hashlib.sha256(config).hexdigest()[:16]}"
    runs.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=runs))  # renamed into place when complete
    try:
        if revision is None:
            code = code_copy(staging, None)
            name = f"worktree-{files_digest(code)[:16]}"
        else:
            name = git("rev-parse", "--verify", f"{revision}^{{commit}}").strip()
        folder = runs / name / "leukobench"
        if not folder.exists():
            if revision is not None:
                code = code_copy(staging, name)
            schema = yaml.safe_load((code / "workflow" / "schemas" / "config.schema.yaml").read_text())
            (code / "config.yaml").write_bytes(translated(config, schema)[0])
            (runs / name).mkdir()
            code.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    schema = yaml.safe_load((folder / "workflow" / "schemas" / "config.schema.yaml").read_text())
    return folder, translated(config, schema)[1]


def run(label: str, folder: Path, cores: int) -> None:
    """The workflow run to its end in ``folder``, as a user runs it; prints what it took."""
    checkout = Checkout(folder, src=folder / "src")
    print(f"{label}: running the workflow in {folder} ...", flush=True)
    wall, cpu, output = checkout.snakemake("--cores", str(cores), "--resources", "gpu=1")
    done = [line for line in output.splitlines() if "steps (100%) done" in line]
    what = "finished before: nothing to do" if NOTHING in output else (done[-1].strip() if done else "done")
    print(f"{label}: {what}, {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="c50137b", metavar="REV", help="the revision compared against")
    parser.add_argument("--candidate", metavar="REV", help="the revision compared (default: this working tree)")
    parser.add_argument("--config", default="c50137b:config.yaml", metavar="REV:PATH",
                        help="the config both run, as committed (default c50137b:config.yaml)")
    parser.add_argument("--cores", type=int, default=available_cores())
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the runs here; a finished one is reused")
    parser.add_argument("--tolerance", type=float, default=0.0, help="numbers this close are equal (default 0)")
    parser.add_argument("--examples", type=int, default=3, help="examples shown per differing column")
    parser.add_argument("--explain", action="store_true",
                        help="print the known cause of a difference and let it pass (EXPLANATIONS)")
    args = parser.parse_args()
    config = config_of(args.config)
    root = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="compare_results_"))
    try:
        folders = {}
        for label, revision in (("baseline", args.baseline), ("candidate", args.candidate)):
            folders[label], notes = prepared_tree(revision, config, root)
            for note in notes:
                print(f"{label}: config translated: {note}", flush=True)
        for label, folder in folders.items():
            run(f"{label} {getattr(args, label) or 'working tree'}", folder, args.cores)
        try:
            comparisons = compare_runs(folders["baseline"], folders["candidate"], args.tolerance,
                                       EXPLANATIONS if args.explain else ())
        except UnmatchedRows as problem:
            sys.exit(str(problem))
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nresults of {args.candidate or 'the working tree'} against {args.baseline}, config {args.config}:")
    for comparison in comparisons:
        print(summary(comparison, args.examples))
    sys.exit(1 if any(c.unexplained() for c in comparisons) else 0)


if __name__ == "__main__":
    main()
