from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.data.download import UnpackLimits, fetch_dataset
from leukobench.settings import read_settings

source = read_settings(snakemake.input.source)
fetch_dataset(source["url"], snakemake.output[0], sha256=source["sha256"], limits=UnpackLimits(**snakemake.params.limits))
