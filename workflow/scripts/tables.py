from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.io import atomic_path
from leukobench.report.selection import (DID_NOT_LEARN, SUBJECT_PREFIX, SUBJECT_TABLE_METRICS, TABLE_METRICS,
                                         best_configurations, trial_keys, cell_level, collapse_folds,
                                         datasets_without_subjects, score_variant_columns, score_variant_legend,
                                         with_score_variants, with_subject_level)
from leukobench.report.tables import APPROACH_TITLES, formatted, write_tables

every_level = pd.read_csv(snakemake.input.metrics)
metrics = cell_level(every_level)
best = with_subject_level(best_configurations(metrics), every_level)  # chosen on trials, judged on subjects too
best = with_score_variants(best, every_level)  # the same trial's temperature-scaled, test-time-augmented, ... scores
shown = (*TABLE_METRICS, *(f"{SUBJECT_PREFIX}{name}" for name in SUBJECT_TABLE_METRICS), *score_variant_columns())
with atomic_path(snakemake.output.csv) as tmp:
    best.to_csv(tmp, index=False)
sections = [
    (APPROACH_TITLES[approach],
     "Per dataset, split method, variant and model: the configuration with the best validation accuracy "
     "(selected_on = test only where the grid has no validation split), with its test metrics and 95 % intervals; "
     "configurations = how many competed; majority_rate = the accuracy of always answering the test split's most "
     "frequent class (what accuracy is to beat); did_not_learn: how many of the configuration's seeds (or folds) did not "
     "learn (metrics.csv's learned: the training never left chance, one class for nearly every image), kept in the mean "
     "over the seeds and in the choice on validation; subject_*: the same trial's verdicts per subject (subjects = how many); "
     f"{score_variant_legend()}.",
     formatted(best[best["approach"] == approach], shown).drop(columns=["approach"]))
    for approach in APPROACH_TITLES if (best["approach"] == approach).any()
]
summary = collapse_folds(metrics)
if (summary["folds"] > 1).any():
    folds = summary[(summary["folds"] > 1) & (summary["split"] == "test")]
    folds = folds[[*trial_keys(folds), "folds", "n", *([DID_NOT_LEARN] if DID_NOT_LEARN in folds else []),
                   *(f"{m}{s}" for m in TABLE_METRICS for s in ("", "_low", "_high", "_sd"))]]
    sections.append(("k-fold cross-validation: every configuration",
                     "Test metrics as mean ± standard deviation over the folds.", formatted(folds)))
unjudged = datasets_without_subjects(every_level)
if unjudged:  # said once, here, rather than as empty subject_* entries without a reason
    sections.insert(0, ("Datasets without subjects", f"{', '.join(unjudged)}: the images name no subject (patient), so "
                        "there is no subject-level verdict (subject_* columns empty) and every interval resamples "
                        "images one by one.", None))
write_tables(sections, snakemake.output.markdown, snakemake.output.html, "Best configuration of each model",
             "Test-split metrics of the trials of this run, in the shape of the studies' result tables.")
print(formatted(best, shown).to_string(index=False))
