from leukobench.plan.runtime import log_to

log_to(snakemake.log[0])

from leukobench.data.kaggle import fetch_kaggle

source = snakemake.params.source
fetch_kaggle(source["handle"], snakemake.output.files, snakemake.output.receipt, names=source["datasets"])
