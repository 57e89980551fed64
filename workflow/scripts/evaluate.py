from leukobench.plan.runtime import log_to, plain

log_to(snakemake.log[0])

import json

import pandas as pd

from leukobench.learn.evaluate import evaluate_cell
from leukobench.metrics import scores_of
from leukobench.learn.figures import plot_confusion, plot_history, plot_roc

cell = {"approach": "cnn", **plain(snakemake.params.cell)}
options = snakemake.params.evaluation
predictions = evaluate_cell(
    snakemake.input.model, snakemake.input.store, snakemake.output.predictions, snakemake.output.metrics,
    cell, n_boot=options["bootstrap"], seed=options["seed"], min_groups=options["min_interval_groups"],
)
title = f"{cell['model']}, {cell['size']} px, {cell['optimizer']}, {cell['epochs']} epochs"
test = predictions[predictions["split"] == "test"]
class_names = json.loads(open(snakemake.input.bundle).read())["class_names"]
plot_roc(test["label"].to_numpy(), scores_of(test), snakemake.output.roc, title=f"ROC, test split: {title}",
         class_names=class_names)
plot_confusion(test["label"].to_numpy(), test["pred"].to_numpy(), class_names, snakemake.output.confusion,
               title=f"Test split: {title}")
plot_history(pd.read_csv(snakemake.input.history), snakemake.output.curves, title=f"Training: {title}")
