from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.devices import configure_runtime
from leukobench.learn.saliency import saliency_of_cell, share_text

configure_runtime(snakemake.threads, seed=0)
summary = saliency_of_cell(snakemake.input.model, snakemake.input.store, snakemake.output.summary,
                           snakemake.output.panels)
print(f"{summary['images']} {summary['split']} images, Grad-CAM of {summary['feature_map']}: {share_text(summary)}")
