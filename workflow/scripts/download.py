from leukobench.plan.runtime import log_to

log_to(snakemake.log[0])

from leukobench.data.download import UnpackLimits, fetch_dataset

fetch_dataset(snakemake.params.url, snakemake.output[0], sha256=snakemake.params.sha256,
              limits=UnpackLimits(**snakemake.params.limits))
