"""benchmarks/compare_results.py's comparison on small hand-written tables (no workflow run)."""

import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from compare_results import (Explanation, UnmatchedRows, compare_runs, compare_tables, read_table, summary,  # noqa: E402
                             translated)

METRICS = "results/report/metrics.csv"
BEST = "results/report/best_configurations.csv"

# a metrics.csv as the baseline wrote it: the trial's folder in column `cell`, under results/cells/
BASELINE = """cell,split,level,calibration,tta,accuracy,ece,train_seconds,images_per_second,interval_note
results/cells/a,test,cell,none,none,0.75,0.125,10.5,900.0,
results/cells/a,test,cell,temperature,none,0.75,0.0625,10.5,900.0,
results/cells/b,test,cell,none,none,0.5,0.25,3.25,1200.0,no interval: 4 subjects
results/cells/b,val,subject,none,none,0.5,0.25,3.25,1200.0,
"""
# the same results after the rename, rows in another order, other timings, a column added
CANDIDATE = """trial,split,level,calibration,tta,accuracy,ece,train_seconds,images_per_second,interval_note,learned
results/trials/b,val,subject,none,none,0.5,0.25,4.0,1100.0,,True
results/trials/a,test,cell,temperature,none,0.75,0.0625,11.0,850.0,,True
results/trials/b,test,cell,none,none,0.50,0.25,3.0,1250.0,no interval: 4 subjects,True
results/trials/a,test,cell,none,none,0.75,0.125,12.0,800.0,,True
"""


def runs(tmp_path: Path, baseline: str, candidate: str, path: str = METRICS) -> tuple[Path, Path]:
    """Two run folders holding one hand-written table each."""
    folders = tmp_path / "baseline", tmp_path / "candidate"
    for folder, text in zip(folders, (baseline, candidate)):
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    return folders


def metrics_comparison(tmp_path, baseline=BASELINE, candidate=CANDIDATE, **options):
    comparisons = compare_runs(*runs(tmp_path, baseline, candidate), **options)
    return next(c for c in comparisons if c.name == "metrics.csv"), comparisons


def test_equal_tables_pass_whatever_the_row_order_timings_and_rename(tmp_path):
    result, comparisons = metrics_comparison(tmp_path)
    assert result.unexplained() == 0 and result.differences is None
    assert result.rows == 4
    assert result.keys == ["trial", "split", "level", "calibration", "tta"]
    assert result.renamed == ["cell -> trial"]  # the column and the paths in it matched under the new name
    assert result.timing == ["train_seconds", "images_per_second"]  # they differ, and are left out
    assert result.columns == ["accuracy", "ece", "interval_note"]
    assert result.added == ["learned"] and result.removed == []
    assert result.max_difference == 0.0  # 0.5 and 0.50 are the same number
    assert summary(result).splitlines()[0].endswith(": EQUAL")
    # the tables neither run wrote are skipped, not failures
    assert {c.name: c.missing for c in comparisons if c is not result} == {"best_configurations.csv": "both",
                                                                            "reproduction.csv": "both"}
    assert all(c.unexplained() == 0 for c in comparisons)  # what the exit status is made of


def test_a_changed_value_fails_naming_its_row_and_column(tmp_path):
    changed = CANDIDATE.replace("results/trials/a,test,cell,temperature,none,0.75,0.0625",
                                "results/trials/a,test,cell,temperature,none,0.75,0.0700")
    result, _ = metrics_comparison(tmp_path, candidate=changed)
    assert result.unexplained() == 1
    difference = result.differences.iloc[0]
    assert (difference["trial"], difference["calibration"], difference["column"]) == ("results/trials/a", "temperature",
                                                                                       "ece")
    assert (difference["baseline"], difference["candidate"]) == ("0.0625", "0.0700")
    assert result.max_difference == pytest.approx(0.0075)
    text = summary(result)
    assert "DIFFERS" in text.splitlines()[0]
    assert "ece: 1 of 4 rows differ" in text
    assert "trial=results/trials/a, split=test, level=cell, calibration=temperature, tta=none: '0.0625' -> '0.0700'" in text


def test_a_tolerance_lets_small_differences_pass_and_text_must_match(tmp_path):
    nudged = CANDIDATE.replace("0.75,0.125,12.0", "0.7500000001,0.125,12.0")
    assert metrics_comparison(tmp_path / "exact", candidate=nudged)[0].unexplained() == 1
    tolerant, _ = metrics_comparison(tmp_path / "tolerant", candidate=nudged, tolerance=1e-6)
    assert tolerant.unexplained() == 0 and tolerant.max_difference == pytest.approx(1e-10)
    reworded = CANDIDATE.replace("no interval: 4 subjects", "no interval: four subjects")
    result, _ = metrics_comparison(tmp_path / "text", candidate=reworded, tolerance=1.0)
    assert result.differences["column"].tolist() == ["interval_note"]


def test_rows_only_on_one_side_fail_and_columns_only_on_one_side_do_not(tmp_path):
    lines = CANDIDATE.splitlines(keepends=True)
    result, _ = metrics_comparison(tmp_path, candidate="".join(lines[:-1]))  # the last row (trial a, test, none) lost
    assert result.unexplained() == 1 and result.rows == 3
    assert result.only_baseline.to_dict("records") == [
        {"trial": "results/trials/a", "split": "test", "level": "cell", "calibration": "none", "tta": "none"}]
    assert "1 rows only in the baseline" in summary(result)
    without_ece = BASELINE.replace(",ece,", ",").replace(",0.125,", ",").replace(",0.0625,", ",").replace(",0.25,", ",")
    result, _ = metrics_comparison(tmp_path / "columns", baseline=without_ece)
    assert result.unexplained() == 0 and result.added == ["ece", "learned"]


def test_an_explanation_passes_only_the_differences_it_names(tmp_path):
    emptied = CANDIDATE.replace("temperature,none,0.75,0.0625", "temperature,none,0.75,")
    not_applied = Explanation("metrics.csv", ("ece",), lambda row: row["calibration"] == "temperature" and
                              row["candidate"] == "", "the temperature is not applied")
    explained, _ = metrics_comparison(tmp_path / "explained", candidate=emptied, explanations=(not_applied,))
    assert explained.unexplained() == 0
    assert "explained: the temperature is not applied" in summary(explained)
    assert "equal but for 1 explained values" in summary(explained)
    unexplained, _ = metrics_comparison(tmp_path / "plain", candidate=emptied)  # without --explain: a failure
    assert unexplained.unexplained() == 1
    other = emptied.replace("results/trials/b,test,cell,none,none,0.50,0.25", "results/trials/b,test,cell,none,none,0.50,")
    partly, _ = metrics_comparison(tmp_path / "partly", candidate=other, explanations=(not_applied,))
    assert partly.unexplained() == 1  # trial b's plain ece is not what the explanation names


def test_a_table_only_one_run_wrote_fails_and_duplicate_keys_stop(tmp_path):
    baseline, candidate = runs(tmp_path, BASELINE, CANDIDATE)
    (baseline / BEST).write_text("approach,dataset,model,accuracy\ncnn,synthetic,abed_cnn,0.75\n")
    best = next(c for c in compare_runs(baseline, candidate) if c.name == "best_configurations.csv")
    assert best.missing == "candidate" and best.unexplained() == 1
    assert "only the baseline wrote it" in summary(best)
    doubled = read_table(baseline / METRICS)
    with pytest.raises(UnmatchedRows, match="do not name one row each in the candidate"):
        compare_tables("metrics.csv", doubled, pd.concat([doubled, doubled.head(1)], ignore_index=True))


def test_the_speed_benchmark_says_when_two_runs_cannot_be_matched_and_goes_on(tmp_path):
    from workflow_speed import same_results  # benchmarks/workflow_speed.py: the line after its timed runs

    baseline, candidate = runs(tmp_path, BASELINE, CANDIDATE + CANDIDATE.splitlines(keepends=True)[1])
    assert same_results(baseline, candidate).startswith("not comparable: metrics.csv: the key columns")
    assert same_results(*runs(tmp_path / "same", BASELINE, CANDIDATE)) == "metrics.csv identical"


# a metrics.csv from before subject-level rows, calibration and test-time augmentation: one row per trial and split
OLDER = """cell,split,accuracy,ece
results/cells/a,test,0.75,0.125
results/cells/b,test,0.5,0.3
"""


def test_an_older_table_without_the_added_key_columns_matches_the_plain_rows(tmp_path):
    result, _ = metrics_comparison(tmp_path, baseline=OLDER)
    assert result.keys == ["trial", "split", "level", "calibration", "tta"]
    assert result.defaulted == ["level = 'cell' in the baseline", "calibration = 'none' in the baseline",
                                "tta = 'none' in the baseline"]
    # a's plain test row is the same; b's differs in ece; the rows the older run had no column for are the candidate's own
    assert result.rows == 2
    assert result.differences[["trial", "column", "baseline", "candidate"]].values.tolist() == [
        ["results/trials/b", "ece", "0.3", "0.25"]]
    assert sorted(map(tuple, result.only_candidate.values.tolist())) == [
        ("results/trials/a", "test", "cell", "temperature", "none"), ("results/trials/b", "val", "subject", "none", "none")]
    assert result.only_baseline.empty
    assert "key columns added since, at the value the older rows stood for: level = 'cell' in the baseline" in summary(result)


def test_a_config_value_a_newer_schema_spells_otherwise_is_translated():
    config = b"evaluation:\n  saliency: true   # every Keras trial\n  tta: flips\n"
    old = {"properties": {"evaluation": {"properties": {"saliency": {"type": "boolean"}}}}}
    new = {"properties": {"evaluation": {"properties": {"saliency": {"type": "string",
                                                                     "enum": ["none", "chosen", "all"]}}}}}
    assert translated(config, old) == (config, [])  # as written, byte for byte
    text, notes = translated(config, new)
    assert yaml.safe_load(text) == {"evaluation": {"saliency": "all", "tta": "flips"}}
    assert notes and notes[0].startswith("evaluation.saliency: True -> 'all'")
