from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.saved_model import write_tta_predictions
from leukobench.learn.devices import configure_runtime
from leukobench.score_variants import pass_views

configure_runtime(snakemake.params.compute_threads, seed=0)
predictions = write_tta_predictions(snakemake.input.model, snakemake.input.store, snakemake.input.predictions,
                                    snakemake.output.predictions, pass_views(snakemake.params.tta))
print(f"{len(predictions)} images scored as the mean over their '{snakemake.params.tta}' views")
