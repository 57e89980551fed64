from leukobench.plan.runtime import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.predictions import scores_of
from leukobench.report.figures import plot_roc_overlay
from leukobench.report.selection import best_configurations, cell_folders, model_labels

dataset = snakemake.wildcards.dataset
metrics = pd.read_csv(snakemake.input.metrics)
metrics = metrics[metrics["dataset"] == dataset]
best = best_configurations(metrics)
if (best["split_method"] == "subject").any():
    best = best[best["split_method"] == "subject"]  # the leakage-free split, where there is one
best = best.sort_values("selection", ascending=False)
best["model_label"] = model_labels(best).to_numpy()
curves = []
for _, row in best.groupby(["approach", *(k for k in ("model", "features", "classifier") if k in best)],
                           dropna=False, sort=False).head(1).head(10).iterrows():
    # of each model, the variant whose best configuration did best on validation; at most ten curves
    test = pd.concat(pd.read_parquet(f"{folder}/predictions.parquet") for folder in cell_folders(metrics, row))
    test = test[test["split"] == "test"]
    label = f"{row['model_label']} ({row['split_method']}, {row['variant']}, {row['size']:.0f} px)"
    curves.append((label, test["label"].to_numpy(), scores_of(test)))
plot_roc_overlay(curves, snakemake.output.figure, title=f"ROC of the best configuration of each model, test split, {dataset}")
