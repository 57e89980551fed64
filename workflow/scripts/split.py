from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

import pandas as pd

from leukobench.io import atomic_path
from leukobench.data.splits import assign_splits, split_log

options = snakemake.params.split
manifest = pd.read_parquet(snakemake.input.manifest)
copies = manifest.loc[manifest["subset"] == "training", "content_hash"].duplicated().sum()
print(f"{copies} image(s) are byte-identical copies of another; duplicates: {options['duplicates']}")
splits = assign_splits(manifest, options["method"], options["ratios"], options["seed"], options["duplicates"],
                       folds=options["folds"], external_test=options["external_test"])
print(split_log(splits, classes=manifest.groupby("label")["class_name"].first().to_dict()))
with atomic_path(snakemake.output.splits) as tmp:
    splits.to_parquet(tmp, index=False)
