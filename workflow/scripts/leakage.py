from leukobench.runtime import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.plots import plot_leakage
from leukobench.report import collapse_folds

plot_leakage(collapse_folds(pd.read_csv(snakemake.input.metrics)).query("split == 'test'"), snakemake.output.figure)
