from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.data.store import load_store
from leukobench.learn.saved_model import TrainedModel, write_tta_predictions
from leukobench.learn.devices import configure_runtime
from leukobench.learn.saliency import saliency_of_trial, share_text
from leukobench.score_variants import pass_views

configure_runtime(snakemake.params.compute_threads, seed=0)
model, store = TrainedModel.load(snakemake.input.model), load_store(snakemake.input.store)  # once, for both passes
if "tta" in snakemake.output.keys():  # with evaluation.tta
    predictions = write_tta_predictions(model, store, snakemake.input.predictions, snakemake.output.tta,
                                        pass_views(snakemake.params.tta))
    print(f"{len(predictions)} images scored as the mean over their '{snakemake.params.tta}' views")
summary = saliency_of_trial(model, store, snakemake.input.predictions, snakemake.output.summary,
                            snakemake.output.panels)  # rule saliency_sheet draws them
print(f"{summary['images']} {summary['split']} images, Grad-CAM of {summary['feature_map']}: {share_text(summary)}")
