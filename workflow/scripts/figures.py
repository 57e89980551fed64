from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.report.figures.accuracy_vs_time import plot_accuracy_vs_time
from leukobench.report.figures.hyperparameters import plot_hyperparameter_effects
from leukobench.report.selection import cell_level, collapse_folds

test = collapse_folds(cell_level(pd.read_csv(snakemake.input.metrics))).query("split == 'test'")
plot_hyperparameter_effects(test, snakemake.output.effects, metric="f1")
plot_accuracy_vs_time(test, snakemake.output.speed)
