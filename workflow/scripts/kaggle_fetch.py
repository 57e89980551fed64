from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.data.kaggle import fetch_kaggle, handle_of

handle = handle_of(snakemake.wildcards.owner, snakemake.wildcards.slug, snakemake.params.version)
fetch_kaggle(handle, snakemake.output.files, snakemake.output.receipt)
