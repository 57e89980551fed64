"""The report's tables: the best configuration of each model in the studies' own shape, k-fold
summaries, and the reproduction table (each published number beside ours on the same protocol).

Everything starts from ``results/report/metrics.csv`` (one row per evaluated trial and split).

* **k-fold trials** are first collapsed over their folds: the value of a metric is the mean over
  the folds, its interval the 95 % t-interval of that mean (``mean ± t(k-1) · sd / √k``, within [0, 1]), and the
  standard deviation over folds is kept beside it (``<metric>_sd``).
* **Best configuration**: per approach, dataset, split method, variant and model (and features /
  classifier), the configuration with the highest *validation* accuracy, reported with its test
  metrics. The studies chose on the test split; choosing on it would make the winner's test score
  optimistic, so it is used only when a grid has no validation split (the table says which).
* **Reproduction**: a preset's ``published`` section lists each number a study reports with the
  trial that reproduces it (keys of ``TRIAL_KEYS``; :mod:`leukobench.published` checks the section when
  the run starts) and the study's data set; ``data`` maps that
  data set to the dataset of this run that stands for it (the embedded synthetic cells as
  shipped, the real data once a user points a dataset at it). Epochs and sizes are scaled as the
  grid was for a smoke run (``scale``), so a scaled run is compared with what it ran.
* **Trials that did not learn** (metrics.csv's ``learned``, :mod:`leukobench.learned`): the
  best-configuration table says per configuration how many of its seeds (or folds) did not learn
  (``did_not_learn``: "2 of 3 seeds did not learn"), beside the mean over the seeds, which keeps
  them (choosing on validation is unchanged); the reproduction table names a comparison with such a
  trial in its note, and the seed range's verdict counts them.
* **No interval**: a split with too few subjects for a bootstrap interval (metrics.csv's
  ``interval_note``, see :data:`leukobench.subjects.MIN_INTERVAL_GROUPS`) is shown as
  ``0.884 (no interval: 4 subjects)``, never as a bare point, and the reproduction table's verdict
  for it is "no interval" rather than inside or outside.
* **Text, never markup**: every name, note and heading written into the markdown and HTML files
  (study, source, configuration values, dataset and class names, the notes of ``published``) is
  text: :func:`markdown_text` escapes it for markdown, :func:`html.escape` (and pandas' escaping
  ``to_html``) for HTML, in :func:`write_tables`, which writes every table file of the report.
"""

from __future__ import annotations

import html
import os
import re

import numpy as np
import pandas as pd

from leukobench.io import atomic_path
from leukobench.keys import scaled_epochs, scaled_size
from leukobench.learned import LEARNED_NOTE
from leukobench.metrics import NO_INTERVAL_VERDICT, no_interval_text
from leukobench.published import METRIC_ALIASES, NOT_COMPUTED, mapped_datasets
from leukobench.report.selection import (DID_NOT_LEARN, TABLE_METRICS, trial_keys, collapse_folds, did_not_learn_text,
                                         same_trial_prefixes)

APPROACH_TITLES = {
    "cnn": "CNNs trained end to end (Varol Approach 1 and 3, Abed, Rezayi, Zhang)",
    "hybrid": "A CNN's conv layers as feature extractor (FEM-k) to a classical classifier (Varol Approach 2)",
    "classical": "Classical classifiers on pixels or HOG + PCA features (Rezayi, Zhang)",
}


def formatted(table: pd.DataFrame, metrics: tuple[str, ...] = TABLE_METRICS) -> pd.DataFrame:
    """Metrics as ``0.870 [0.841, 0.897]`` (or ``0.870 ± 0.021 (10 folds)``, or
    ``0.884 (no interval: 4 subjects)``), the trainings that did not learn in words ("2 of 3 seeds
    did not learn"), parameters as text, columns that hold nothing dropped."""
    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        if column in metrics:
            out[column] = [_metric_text(row, column) for _, row in table.iterrows()]
        elif column == DID_NOT_LEARN:
            out[column] = [did_not_learn_text(row) for _, row in table.iterrows()]
        elif not column.endswith(("_low", "_high", "_sd", "_min", "_max", "interval_note")) and column != "selection":
            out[column] = table[column].map(_text)
    return out.loc[:, [c for c in out.columns if out[c].ne("").any()]]


def _metric_text(row: pd.Series, name: str) -> str:
    value = row[name]
    if pd.isna(value):
        return "n/a"
    if row.get("seeds", 1) > 1 and pd.notna(row.get(f"{name}_min")):
        return (f"{value:.3f} ± {row[f'{name}_sd']:.3f} ({int(row['seeds'])} seeds: "
                f"{row[f'{name}_min']:.3f}–{row[f'{name}_max']:.3f})")
    if row.get("folds", 1) > 1:
        return f"{value:.3f} ± {row[f'{name}_sd']:.3f} ({int(row['folds'])} folds)"
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    if pd.notna(low) and pd.notna(high):
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"
    prefix = next((p for p in same_trial_prefixes() if name.startswith(p)), "")  # another row's note for its columns
    note = row.get(f"{prefix}interval_note")
    return no_interval_text(value, note)


def _text(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if pd.isna(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- reproduction


def reproduction_table(metrics: pd.DataFrame, published: dict, scale: float = 1.0,
                       smoke_min_size: int | None = None) -> pd.DataFrame:
    """Every published number beside ours: one row per number and matching trial of this run, for
    each dataset the study's data set is mapped to (a row with ``ours`` empty when no trial of the
    run matches, saying why). A smoke run (``scale`` < 1) is compared at its scaled epochs and
    sizes, which needs the size the planning side scaled to at least (``smoke_min_size``,
    :func:`leukobench.plan.config.smoke_min_size`, given by the workflow)."""
    if scale != 1.0 and smoke_min_size is None:
        raise ValueError("a smoke run (scale < 1) is compared at its scaled sizes: give smoke_min_size")
    summary = collapse_folds(metrics)
    rows = []
    for entry, dataset in ((entry, dataset) for entry in published["results"]
                           for dataset in mapped_datasets(published, entry["data"]) or [None]):
        trial = _scaled_trial(entry.get("trial", {}), scale, smoke_min_size)
        split = entry.get("split", "test")
        candidates = summary[summary["split"] == split]
        candidates = candidates[candidates["dataset"] == dataset] if dataset else candidates.iloc[0:0]
        for key, value in trial.items():
            candidates = candidates[candidates[key] == value] if key in candidates else candidates.iloc[0:0]
        base = {"source": entry["source"], "data": entry["data"], "dataset": dataset or "",
                "configuration": _describe(entry.get("trial", {})), "split": split}
        for name, value in entry.items():
            if name in ("source", "data", "trial", "split", "note"):
                continue
            ours_name = METRIC_ALIASES.get(name, name)
            line = {**base, "metric": name, "published": float(value)}
            if name in NOT_COMPUTED:
                rows.append({**line, "note": NOT_COMPUTED[name]})
                continue
            if candidates.empty:
                why = (f"the study's data set {entry['data']} is not mapped to a dataset of this run" if not dataset
                       else "no trial of this run has this configuration")
                rows.append({**line, "note": why})
                continue
            configurations = candidates.groupby(trial_keys(candidates, without=("seed",)), dropna=False)
            over_seeds = configurations[ours_name]
            spread = pd.DataFrame({what: over_seeds.transform(what) for what in ("count", "min", "max")})
            failed = (configurations[DID_NOT_LEARN].transform(lambda v: v.sum(min_count=1))
                      if DID_NOT_LEARN in candidates else pd.Series(np.nan, index=candidates.index))
            for index, ours in candidates.iterrows():
                value, low, high = ours[ours_name], ours[f"{ours_name}_low"], ours[f"{ours_name}_high"]
                inside = bool(low <= line["published"] <= high) if pd.notna(low) and pd.notna(high) else None
                note = ours.get("interval_note", "") if inside is None else ""
                seeds = spread.loc[index]  # the spread of this configuration over its seeds
                repeated = {"seeds": int(seeds["count"]), "seed_min": seeds["min"], "seed_max": seeds["max"],
                            "inside_seeds": bool(seeds["min"] <= line["published"] <= seeds["max"])
                            if seeds["count"] > 1 else None, "seeds_did_not_learn": failed.loc[index]}
                rows.append({**line, "trial": _describe(ours[trial_keys(summary, without=("approach",))].dropna().to_dict()),
                             "ours": value, "low": low, "high": high, "folds": ours["folds"],
                             "difference": value - line["published"], "inside": inside,
                             "interval_note": note if isinstance(note, str) else "", **repeated,
                             **_learned_of(ours),
                             "note": "same quantity as accuracy" if name in METRIC_ALIASES else entry.get("note", "")})
    columns = ["source", "data", "dataset", "configuration", "split", "metric", "published", "ours", "low", "high",
               "difference", "inside", "interval_note", "seeds", "seed_min", "seed_max", "inside_seeds",
               "seeds_did_not_learn", "folds", "did_not_learn", LEARNED_NOTE, "trial", "note"]
    return pd.DataFrame(rows).reindex(columns=columns)


def _learned_of(ours: pd.Series) -> dict:
    """Whether the trial compared (its folds, for k-fold) learned: ``did_not_learn`` (how many of
    its trainings did not; NaN where metrics.csv says nothing) and its ``learned_note``."""
    note = ours.get(LEARNED_NOTE)
    return {DID_NOT_LEARN: ours.get(DID_NOT_LEARN, np.nan), LEARNED_NOTE: note if isinstance(note, str) else ""}


def reproduction_display(table: pd.DataFrame) -> pd.DataFrame:
    """The reproduction table for reading: numbers to three decimals, intervals in brackets; where
    ours has no interval it says so, and so does the verdict ("no interval", not inside or outside)."""
    def number(value, digits=3):
        return "" if pd.isna(value) else f"{value:.{digits}f}"

    def ours_text(r) -> str:
        if pd.isna(r.ours):
            return ""
        folds = f" ({int(r.folds)} folds)" if pd.notna(r.folds) and r.folds > 1 else ""
        if pd.isna(r.low) or pd.isna(r.high):
            return no_interval_text(r.ours, getattr(r, "interval_note", "")) + folds
        return f"{r.ours:.3f} [{r.low:.3f}, {r.high:.3f}]" + folds

    def verdict(r) -> str:
        if pd.isna(r.ours):
            return ""
        if pd.isna(r.inside):
            return NO_INTERVAL_VERDICT
        return "yes" if r.inside else "no"

    def seed_verdict(r) -> str:
        if pd.isna(r.ours) or pd.isna(r.inside_seeds):
            return ""
        failed = (f"; {int(r.seeds_did_not_learn)} of {int(r.seeds)} did not learn"
                  if pd.notna(r.seeds_did_not_learn) and r.seeds_did_not_learn > 0 else "")
        return f"{'yes' if r.inside_seeds else 'no'} ({int(r.seeds)} seeds: {r.seed_min:.3f}–{r.seed_max:.3f}{failed})"

    def note(r) -> str:
        given = "" if pd.isna(r.note) else str(r.note)
        if pd.isna(r.ours) or pd.isna(r.did_not_learn) or r.did_not_learn == 0:
            return given
        trial = ("this trial did not learn" if pd.isna(r.folds) or r.folds <= 1
                 else f"{int(r.did_not_learn)} of its {int(r.folds)} folds did not learn")
        why = getattr(r, LEARNED_NOTE, "")
        said = f"{trial} ({why})" if isinstance(why, str) and why else trial
        return f"{said}; {given}" if given else said

    display = pd.DataFrame({
        "source": table["source"], "data": table["data"] + " → " + table["dataset"].replace("", "(not in this run)"),
        "configuration": table["configuration"], "split": table["split"], "metric": table["metric"],
        "published": table["published"].map(number),
        "ours [95 % CI]": [ours_text(r) for r in table.itertuples()],
        "difference": table["difference"].map(lambda v: "" if pd.isna(v) else f"{v:+.3f}"),
        "inside CI": [verdict(r) for r in table.itertuples()],
        "inside seed range": [seed_verdict(r) for r in table.itertuples()],
        "note": [note(r) for r in table.itertuples()],
    })
    if not display["inside seed range"].astype(bool).any():  # no configuration of several seeds
        display = display.drop(columns="inside seed range")
    return display


def _scaled_trial(trial: dict, scale: float, smoke_min_size: int | None) -> dict:
    if scale == 1.0:
        return dict(trial)
    scaled = dict(trial)
    if "epochs" in scaled:
        scaled["epochs"] = scaled_epochs(scaled["epochs"], scale)
    if "size" in scaled:
        scaled["size"] = scaled_size(scaled["size"], scale, smoke_min_size)
    return scaled


def _describe(trial: dict) -> str:
    return ", ".join(f"{key}={_text(value)}" for key, value in trial.items())


def reproduction_summary(table: pd.DataFrame) -> str:
    """One sentence: how many published numbers were compared, how many lie inside our interval,
    and how many comparisons could not be judged for want of an interval."""
    numbers = table.drop_duplicates(["source", "configuration", "split", "metric"])
    compared = table.dropna(subset=["ours"])
    unjudged = int(compared["inside"].isna().sum())
    dead = int((compared.get(DID_NOT_LEARN, pd.Series(dtype=float)) > 0).sum())
    return (f"{len(numbers)} published number(s): {len(compared)} comparison(s) with trials of this run, "
            f"{compared['inside'].eq(True).sum()} inside our 95 % interval"
            + (f", {unjudged} not judged (ours has no interval)" if unjudged else "")
            + (f", {dead} with a trial that did not learn (the note says so)" if dead else "")
            + (f", {compared['inside_seeds'].eq(True).sum()} of {compared['inside_seeds'].notna().sum()} inside the "
               "range of our seeds" if compared.get("inside_seeds", pd.Series(dtype=object)).notna().any() else "")
            + f"; {table['ours'].isna().sum()} number(s) not compared (the note says why).")


# ----------------------------------------------------------------------------- writing


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|$&~^])")  # inline markdown, GFM tables, math and raw HTML
MARKDOWN_LINE_START = re.compile(r"^(\s*(?:\d+)?)([-=.)])")  # what starts a list, a thematic break or a heading underline


def markdown_text(value: object, trial: bool = False) -> str:
    """``value`` as markdown that shows it as written: one line (a line break would end a table row
    or start a block), every character that markdown, GitHub's tables and math or raw HTML give a
    meaning escaped with a backslash (CommonMark's escape of ASCII punctuation), so that a study
    note ``</script><img src=x onerror=alert(4)>``, a class ``blast$\\foo$`` or a name with ``|``
    stays text; outside a table ``trial`` also what would start a list, a rule or a heading."""
    text = MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).splitlines()))
    return text if trial else MARKDOWN_LINE_START.sub(r"\1\\\2", text)


def _markdown_table(table: pd.DataFrame) -> str:
    shown = table.astype(object).where(table.notna(), "").map(lambda value: markdown_text(value, trial=True))
    shown.columns = [markdown_text(column, trial=True) for column in table.columns]
    return shown.to_markdown(index=False, disable_numparse=True)


def write_tables(sections: list[tuple[str, str, pd.DataFrame | None]], markdown_path: str | os.PathLike,
                 html_path: str | os.PathLike, title: str, intro: str) -> None:
    """Write ``(heading, text, table)`` sections as one markdown and one standalone HTML file (a
    section whose table is None is its text alone). Every heading, text and table trial is written
    as text (:func:`markdown_text`, :func:`html.escape`), never as markup."""
    markdown = [f"# {markdown_text(title)}", "", markdown_text(intro), ""]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(intro)}</p>"]
    for heading, text, table in sections:
        markdown += [f"## {markdown_text(heading)}", "", markdown_text(text), ""]
        body += [f"<h2>{html.escape(heading)}</h2>", f"<p>{html.escape(text)}</p>"]
        if table is not None:
            markdown += [_markdown_table(table) if len(table) else "(none)", ""]
            body.append(table.to_html(index=False, border=0, classes="results", na_rep="", escape=True) if len(table)
                        else "<p>(none)</p>")
    with atomic_path(markdown_path) as tmp:
        tmp.write_text("\n".join(markdown), encoding="utf-8")
    with atomic_path(html_path) as tmp:
        tmp.write_text(HTML_PAGE.format(title=html.escape(title), body="\n".join(body)), encoding="utf-8")


HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table.results {{ border-collapse: collapse; font-size: 0.85em; margin-bottom: 2em; }}
table.results th, table.results td {{ padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap; }}
table.results thead th {{ background: #f0f0f0; position: sticky; top: 0; }}
table.results tbody tr:hover {{ background: #f7f7ff; }}
</style></head>
<body>
{body}
</body></html>
"""
