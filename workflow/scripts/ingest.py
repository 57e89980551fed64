from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.io import atomic_path
from leukobench.data.readers import read_dataset
from leukobench.settings import read_settings

manifest, rejected = read_dataset(
    snakemake.params.format, snakemake.input.raw, threads=snakemake.threads, options=read_settings(snakemake.input.options) or None,
    max_pixels=snakemake.params.max_pixels,
)
print(f"{len(manifest)} images read, {len(rejected)} rejected (see {snakemake.output.rejected})")
print(manifest.groupby(["subset", "class_name"]).size().to_string())
with atomic_path(snakemake.output.rejected) as tmp:
    rejected.to_csv(tmp, sep="\t", index=False)
with atomic_path(snakemake.output.manifest) as tmp:
    manifest.to_parquet(tmp, index=False)
