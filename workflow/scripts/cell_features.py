from leukobench.plan.runtime import log_to

log_to(snakemake.log[0])

import leukobench.learn.cnn_features  # noqa: F401 - registers the 'cnn' extractor
from leukobench.learn.features import extract_features

extract_features(snakemake.input.store, "cnn", snakemake.output.features, model_path=snakemake.input.model,
                 threads=snakemake.threads)
