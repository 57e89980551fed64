from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.data.splits import fold_partition
from leukobench.data.store import Preparation, build_store

splits = pd.read_parquet(snakemake.input.splits)
if snakemake.params.fold is not None:
    splits = fold_partition(splits, snakemake.params.fold, snakemake.params.validation)
store = build_store(
    pd.read_parquet(snakemake.input.manifest),
    splits,
    Preparation(**snakemake.params.preparation),
    snakemake.output.store,
    threads=snakemake.threads,
    max_pixels=snakemake.params.max_pixels,
    provenance={"dataset": snakemake.wildcards.dataset, "partition": snakemake.wildcards.partition,
                "variant": snakemake.wildcards.variant},
)
print(store.frame.groupby(["split", "class_name"]).size().to_string())
