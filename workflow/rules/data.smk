rule synthesize:
    output:
        directory("resources/synthetic/{dataset}"),
    log:
        "results/logs/synthesize/{dataset}.log",
    params:
        code=code_of("synthesize"),
        spec=synthetic_spec,
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/synthesize.py"


rule download:
    input:
        source=settings_of("download/{dataset}", dataset_source),
    output:
        directory("resources/raw/{dataset}"),
    log:
        "results/logs/download/{dataset}.log",
    params:
        code=code_of("download"),
        limits=config["download"],  # numbers only: the bounds of the unpacking (leukobench.data.download)
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/download.py"


rule kaggle_fetch:
    output:
        files=directory("resources/kaggle/{owner}/{slug}/files"),
        receipt="resources/kaggle/{owner}/{slug}/receipt.json",
    log:
        "results/logs/kaggle_fetch/{owner}/{slug}.log",
    params:
        version=kaggle_version,  # no code digest: an edit of the fetching code refetches nothing
    priority: 100  # first: refused credentials stop the run before any other job
    localrule: True  # where snakemake runs (on a cluster, the login node: the one with the network)
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/kaggle_fetch.py"


rule ingest:
    input:
        raw=raw_folder,
        receipt=kaggle_receipt,
        options=settings_of("reader_options/{dataset}", reader_options),
    output:
        manifest="results/{dataset}/manifest.parquet",
        rejected="results/{dataset}/rejected.tsv",
    log:
        "results/logs/ingest/{dataset}.log",
    params:
        code=ingest_code,  # the script, the shared part of the readers and this format's reader
        format=dataset_format,
        max_pixels=max_pixels,
    threads: 4
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/ingest.py"


rule split:
    input:
        manifest="results/{dataset}/manifest.parquet",
    output:
        splits="results/{dataset}/splits/{split_method}.parquet",
    log:
        "results/logs/split/{dataset}/{split_method}.log",
    params:
        code=code_of("split"),
        split=split_options,
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/split.py"


rule fetch:
    """Fetch (Kaggle, url), unpack and ingest every dataset of the config; nothing is trained. On a
    cluster: `snakemake --configfile presets/X.yaml fetch` on the login node, then submit the grid."""
    input:
        data_targets(),
    default_target: False
    localrule: True


rule kaggle_versions:
    """Says, for each Kaggle dataset of the config, the version fetched and Kaggle's current one (an
    unpinned dataset keeps the version of its first fetch): `snakemake --configfile X kaggle_versions`.
    Asks Kaggle; changes nothing."""
    log:
        "results/logs/kaggle_versions.log",
    params:
        handles=kaggle_handles,
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/kaggle_versions.py"
