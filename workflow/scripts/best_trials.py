from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.scoring import read_scoring
from leukobench.predictions import read_predictions, scores_of
from leukobench.report.figures.reliability import plot_reliability
from leukobench.report.figures.roc import plot_roc_overlay
from leukobench.report.figures.subjects import plot_subject_verdicts
from leukobench.report.selection import best_trials_of_dataset, cell_level

dataset = snakemake.wildcards.dataset
trials, calibrated, class_names = [], [], None
for label, folders in best_trials_of_dataset(cell_level(pd.read_csv(snakemake.input.metrics)), dataset):
    read = [read_predictions(f"{folder}/predictions.parquet") for folder in folders]  # k-fold: every fold
    test = pd.concat(frame for frame, _ in read).query("split == 'test'")
    trials.append((label, test))
    scoring = read_scoring(folders[0]) if len(folders) == 1 else None  # k-fold: a temperature per fold
    temperature = scoring.temperature_for("none") if scoring else None  # None: none asked, or not fitted
    calibrated.append((f"temperature-scaled, T = {temperature:.2f}", scoring.scaled(scores_of(test), "none"))
                      if temperature is not None else None)
    class_names = read[0][1]["class_names"]
curves = [(label, test["label"].to_numpy(), scores_of(test)) for label, test in trials]
title = f"the best configuration of each model, test split, {dataset}"
plot_roc_overlay(curves, snakemake.output.roc, title=f"ROC of {title}")
plot_reliability(curves, snakemake.output.reliability, title=f"Calibration of {title}", calibrated=calibrated)
plot_subject_verdicts(trials, snakemake.output.subjects, title=f"Subjects' verdicts by {title}",
                      aggregation=snakemake.params.subject_aggregation, class_names=class_names)
