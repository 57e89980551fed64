from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.feature_extractors import extract_features

extract_features(
    snakemake.input.store, snakemake.wildcards.features, snakemake.output.features,
    pca_components=snakemake.params.options["pca_components"], seed=snakemake.params.options["seed"],
    threads=snakemake.params.compute_threads,
)
