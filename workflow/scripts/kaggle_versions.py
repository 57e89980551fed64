import os

terminal = os.fdopen(os.dup(2), "w")  # the answer is what the user asked to see: on the terminal too

from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.data.kaggle import current_versions

for line in current_versions(snakemake.params.handles):
    print(line)
    print(line, file=terminal, flush=True)
