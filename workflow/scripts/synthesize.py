from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.data.synthetic import SyntheticSpec, write_cnmc_tree

cells = write_cnmc_tree(snakemake.output[0], SyntheticSpec(**snakemake.params.spec))
print(f"wrote {len(cells)} synthetic cells of {cells['subject'].nunique()} subjects to {snakemake.output[0]}")
