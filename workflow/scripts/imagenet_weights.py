from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.weights_fetch import fetch_imagenet_weights

fetch_imagenet_weights(snakemake.wildcards.weights_file, snakemake.params.url, snakemake.params.file_hash,
                       snakemake.params.folder, snakemake.output.receipt)
