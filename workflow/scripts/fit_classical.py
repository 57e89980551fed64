from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.classical import fit_classical_trial

trial = snakemake.params.trial  # plain Python values (common.smk trial_parameters)
trial = {"approach": "hybrid" if "model" in trial else "classical", **trial}
fit_classical_trial(snakemake.input.features, trial["classifier"], snakemake.output.model, snakemake.output.predictions,
                   trial, seed=trial["seed"], threads=snakemake.params.compute_threads)
