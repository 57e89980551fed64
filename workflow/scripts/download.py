from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.data.download import fetch_dataset

fetch_dataset(snakemake.params.url, snakemake.output[0], sha256=snakemake.params.sha256)
