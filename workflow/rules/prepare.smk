rule store:
    input:
        manifest="results/{dataset}/manifest.parquet",
        splits="results/{dataset}/splits.parquet",
    output:
        store="results/{dataset}/store/{variant}/{size}px.parquet",
        samples=report(
            "results/{dataset}/store/{variant}/{size}px_samples.png",
            caption="../report/samples.rst",
            category="Data",
            labels={"dataset": "{dataset}", "variant": "{variant}", "size": "{size} px"},
        ),
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
