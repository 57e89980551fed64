from leukobench.runtime import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.evaluate import scores_of
from leukobench.plots import plot_roc_overlay
from leukobench.report import best_configurations, cell_folders, model_label

dataset = snakemake.wildcards.dataset
metrics = pd.read_csv(snakemake.input.metrics)
metrics = metrics[metrics["dataset"] == dataset]
best = best_configurations(metrics).sort_values("accuracy", ascending=False)
curves = []
for _, row in best.groupby(["approach", *(k for k in ("model", "features", "classifier") if k in best)],
                           dropna=False, sort=False).head(1).head(10).iterrows():
    # the best configuration of each model over split methods and variants, at most ten curves
    test = pd.concat(pd.read_parquet(f"{folder}/predictions.parquet") for folder in cell_folders(metrics, row))
    test = test[test["split"] == "test"]
    label = f"{model_label(row)} ({row['split_method']}, {row['variant']}, {row['size']:.0f} px)"
    curves.append((label, test["label"].to_numpy(), scores_of(test)))
plot_roc_overlay(curves, snakemake.output.figure, title=f"ROC of the best configuration of each model, test split, {dataset}")
