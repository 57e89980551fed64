from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.devices import configure_runtime
from leukobench.learn.saliency import saliency_of_chosen_trials
from leukobench.metrics import plain_metrics_of_trials
from leukobench.report.selection import chosen_keras_trials

chosen = chosen_keras_trials(plain_metrics_of_trials(snakemake.input.predictions))  # as the tables choose them
configure_runtime(snakemake.params.compute_threads, seed=0)
saliency_of_chosen_trials(chosen, snakemake.input.models, snakemake.input.predictions, snakemake.input.stores,
                         snakemake.output.summary, snakemake.output.panels)  # rule saliency_best_sheets draws them
