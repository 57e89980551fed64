"""The report's tables: fold summaries, best configurations, the reproduction table."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from snakemake.utils import validate

from leukobench.plan.config import classical_trials, hybrid_trials, keras_trials, repeated_seeds
from leukobench.metrics import METRIC_NAMES
from leukobench.published import mapped_datasets, published_problems
from leukobench.report.figures.seeds import plot_seed_spread
from leukobench.report.selection import (best_configurations, trial_folders, cell_level, chosen_keras_trials,
                                         collapse_folds, collapse_seeds, datasets_without_subjects, with_subject_level)
from leukobench.report.tables import (
    formatted,
    reproduction_display,
    reproduction_summary,
    reproduction_table,
    write_tables,
)

REPO = Path(__file__).resolve().parents[1]
PRESETS = sorted((REPO / "presets").glob("*.yaml"))


def row(split: str, accuracy: float, **trial) -> dict:
    values = {name: accuracy for name in METRIC_NAMES}
    bounds = {f"{name}_{side}": accuracy + delta for name in METRIC_NAMES for side, delta in (("low", -0.05), ("high", 0.05))}
    base = {"approach": "cnn", "dataset": "synthetic", "split_method": "subject", "variant": "balanced", "size": 32,
            "model": "varol_cnn3", "optimizer": "adam", "epochs": 50, "batch_size": 32, "seed": 0}
    return {**base, **trial, "split": split, "n": 100, **values, **bounds, "images_per_second": 1000.0,
            "trial": f"results/trials/{trial}"}


def test_the_best_configuration_carries_its_test_splits_majority_rate_through_folds_and_seeds():
    folds = [row("test", 0.8, fold=k) | {"n": n, "majority_rate": rate} for k, (n, rate) in enumerate([(100, 0.5), (300, 0.3)])]
    folds += [row("val", 0.8, fold=k) | {"majority_rate": 0.5} for k in range(2)]
    seeds = [row(split, 0.7, model="abed_cnn", seed=seed) | {"majority_rate": 0.25} for seed in range(3) for split in ("val", "test")]
    best = best_configurations(pd.DataFrame(folds + seeds)).set_index("model")["majority_rate"]
    assert best["varol_cnn3"] == pytest.approx((100 * 0.5 + 300 * 0.3) / 400)  # weighted by the folds' test images
    assert best["abed_cnn"] == 0.25


def test_folds_collapse_to_their_mean_with_a_t_interval_and_holdout_trials_stay():
    accuracies = [0.80, 0.85, 0.90]
    table = pd.DataFrame([row("test", a, fold=k) for k, a in enumerate(accuracies)] + [row("test", 0.7, model="abed_cnn")])
    summary = collapse_folds(table)
    folded = summary[summary["folds"] == 3].iloc[0]
    half = stats.t.ppf(0.975, 2) * np.std(accuracies, ddof=1) / np.sqrt(3)
    assert folded["accuracy"] == pytest.approx(0.85)
    assert folded["accuracy_sd"] == pytest.approx(np.std(accuracies, ddof=1))
    assert (folded["accuracy_low"], folded["accuracy_high"]) == pytest.approx((0.85 - half, min(1.0, 0.85 + half)))
    assert folded["n"] == 300
    holdout = summary[summary["model"] == "abed_cnn"].iloc[0]
    assert holdout["folds"] == 1 and holdout["accuracy_low"] == pytest.approx(0.65)


def test_the_best_configuration_is_chosen_on_validation_not_on_test():
    table = pd.DataFrame([
        row("val", 0.90, optimizer="adam"), row("test", 0.70, optimizer="adam"),
        row("val", 0.80, optimizer="sgd"), row("test", 0.95, optimizer="sgd"),
        row("val", 0.60, model="varol_cnn1"), row("test", 0.60, model="varol_cnn1"),
    ])
    best = best_configurations(table).set_index("model")
    assert best.loc["varol_cnn3", "optimizer"] == "adam" and best.loc["varol_cnn3", "accuracy"] == pytest.approx(0.70)
    assert best.loc["varol_cnn3", "selected_on"] == "val" and best.loc["varol_cnn3", "configurations"] == 2
    without_val = best_configurations(table[table["split"] == "test"]).set_index("model")
    assert without_val.loc["varol_cnn3", "optimizer"] == "sgd" and without_val.loc["varol_cnn3", "selected_on"] == "test"


def test_the_reference_models_get_their_own_rows_in_the_best_configurations():
    """presets/reference.yaml: the reference's trials are chosen on validation like any model's, beside the studies'."""
    table = pd.DataFrame([
        row("val", 0.80, model="abed_cnn"), row("test", 0.78, model="abed_cnn"),
        row("val", 0.90, model="reference_resnet_small", optimizer="adamw", epochs=30),
        row("test", 0.86, model="reference_resnet_small", optimizer="adamw", epochs=30),
        row("val", 0.88, model="reference_resnet_small", optimizer="adamw", epochs=15),
        row("test", 0.91, model="reference_resnet_small", optimizer="adamw", epochs=15),
    ])
    best = best_configurations(table).set_index("model")
    assert set(best.index) == {"abed_cnn", "reference_resnet_small"}
    assert best.loc["reference_resnet_small", "optimizer"] == "adamw"
    assert best.loc["reference_resnet_small", "accuracy"] == pytest.approx(0.86)  # 30 epochs: the better on val


def test_trial_folders_of_a_k_fold_configuration_are_all_its_folds():
    table = pd.DataFrame([row("test", 0.8, fold=k) for k in range(3)] + [row("test", 0.8, optimizer="sgd", fold=0)])
    best = best_configurations(table)
    chosen = best[best["optimizer"] == "adam"].iloc[0]
    assert len(trial_folders(table, chosen)) == 3


PUBLISHED = {
    "study": "Varol 2024",
    "data": {"C-NMC": "synthetic", "ALL-IDB": None},
    "results": [
        {"source": "Table 4", "data": "C-NMC", "trial": {"approach": "cnn", "model": "varol_cnn3", "optimizer": "adam", "epochs": 50},
         "accuracy": 0.87, "weighted_recall": 0.87, "weighted_precision": 0.87},
        {"source": "Table 4", "data": "C-NMC", "trial": {"approach": "cnn", "model": "varol_cnn3", "optimizer": "rmsprop"}, "accuracy": 0.8},
        {"source": "Table 5.2", "data": "ALL-IDB", "trial": {"model": "varol_cnn3"}, "accuracy": 0.99},
        {"source": "Table 5.2", "data": "ALL-IDB", "trial": {"model": "varol_cnn3"}, "split": "val", "accuracy": 0.98},
    ],
}


def test_each_published_number_is_beside_ours_with_the_difference_and_whether_it_is_inside():
    table = reproduction_table(pd.DataFrame([row("test", 0.80)]), PUBLISHED)
    ours = table[(table["source"] == "Table 4") & (table["metric"] == "accuracy") & table["ours"].notna()].iloc[0]
    assert ours["published"] == 0.87 and ours["ours"] == pytest.approx(0.80)
    assert ours["difference"] == pytest.approx(-0.07) and ours["inside"] is False  # 0.87 outside [0.75, 0.85]
    recall = table[table["metric"] == "weighted_recall"].iloc[0]
    assert recall["ours"] == pytest.approx(0.80) and "accuracy" in recall["note"]
    notes = dict(zip(table["metric"] + " " + table["configuration"], table["note"]))
    assert "does not compute" in notes[next(k for k in notes if k.startswith("weighted_precision"))]
    assert "no trial of this run" in notes["accuracy approach=cnn, model=varol_cnn3, optimizer=rmsprop"]
    assert "not mapped" in notes["accuracy model=varol_cnn3"]
    assert set(table.loc[table["source"] == "Table 5.2", "split"]) == {"val", "test"}
    assert len(table) == 6  # every published number has a row, a val and a test number of one trial included
    assert "6 published number(s): 2 comparison(s)" in reproduction_summary(table)


def test_a_study_data_set_mapped_to_two_datasets_has_each_number_beside_both():
    """Zhang's Aria data read as its Original/ and its Segmented/ image sets: the bracket, not one choice."""
    published = {"study": "Zhang 2024", "data": {"Aria": ["aria_original", "aria_segmented"]}, "results": [
        {"source": "Table 1", "data": "Aria", "trial": {"model": "varol_cnn3"}, "accuracy": 0.82},
        {"source": "Table 1", "data": "Aria", "trial": {"model": "varol_cnn3"}, "split": "val", "accuracy": 0.80}]}
    assert published_problems(published) == []
    metrics = pd.DataFrame([row(split, accuracy, dataset=dataset) for split in ("val", "test")
                            for dataset, accuracy in (("aria_original", 0.62), ("aria_segmented", 0.908))])
    table = reproduction_table(metrics, published)
    assert len(table) == 4
    ours = table.set_index(["split", "dataset"])["ours"]
    assert ours[("test", "aria_original")] == pytest.approx(0.62) and ours[("test", "aria_segmented")] == pytest.approx(0.908)
    assert set(table["published"]) == {0.82, 0.80}
    only_one = reproduction_table(metrics[metrics["dataset"] == "aria_original"], published)
    assert only_one["note"].str.contains("no trial of this run").sum() == 2  # the other image set said missing, not dropped


def test_a_smoke_run_is_compared_at_its_scaled_epochs():
    scaled = pd.DataFrame([row("test", 0.86, epochs=2)])  # round(50 * 0.05) = 2 (rounding rule of scaling.scaled_epochs)
    table = reproduction_table(scaled, PUBLISHED, scale=0.05, smoke_min_size=32)
    first = table[(table["metric"] == "accuracy") & (table["source"] == "Table 4")].iloc[0]
    assert first["ours"] == pytest.approx(0.86) and first["inside"] is True


def without_interval(row: dict, subjects: int = 4) -> dict:
    """A metrics.csv row whose split had too few subjects for an interval (metrics.metrics_table)."""
    bounds = {f"{name}_{side}": np.nan for name in METRIC_NAMES for side in ("low", "high")}
    return {**row, **bounds, "interval_groups": subjects,
            "interval_note": f"not computed: {subjects} subjects in this split, fewer than 10"}


def test_a_split_without_an_interval_is_shown_as_such_not_as_a_point():
    table = pd.DataFrame([without_interval(row("test", 0.884)), row("test", 0.8, model="abed_cnn")])
    best = best_configurations(table)
    shown = formatted(best).set_index("model")
    assert shown.loc["varol_cnn3", "accuracy"] == "0.884 (no interval: 4 subjects)"
    assert shown.loc["abed_cnn", "accuracy"] == "0.800 [0.750, 0.850]"
    assert "interval_note" not in shown and shown.loc["varol_cnn3", "interval_groups"] == "4"
    no_note = best.drop(columns=["interval_note"])
    assert formatted(no_note).set_index("model").loc["varol_cnn3", "accuracy"] == "0.884 (no interval)"


def test_the_reproduction_verdict_is_no_interval_where_ours_has_none():
    table = reproduction_table(pd.DataFrame([without_interval(row("test", 0.884))]), PUBLISHED)
    ours = table[(table["source"] == "Table 4") & (table["metric"] == "accuracy") & table["ours"].notna()].iloc[0]
    assert pd.isna(ours["inside"]) and "4 subjects" in ours["interval_note"]
    shown = reproduction_display(table)
    line = shown[(shown["source"] == "Table 4") & (shown["metric"] == "accuracy")].iloc[0]
    assert line["ours [95 % CI]"] == "0.884 (no interval: 4 subjects)"
    assert line["inside CI"] == "no interval"
    assert "0 inside our 95 % interval, 2 not judged (ours has no interval)" in reproduction_summary(table)
    judged = reproduction_display(reproduction_table(pd.DataFrame([row("test", 0.80)]), PUBLISHED))
    assert set(judged["inside CI"]) == {"", "no"}  # with an interval: judged as before


def test_bad_published_sections_are_named():
    bad = copy.deepcopy(PUBLISHED)
    bad["results"][0]["trial"]["colour"] = "rgb"
    bad["results"][1]["acuracy"] = 0.8
    bad["results"][2]["data"] = "Aria"
    problems = " ".join(published_problems(bad))
    assert "['colour'] are not trial keys" in problems
    assert "'acuracy' is not a metric" in problems
    assert "'Aria' is not a key of published.data" in problems


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_published_number_of_a_preset_names_a_trial_of_its_own_grid(preset):
    config = yaml.safe_load(preset.read_text())
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))
    if "published" not in config:  # the reference (presets/reference.yaml) is no study: nothing published
        assert preset.stem == "reference", f"{preset.name}: a study's preset lists its published numbers"
        return
    published = config["published"]
    assert published_problems(published) == []
    keras, _ = keras_trials(config)
    trials = pd.concat([keras.assign(approach="cnn"), hybrid_trials(config, keras).assign(approach="hybrid"),
                       classical_trials(config).assign(approach="classical")], ignore_index=True)
    for entry in published["results"]:
        match = trials
        for key, value in entry["trial"].items():
            match = match[match[key] == value]
        assert len(match) >= 1, f"{preset.name}: {entry['source']} {entry['trial']} is no trial of the preset's grid"
        for dataset in mapped_datasets(published, entry["data"]):  # on each dataset the study's data set stands for
            assert dataset in set(match["dataset"]), f"{preset.name}: {entry['source']} has no trial on {dataset}"


def test_tables_are_written_as_markdown_and_html(tmp_path):
    table = pd.DataFrame({"model": ["varol_cnn3"], "accuracy": ["0.870 [0.84, 0.90]"]})
    write_tables([("Approach 1", "best per model", table)], tmp_path / "t.md", tmp_path / "t.html", "Title", "intro")
    markdown, page = (tmp_path / "t.md").read_text(), (tmp_path / "t.html").read_text()
    assert "## Approach 1" in markdown and "| varol\\_cnn3" in markdown  # '_' escaped: text, never emphasis
    assert "<h2>Approach 1</h2>" in page and "<td>0.870 [0.84, 0.90]</td>" in page


def test_the_best_configurations_carry_the_subject_verdicts_of_the_same_trial():
    """Chosen on the trials' validation accuracy, then shown with the subject level of that very trial."""
    from leukobench.report.selection import best_configurations, cell_level, with_subject_level
    from leukobench.report.tables import formatted

    good, poor = {"optimizer": "adam"}, {"optimizer": "sgd"}
    rows = [row("val", 0.9, **good), row("test", 0.88, **good), row("val", 0.7, **poor), row("test", 0.72, **poor)]
    for r in rows:
        r["level"] = "cell"
    subject_rows = [{**row("test", 0.95, **good), "level": "subject", "n": 12, "interval_note": ""},
                    {**row("test", 0.5, **poor), "level": "subject", "n": 12, "interval_note": ""}]
    subject_rows[0].update(accuracy_low=np.nan, accuracy_high=np.nan, interval_note="not computed: 4 subjects in this split")
    metrics = pd.DataFrame(rows + subject_rows)
    best = with_subject_level(best_configurations(cell_level(metrics)), metrics)
    assert len(best) == 1 and best.loc[0, "optimizer"] == "adam"
    assert best.loc[0, "subjects"] == 12 and best.loc[0, "subject_accuracy"] == 0.95
    assert best.loc[0, "subject_sensitivity_low"] == pytest.approx(0.90)
    shown = formatted(best, ("accuracy", "subject_accuracy", "subject_sensitivity"))
    assert shown.loc[0, "subject_accuracy"].startswith("0.950 (no interval")
    assert shown.loc[0, "subject_sensitivity"] == "0.950 [0.900, 1.000]"
    assert "subject_interval_note" not in shown
    no_subjects = cell_level(metrics)  # a dataset whose images name no subject: the table is as it was
    assert with_subject_level(best_configurations(no_subjects), no_subjects).equals(best_configurations(no_subjects))


# --- repeated seeds ------------------------------------------------------------------------------
def seeded(split: str, accuracy: float, seed: int, **trial) -> dict:
    return row(split, accuracy, seed=seed, **trial) | {"trial": f"results/trials/{trial}/seed~{seed}"}


def test_repeats_add_the_following_seeds_to_every_trial():
    assert repeated_seeds({"seed": [0, 10], "repeats": 3}) == [0, 1, 2, 10, 11, 12]
    assert repeated_seeds({"seed": [4]}) == [4]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["grid"]["repeats"] = 2
    once = keras_trials({**config, "grid": {k: v for k, v in config["grid"].items() if k != "repeats"}})[0]
    twice = keras_trials(config)[0]
    assert len(twice) == 2 * len(once) and sorted(set(twice["seed"])) == [0, 1]


def test_a_lucky_seed_does_not_win_the_best_configuration_the_mean_over_seeds_does():
    # adam: one seed excels on validation, the other two do not (mean 0.70); sgd: steady at 0.80
    table = pd.DataFrame([
        *(seeded(split, accuracy, seed, optimizer="adam") for seed, (val, test) in enumerate([(0.95, 0.9), (0.6, 0.6),
                                                                                                 (0.55, 0.6)])
          for split, accuracy in (("val", val), ("test", test))),
        *(seeded(split, 0.8, seed, optimizer="sgd") for seed in range(3) for split in ("val", "test")),
    ])
    best = best_configurations(table).iloc[0]
    assert best["optimizer"] == "sgd" and best["seeds"] == 3 and best["selection"] == pytest.approx(0.8)
    assert best["configurations"] == 2  # two configurations competed, not six trials
    adam = collapse_seeds(table).query("optimizer == 'adam' and split == 'test'").iloc[0]
    assert (adam["accuracy"], adam["accuracy_min"], adam["accuracy_max"]) == pytest.approx((0.7, 0.6, 0.9))
    assert adam["accuracy_sd"] == pytest.approx(np.std([0.9, 0.6, 0.6], ddof=1)) and pd.isna(adam["seed"])
    assert formatted(best_configurations(table))["accuracy"].iloc[0] == "0.800 ± 0.000 (3 seeds: 0.800–0.800)"


def test_a_published_number_is_judged_against_the_spread_over_seeds_too():
    # each seed's bootstrap interval (± 0.05) misses 0.78 for two of three seeds; the seeds' range holds it
    table = pd.DataFrame([seeded("test", accuracy, seed) for seed, accuracy in enumerate([0.62, 0.70, 0.80])])
    published = {"study": "s", "data": {"Cells": "synthetic"},
                 "results": [{"source": "T1", "data": "Cells", "trial": {"model": "varol_cnn3"}, "accuracy": 0.78}]}
    result = reproduction_table(table, published)
    assert result["inside"].tolist() == [False, False, True]
    assert result["inside_seeds"].tolist() == [True] * 3 and (result["seeds"] == 3).all()
    assert result["seed_min"].tolist() == pytest.approx([0.62] * 3) and result["seed_max"].tolist() == pytest.approx([0.8] * 3)
    assert reproduction_display(result)["inside seed range"].iloc[0] == "yes (3 seeds: 0.620–0.800)"
    assert "3 of 3 inside the range of our seeds" in reproduction_summary(result)
    single = reproduction_table(pd.DataFrame([seeded("test", 0.62, 0)]), published)
    assert single["inside_seeds"].isna().all() and "inside seed range" not in reproduction_display(single)


def test_the_seed_figure_shows_every_seed_of_each_repeated_configuration(tmp_path):
    table = pd.DataFrame([seeded("test", a, seed, optimizer=opt) for opt, accuracies in
                          (("adam", [0.6, 0.7, 0.9]), ("sgd", [0.8, 0.8, 0.81])) for seed, a in enumerate(accuracies)]
                         + [row("test", 0.5, model="abed_cnn")])  # one seed: not in the figure
    fig = plot_seed_spread(table, tmp_path / "seeds.png")
    assert (tmp_path / "seeds.png").stat().st_size > 0
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cnn varol_cnn3, optimizer adam", "cnn varol_cnn3, optimizer sgd"]
    assert sorted(t.get_text() for t in ax.texts) == ["3 seeds: 0.600–0.900", "3 seeds: 0.800–0.810"]
    with pytest.raises(ValueError, match="no configuration trained with more than one seed"):
        plot_seed_spread(pd.DataFrame([row("test", 0.5)]), tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_a_dataset_without_subjects_is_named_once():
    table = pd.DataFrame([row("test", 0.8, dataset="cnmc") | {"level": "cell"}, row("test", 0.8, dataset="cnmc") | {"level": "subject"},
                          row("test", 0.7, dataset="aria") | {"level": "cell"}])
    assert datasets_without_subjects(table) == ["aria"]
    assert datasets_without_subjects(table.drop(columns="level")) == ["aria", "cnmc"]


def test_a_section_of_text_alone_is_written_without_a_table(tmp_path):
    write_tables([("Note", "only words", None), ("Numbers", "a table", pd.DataFrame({"a": [1]}))],
                 tmp_path / "t.md", tmp_path / "t.html", "T", "intro")
    text = (tmp_path / "t.md").read_text()
    assert "only words\n\n## Numbers" in text and "(none)" not in text


def test_a_configuration_of_several_seeds_shows_its_subject_verdicts_as_their_mean():
    table = pd.DataFrame([seeded(split, 0.8, seed) | {"level": "cell"} for seed in range(3) for split in ("val", "test")]
                         + [seeded("test", accuracy, seed) | {"level": "subject"}
                            for seed, accuracy in enumerate([0.6, 0.7, 0.8])])
    best = with_subject_level(best_configurations(cell_level(table)), table).iloc[0]
    assert best["seeds"] == 3 and best["subject_accuracy"] == pytest.approx(0.7)
    assert pd.isna(best["subject_accuracy_low"]) and best["subject_interval_note"] == "mean over 3 seeds"
    assert formatted(pd.DataFrame([best]), ("subject_accuracy",))["subject_accuracy"].iloc[0] == \
        "0.700 (no interval: mean over 3 seeds)"


# ----------------------------------------------------------------- trials that did not learn (leukobench.learned)


def dead_and_alive(dead_seeds=(0, 1), seeds=3, **trial) -> list[dict]:
    """A configuration of ``seeds`` seeds, those in ``dead_seeds`` at chance (0.25 of four classes)."""
    return [seeded(split, 0.25 if seed in dead_seeds else 0.734, seed, **trial)
            | {"learned": seed not in dead_seeds, "learned_note": "at chance" if seed in dead_seeds else "learned"}
            for seed in range(seeds) for split in ("val", "test")]


def test_the_best_configuration_counts_the_seeds_that_did_not_learn_beside_their_mean(tmp_path):
    table = pd.DataFrame(dead_and_alive(optimizer="adam") + dead_and_alive(dead_seeds=(), optimizer="sgd", model="abed_cnn")
                         + dead_and_alive(dead_seeds=(2,), optimizer="sgd"))
    table.to_csv(tmp_path / "metrics.csv", index=False)  # as the report reads metrics.csv
    best = best_configurations(pd.read_csv(tmp_path / "metrics.csv")).set_index("model")
    varol = best.loc["varol_cnn3"]
    # choosing on validation is unchanged: the mean over all seeds, dead ones included (sgd: 0.573 > adam: 0.411)
    assert varol["optimizer"] == "sgd" and varol["selection"] == pytest.approx((2 * 0.734 + 0.25) / 3)
    assert varol["did_not_learn"] == 1 and varol["accuracy"] == pytest.approx((2 * 0.734 + 0.25) / 3)
    assert best.loc["abed_cnn", "did_not_learn"] == 0
    text = formatted(best.reset_index()).set_index("model")
    assert text.loc["varol_cnn3", "did_not_learn"] == "1 of 3 seeds did not learn"
    assert text.loc["abed_cnn", "did_not_learn"] == ""
    adam = collapse_seeds(collapse_folds(table)).query("optimizer == 'adam' and split == 'test'").iloc[0]
    assert adam["did_not_learn"] == 2 and not adam["learned"]
    assert formatted(adam.to_frame().T)["did_not_learn"].iloc[0] == "2 of 3 seeds did not learn"


def test_folds_that_did_not_learn_are_counted_and_a_table_without_verdicts_says_nothing():
    folds = [row("test", 0.5 if k == 1 else 0.8, fold=k) | {"learned": k != 1} for k in range(3)]
    single = [row("test", 0.5, model="abed_cnn") | {"learned": False}]
    summary = collapse_folds(pd.DataFrame(folds + single)).set_index("model")
    assert summary.loc["varol_cnn3", "did_not_learn"] == 1
    text = formatted(summary.reset_index()).set_index("model")["did_not_learn"]
    assert text.to_dict() == {"varol_cnn3": "1 of 3 folds did not learn", "abed_cnn": "did not learn"}
    older = best_configurations(pd.DataFrame([row("val", 0.8), row("test", 0.8)]))  # a metrics.csv without learned
    assert "did_not_learn" not in formatted(older).columns


def test_the_reproduction_table_names_a_comparison_with_a_trial_that_did_not_learn():
    table = pd.DataFrame([r for r in dead_and_alive() if r["split"] == "test"])
    published = {"study": "s", "data": {"Cells": "synthetic"},
                 "results": [{"source": "T1", "data": "Cells", "trial": {"model": "varol_cnn3"}, "accuracy": 0.7,
                              "note": "their best"}]}
    result = reproduction_table(table, published)
    assert result["did_not_learn"].tolist() == [1, 1, 0] and (result["seeds_did_not_learn"] == 2).all()
    display = reproduction_display(result)
    assert display["note"].tolist() == ["this trial did not learn (at chance); their best"] * 2 + ["their best"]
    assert display["inside seed range"].iloc[0] == "yes (3 seeds: 0.250–0.734; 2 of 3 did not learn)"
    assert "2 with a trial that did not learn" in reproduction_summary(result)
    alive = reproduction_table(table.assign(learned=True), published)
    assert "did not learn" not in " ".join(reproduction_display(alive)["note"]) + reproduction_summary(alive)


def test_the_seed_figure_marks_the_seeds_that_did_not_learn(tmp_path):
    from leukobench.learned import NOT_LEARNED_LABEL
    from leukobench.style import NOT_LEARNED_MARKER

    table = pd.DataFrame([r for r in dead_and_alive(optimizer="adam") + dead_and_alive(dead_seeds=(), optimizer="sgd")
                          if r["split"] == "test"])
    ax = plot_seed_spread(table, tmp_path / "seeds.png").axes[0]
    marks = [line for line in ax.get_lines() if line.get_marker() == NOT_LEARNED_MARKER["marker"]]
    assert len(marks) == 1 and sorted(marks[0].get_xdata()) == [0.25, 0.25]
    assert sorted(t.get_text() for t in ax.texts) == ["3 seeds: 0.250–0.734, 2 did not learn", "3 seeds: 0.734–0.734"]
    assert [t.get_text() for t in ax.figure.legends[0].get_texts()] == [NOT_LEARNED_LABEL]
    fig = plot_seed_spread(table.assign(learned=True), tmp_path / "seeds.png")
    assert fig.legends == [] and not [line for line in fig.axes[0].get_lines() if line.get_marker() == "X"]


MARKUP = "</script><img src=x onerror=alert(4)> $\\foo$ a|b *c* _d_ [e](f) & <&>"


def test_names_and_notes_are_written_as_text_never_as_markup(tmp_path):
    """A study's note or a name holding HTML, math, markdown or a table's '|' is shown as written in both files."""
    table = pd.DataFrame({"study <&>": [MARKUP, "plain"], "value": ["0.870 [0.841, 0.897]", "1. first"]})
    write_tables([(f"Study {MARKUP}", f"note {MARKUP}\n# not a heading", table), ("1. not a list", "- nor this", None)],
                 tmp_path / "t.md", tmp_path / "t.html", f"Reproduction: {MARKUP}", MARKUP)
    markdown, page = (tmp_path / "t.md").read_text(), (tmp_path / "t.html").read_text()
    assert "<img" not in page and "</script>" not in page and "&lt;img src=x onerror=alert(4)&gt;" in page
    prose = "\n".join(line for line in markdown.splitlines() if not line.startswith("|"))
    assert not re.search(r"(?<!\\)[<>$|*_\[&]", prose)
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(rows) == 4 and all(len(re.findall(r"(?<!\\)\|", line)) == 3 for line in rows)  # 2 columns each
    assert not [line for line in markdown.splitlines() if line.startswith(("# not", "- nor", "1. not"))]
    from markdown_it import MarkdownIt  # CommonMark + GFM tables, as GitHub shows a .md (keras -> rich -> markdown-it-py)

    rendered = MarkdownIt("commonmark").enable("table").render(markdown)
    assert "<img" not in rendered and "<script" not in rendered and "</script>" not in rendered
    assert "<em>" not in rendered and "<a href" not in rendered and "<li>" not in rendered
    assert rendered.count("<h1>") == 1 and rendered.count("<h2>") == 2 and rendered.count("<tr>") == 3
    assert "$\\foo$ a|b *c* _d_ [e](f) &amp; &lt;&amp;&gt;" in rendered  # each shown as written


# --- names from data and config through the whole workflow -----------------------------------------
SCRIPT_NOTE = "</script><img src=x onerror=alert(4)>"


@pytest.mark.workflow
def test_a_dataset_and_study_named_with_markup_runs_and_reports_as_text(tmp_path):
    """Class folders and patients named with $, \\, <, > and &, a study note that closes a <script>: the store's
    sample sheet, best_trials' figures and the tables are drawn, and report.html holds the note as text only."""
    import cv2

    from forked_snakemake import run_snakemake

    raw, rng = tmp_path / "lab", np.random.default_rng(0)
    classes = {"blast$\\foo$ <&>": 150, "normal & <i>": 90}
    for k, (name, grey) in enumerate(classes.items()):
        (raw / name).mkdir(parents=True)
        for p in range(6):
            patient = ["$\\foo$P", "$\\bar$Q", "P<&>"][p % 3] + f"{k}{p}"
            for i in range(5):
                image = np.clip(rng.normal(grey, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
                assert cv2.imwrite(str(raw / name / f"{patient}_{i}.png"), image)
    config = {
        "datasets": {"lab": {"format": "folder", "path": str(raw),
                             "options": {"classes": list(classes), "patient_pattern": r"^(?P<patient>.+)_\d+\.png$"}}},
        "split": {"method": "subject", "ratios": {"train": 0.5, "val": 0.25, "test": 0.25}, "seed": 0},
        "variants": {"balanced": {"balance": "undersample", "color": "rgb"}},
        "grid": {"dataset": ["lab"], "variant": ["balanced"], "size": [32], "model": ["abed_cnn"], "epochs": [1],
                 "batch_size": [16]},
        "evaluation": {"bootstrap": 100, "min_interval_groups": 2},
        "published": {"study": f"A study $\\foo$ <&> {SCRIPT_NOTE}", "data": {"Trials <b>&": "lab"}, "results": [
            {"source": f"Table 1 {SCRIPT_NOTE}", "data": "Trials <b>&", "trial": {"model": "abed_cnn"}, "accuracy": 0.8,
             "note": SCRIPT_NOTE}]},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = ["--snakefile", REPO / "Snakefile", "--directory", tmp_path, "--configfile", tmp_path / "config.yaml"]
    run = run_snakemake([*command, "--cores", "2", "--resources", "gpu=1"])
    assert run.returncode == 0, run.stderr[-5000:]
    report = run_snakemake([*command, "--report", "report.html"])
    assert report.returncode == 0, report.stderr[-3000:]
    page = (tmp_path / "report.html").read_text(errors="replace")
    assert "<img src=x" not in page and "onerror=alert(4)" not in page.replace("onerror=alert\\(4\\)", "")
    manifest = pd.read_parquet(tmp_path / "results/lab/manifest.parquet")
    assert set(manifest["class_name"]) == set(classes) and "$\\foo$P00" in set(manifest["patient_id"])
    assert list((tmp_path / "results/lab/store").rglob("*_samples.png"))
    assert (tmp_path / "results/report/subjects_best_lab.png").stat().st_size > 0
    reproduction = (tmp_path / "results/report/reproduction.html").read_text()
    assert "<img" not in reproduction and "&lt;img src=x onerror=alert(4)&gt;" in reproduction
    assert "<img" not in (tmp_path / "results/report/reproduction.md").read_text().replace("\\<img", "")
    assert pd.read_csv(tmp_path / "results/report/reproduction.csv")["note"].iloc[0] == SCRIPT_NOTE
    # no job got the config's free text as a param (what Snakemake pastes into the report's <script>): each job's
    # params as Snakemake recorded them, every rule of the run (ingest's reader options and reproduction's published)
    records = [json.loads(path.read_text()) for path in (tmp_path / ".snakemake/metadata").rglob("*") if path.is_file()]
    params = json.dumps([record.get("params") for record in records])
    assert {record["rule"] for record in records} >= {"ingest", "store", "train", "reproduction", "best_trials"}
    assert "onerror" not in params and "blast" not in params and "patient" not in params
    # the settings files rerun what reads them, as params did: nothing when unchanged, the reproduction alone
    # when the published note changes
    assert "Nothing to be done" in run_snakemake([*command, "-n"]).stdout
    config["published"]["results"][0]["note"] = "another note"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    planned = run_snakemake([*command, "-n"]).stdout
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", planned.split("Job stats:")[1].split("total")[0], flags=re.M))
    assert jobs == {"reproduction": "1", "all": "1"}, planned[-2000:]


def test_the_chosen_keras_trials_are_the_ones_behind_each_models_best_configuration():
    """evaluation.saliency: chosen draws these: per Keras model and split method the trial chosen on validation
    (not on test), a configuration of several seeds by its first seed; no hybrid or classical trial."""
    table = pd.DataFrame([
        row("val", 0.90, optimizer="adam"), row("test", 0.70, optimizer="adam"),
        row("val", 0.80, optimizer="sgd"), row("test", 0.95, optimizer="sgd"),
        row("val", 0.60, split_method="random"), row("test", 0.60, split_method="random"),
        *(seeded(split, 0.8, seed, model="abed_cnn") for seed in (3, 1) for split in ("val", "test")),
        row("val", 0.99, approach="hybrid", classifier="svm"), row("test", 0.99, approach="hybrid", classifier="svm"),
    ])
    assert dict(chosen_keras_trials(table)) == {
        "varol_cnn3_subject_balanced": "results/trials/{'optimizer': 'adam'}",
        "varol_cnn3_random_balanced": "results/trials/{'split_method': 'random'}",
        "abed_cnn_subject_balanced": "results/trials/{'model': 'abed_cnn'}/seed~1",
    }
    assert chosen_keras_trials(table[table["approach"] != "cnn"]) == []
