from leukobench.runtime import log_to

log_to(snakemake.log[0])

from leukobench.features import extract_features

extract_features(snakemake.input.store, "cnn", snakemake.output.features, model_path=snakemake.input.model,
                 threads=snakemake.threads)
