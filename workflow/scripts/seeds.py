from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.report.figures.seeds import plot_seed_spread
from leukobench.report.selection import cell_level, collapse_folds

plot_seed_spread(collapse_folds(cell_level(pd.read_csv(snakemake.input.metrics))).query("split == 'test'"),
                 snakemake.output.figure)
