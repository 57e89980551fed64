# Validation and target functions. Everything the rules compute from config lives here.

from snakemake.utils import Paramspace, validate

from leukobench.config import apply_scale, check_config, classical_cells, hybrid_cells, keras_cells


validate(config, schema="../schemas/config.schema.yaml")
check_config(config)
config = apply_scale(config)

KERAS_CELLS, EXCLUDED = keras_cells(config)
for message in EXCLUDED:
    logger.warning(message)
CELLS = Paramspace(KERAS_CELLS)
CELL = f"results/cells/{CELLS.wildcard_pattern}"
HYBRIDS = Paramspace(hybrid_cells(config, KERAS_CELLS))
HYBRID = f"results/hybrid/{HYBRIDS.wildcard_pattern}"
CLASSICALS = Paramspace(classical_cells(config))
CLASSICAL = f"results/classical/{CLASSICALS.wildcard_pattern}"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_-]+",
    variant=r"[A-Za-z0-9_-]+",
    size=r"\d+",
    features=r"[a-z_]+",


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


def features_of_cell(wildcards):
    return f"results/{wildcards.dataset}/features/{wildcards.variant}/{wildcards.size}px_{wildcards.features}.parquet"


def store_of_cell(wildcards):
    return f"results/{wildcards.dataset}/store/{wildcards.variant}/{wildcards.size}px.parquet"


def cell_files(name):
    """One path per cell of every kind (Keras, hybrid, classical), e.g. every metrics.json."""
    return [
        f"results/{kind}/{cell}/{name}"
        for kind, space in (("cells", CELLS), ("hybrid", HYBRIDS), ("classical", CLASSICALS))
        for cell in space.instance_patterns
    ]


def features_of_hybrid(wildcards):
    """The conv features of the Keras cell a hybrid cell uses (its wildcards minus the classifier)."""
    return f"{CELL}/features.parquet".format(**wildcards)


def final_outputs():
    return ["results/report/metrics.csv", "results/report/comparison.png"]
