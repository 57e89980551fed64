# Validation and target functions. Everything the rules compute from config lives here.

from snakemake.utils import Paramspace, validate

from leukobench.config import check_config, grid_cells


validate(config, schema="../schemas/config.schema.yaml")
check_config(config)


CELLS = Paramspace(grid_cells(config["grid"]))
CELL = f"results/cells/{CELLS.wildcard_pattern}"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    variant=r"[A-Za-z0-9_-]+",
    size=r"\d+",


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def raw_folder(wildcards):
    """Where the reader finds the raw files: generated, downloaded, or the configured path."""
    dataset = dataset_config(wildcards)
    if dataset["format"] == "synthetic":
        return f"resources/synthetic/{wildcards.dataset}"
    if "url" in dataset:
        return f"resources/raw/{wildcards.dataset}"
    return dataset["path"]


def synthetic_spec(wildcards):
    dataset = dataset_config(wildcards)
    if dataset["format"] != "synthetic":
        raise ValueError(f"dataset '{wildcards.dataset}' is not synthetic; it is read from {dataset['path']}")
    return dataset["synthetic"]


def preparation(wildcards):
    """The store's parameters: the variant's settings and the size of this store, nothing else."""
    return {**config["variants"][wildcards.variant], "size": int(wildcards.size)}


def store_of_cell(wildcards):
    return f"results/{wildcards.dataset}/store/{wildcards.variant}/{wildcards.size}px.parquet"


def cell_files(name):
    """One path per grid cell, e.g. every cell's metrics.json."""
    return [f"results/cells/{cell}/{name}" for cell in CELLS.instance_patterns]


def final_outputs():
    return ["results/report/metrics.csv", "results/report/comparison.png"]
