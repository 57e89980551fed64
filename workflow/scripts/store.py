from leukobench.runtime import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.store import Preparation, build_store

table = build_store(
    pd.read_parquet(snakemake.input.manifest),
    pd.read_parquet(snakemake.input.splits),
    Preparation(**snakemake.params.preparation),
    snakemake.output.store,
    threads=snakemake.threads,
    provenance={"dataset": snakemake.wildcards.dataset, "variant": snakemake.wildcards.variant},
)
print(table.groupby(["split", "class_name"]).size().to_string())
