from leukobench.plan.runtime import log_to

log_to(snakemake.log[0])

from leukobench.learn.devices import configure_runtime
from leukobench.learn.saliency import saliency_of_chosen_cells
from leukobench.metrics import metrics_of_cells
from leukobench.report.selection import cell_level, chosen_keras_cells

chosen = chosen_keras_cells(cell_level(metrics_of_cells(snakemake.input.metrics)))  # as the tables choose them
configure_runtime(snakemake.threads, seed=0)
saliency_of_chosen_cells(chosen, snakemake.input.models, snakemake.input.stores, snakemake.output.summary,
                         snakemake.output.sheets)
