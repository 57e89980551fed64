from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.classical import fit_classical_cell

cell = snakemake.params.cell  # plain Python values (common.smk cell_parameters)
cell = {"approach": "hybrid" if "model" in cell else "classical", **cell}
fit_classical_cell(snakemake.input.features, cell["classifier"], snakemake.output.model, snakemake.output.predictions,
                   cell, seed=cell["seed"], threads=snakemake.threads)
