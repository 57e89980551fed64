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
        code=code_of("train"),
        cell=cell_parameters(CELLS),
        training=keras_training,
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/train.py"


rule fit_hybrid:
    input:
        features=features_of_hybrid,
    output:
        model=f"{HYBRID}/classifier.joblib",
        predictions=f"{HYBRID}/predictions.parquet",
        metrics=f"{HYBRID}/metrics.json",
    log:
        f"results/logs/hybrid/{HYBRIDS.wildcard_pattern}.log",
    benchmark:
        f"{HYBRID}/fit_benchmark.tsv"
    params:
        code=code_of("fit_classical"),
        cell=cell_parameters(HYBRIDS),
        evaluation=evaluation_options,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/fit_classical.py"


rule fit_classical:
    input:
        features=features_of_cell,
    output:
        model=f"{CLASSICAL}/classifier.joblib",
        predictions=f"{CLASSICAL}/predictions.parquet",
        metrics=f"{CLASSICAL}/metrics.json",
    log:
        f"results/logs/classical/{CLASSICALS.wildcard_pattern}.log",
    benchmark:
        f"{CLASSICAL}/fit_benchmark.tsv"
    params:
        code=code_of("fit_classical"),
        cell=cell_parameters(CLASSICALS),
        evaluation=evaluation_options,
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/fit_classical.py"
