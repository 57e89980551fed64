from leukobench.runtime import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.io import atomic_path
from leukobench.splits import assign_splits

options = snakemake.params.split
splits = assign_splits(pd.read_parquet(snakemake.input.manifest), options["method"], options["ratios"], options["seed"])
print(splits.groupby(["split", "label"]).agg(images=("image_id", "size"), subjects=("patient_id", "nunique")).to_string())
with atomic_path(snakemake.output.splits) as tmp:
    splits.to_parquet(tmp, index=False)
