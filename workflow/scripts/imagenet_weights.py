from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.models.weights_fetch import fetch_imagenet_weights
from leukobench.settings import read_settings

source = read_settings(snakemake.input.source)
fetch_imagenet_weights(snakemake.wildcards.weights_file, source["url"], source["file_hash"], source["folder"],
                       snakemake.output.receipt)
