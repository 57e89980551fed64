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


rule store_features:
    input:
        store="results/{dataset}/store/{variant}/{size}px.parquet",
    output:
        features="results/{dataset}/features/{variant}/{size}px_{features}.parquet",
    log:
        "results/logs/features/{dataset}/{variant}/{size}px_{features}.log",
    params:
        options=config["features"],
    threads: 2
    resources:
        mem_mb=8000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/store_features.py"


rule cell_features:
    input:
        model=f"{CELL}/model.keras",
        bundle=f"{CELL}/model.json",
        store=store_of_cell,
    output:
        features=f"{CELL}/features.parquet",
    log:
        f"results/logs/cell_features/{CELLS.wildcard_pattern}.log",
    threads: 2
    resources:
        mem_mb=8000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/cell_features.py"
