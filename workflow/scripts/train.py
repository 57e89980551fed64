from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.train import TrainingSpec, train_from_store
from leukobench.models.weights import use_fetched
from leukobench.settings import read_settings

if snakemake.input.get("imagenet"):  # a transfer model with training.weights: imagenet: rule imagenet_weights' file
    use_fetched(snakemake.input.imagenet)

trial = snakemake.params.trial  # plain Python values (common.smk trial_parameters)
spec = TrainingSpec(
    **{key: trial[key] for key in ("model", "optimizer", "learning_rate", "loss", "epochs", "batch_size", "seed")},
    **read_settings(snakemake.input.training),  # the training: options this trial's model takes (common.smk keras_training)
)
print(f"GPU slots held (the workflow's gpu resource): {snakemake.resources.gpu}", flush=True)
train_from_store(snakemake.input.store, spec, snakemake.output.model, snakemake.output.history, trial, snakemake.params.compute_threads,
                 code=snakemake.params.code, predictions_path=snakemake.output.predictions,
                 features_path=snakemake.output.get("features"))  # train_with_features: for the trial's hybrid trials
