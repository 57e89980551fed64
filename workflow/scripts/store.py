from leukobench.runtime import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.plots import plot_sample_sheet
from leukobench.store import Preparation, build_store

store = build_store(
    pd.read_parquet(snakemake.input.manifest),
    pd.read_parquet(snakemake.input.splits),
    Preparation(**snakemake.params.preparation),
    snakemake.output.store,
    threads=snakemake.threads,
    provenance={"dataset": snakemake.wildcards.dataset, "variant": snakemake.wildcards.variant},
)
print(store.frame.groupby(["split", "class_name"]).size().to_string())
plot_sample_sheet(store.frame, store.images, store.class_names, snakemake.output.samples,
                  title=f"{snakemake.wildcards.dataset}, {snakemake.wildcards.variant}, {snakemake.wildcards.size} px")
