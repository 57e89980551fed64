rule train:
    input:
        store=store_of_cell,
    output:
        model=f"{CELL}/model.keras",
        bundle=f"{CELL}/model.json",
        history=f"{CELL}/history.csv",
    log:
        f"results/logs/train/{CELLS.wildcard_pattern}.log",
    benchmark:
        f"{CELL}/train_benchmark.tsv"
    params:
        cell=CELLS.instance,
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/train.py"
