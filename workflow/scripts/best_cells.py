from leukobench.plan.runtime import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.predictions import scores_of
from leukobench.report.figures import plot_reliability, plot_roc_overlay
from leukobench.report.selection import best_cells_of_dataset, cell_level

dataset = snakemake.wildcards.dataset
curves = []
for label, folders in best_cells_of_dataset(cell_level(pd.read_csv(snakemake.input.metrics)), dataset):
    test = pd.concat(pd.read_parquet(f"{folder}/predictions.parquet") for folder in folders)  # k-fold: every fold
    test = test[test["split"] == "test"]
    curves.append((label, test["label"].to_numpy(), scores_of(test)))
plot_roc_overlay(curves, snakemake.output.roc, title=f"ROC of the best configuration of each model, test split, {dataset}")
plot_reliability(curves, snakemake.output.reliability,
                         title=f"Calibration of the best configuration of each model, test split, {dataset}")
