from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.keys import TRIAL_KEYS
from leukobench.report.figures.comparison import plot_comparison
from leukobench.report.selection import cell_level

table = cell_level(pd.read_csv(snakemake.input.metrics))
test = table[table["split"] == "test"]
keys = [key for key in TRIAL_KEYS if key in test]
# the trials (and hybrid trials on their features) of the models that started from pretrained weights
pretrained = test["approach"].isin(["cnn", "hybrid"]) & test.get("model", pd.Series(index=test.index)).isin(snakemake.params.pretrained)
plot_comparison(test.assign(pretrained=pretrained), snakemake.output.figure, metric="accuracy",
                label_columns=["approach", *(key for key in keys[1:] if test[key].nunique() > 1)], pretrained="pretrained")
