from leukobench.plan.runtime import log_to, plain

log_to(snakemake.log[0])

from leukobench.learn.train import TrainingSpec, train_from_store

cell = plain(snakemake.params.cell)
options = snakemake.params.training
spec = TrainingSpec(
    **{key: cell[key] for key in ("model", "optimizer", "learning_rate", "loss", "epochs", "batch_size", "seed")},
    class_weight=options["class_weight"],
    early_stopping_patience=options["early_stopping_patience"],
    model_options={"weights": options["weights"], "trainable_layers": options["trainable_layers"]},
)
train_from_store(snakemake.input.store, spec, snakemake.output.model, snakemake.output.history, cell, snakemake.threads,
                 code=snakemake.params.code)
