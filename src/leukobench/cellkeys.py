"""The keys that name a cell (a point of the experiment grid), in the order of its folder names
and of the columns of metrics.csv. Constants only, with no imports, so that the modules a rule
uses (the figures, the tables) do not reach the config checks and every registry through them:
each rule's code digest (leukobench.provenance) follows imports.
"""

PARTITION_KEYS = ("split_method", "fold")  # how a dataset is split; fold only with split.folds
GRID_KEYS = ("dataset", *PARTITION_KEYS, "variant", "size", "model", "optimizer", "learning_rate", "loss", "epochs",
             "batch_size", "seed")
HYBRID_KEYS = (*GRID_KEYS, "classifier")
CLASSICAL_KEYS = ("dataset", *PARTITION_KEYS, "variant", "size", "features", "classifier", "seed")
CELL_KEYS = ("approach", *GRID_KEYS[:6], "features", "classifier", *GRID_KEYS[6:])  # every column naming a cell
