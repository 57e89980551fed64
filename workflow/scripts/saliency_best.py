from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.devices import configure_runtime
from leukobench.learn.saliency import saliency_of_chosen_cells
from leukobench.metrics import plain_metrics_of_cells
from leukobench.report.selection import chosen_keras_cells

chosen = chosen_keras_cells(plain_metrics_of_cells(snakemake.input.predictions))  # as the tables choose them
configure_runtime(snakemake.threads, seed=0)
saliency_of_chosen_cells(chosen, snakemake.input.models, snakemake.input.stores, snakemake.output.summary,
                         snakemake.output.panels)  # rule saliency_best_sheets draws them
