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
    output:
        directory("resources/raw/{dataset}"),
    log:
        "results/logs/download/{dataset}.log",
    params:
        code=code_of("download"),
        url=dataset_url,
        sha256=dataset_sha256,
        limits=config["download"],
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/download.py"


rule ingest:
    input:
        raw=raw_folder,
    output:
        manifest="results/{dataset}/manifest.parquet",
        rejected="results/{dataset}/rejected.tsv",
    log:
        "results/logs/ingest/{dataset}.log",
    params:
        code=code_of("ingest"),
        format=dataset_format,
        options=reader_options,
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
