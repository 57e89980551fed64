rule store:
    input:
        manifest="results/{dataset}/manifest.parquet",
        splits="results/{dataset}/splits.parquet",
    output:
        store="results/{dataset}/store/{variant}/{size}px.parquet",
    log:
        "results/logs/store/{dataset}/{variant}/{size}px.log",
    params:
        preparation=preparation,
    threads: 4
    resources:
        mem_mb=4000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/store.py"
