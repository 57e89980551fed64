from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.report.figures.trial import plot_trial
from leukobench.predictions import read_predictions

predictions, metadata = read_predictions(snakemake.input.predictions)
plot_trial(predictions, metadata, snakemake.input.history, snakemake.output.roc, snakemake.output.confusion,
          snakemake.output.curves)
