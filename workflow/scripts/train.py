from leukobench.runtime import log_to

log_to(snakemake.log[0])

from leukobench.config import plain
from leukobench.train import TrainingSpec, train_from_store

cell = plain(snakemake.params.cell)
spec = TrainingSpec(**{key: cell[key] for key in ("model", "optimizer", "learning_rate", "epochs", "batch_size", "seed")})
train_from_store(snakemake.input.store, spec, snakemake.output.model, snakemake.output.history, cell, snakemake.threads)
