from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.data.samples import plot_sample_sheet
from leukobench.data.store import load_store

store = load_store(snakemake.input.store)
wildcards = snakemake.wildcards
plot_sample_sheet(store.frame, store.images, store.class_names, snakemake.output.sheet,
                  title=f"{wildcards.dataset}, {wildcards.partition} split, {wildcards.variant}, {wildcards.size} px")
