rule store:
    input:
        manifest="results/{dataset}/manifest.parquet",
        splits=splits_of_partition,
    output:
        store=STORE,
    log:
        "results/logs/store/{dataset}/{partition}/{variant}/{size}px.log",
    params:
        code=code_of("store"),
        preparation=preparation,
        fold=fold_of_partition,
        max_pixels=max_pixels,
        validation=has_validation_split,
    threads: 4
    resources:
        mem_mb=4000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/store.py"


# The store's sample sheet, a figure of its own: editing the figures' look (leukobench.style) redraws
# it and rebuilds no store, so retrains nothing.
rule samples:
    input:
        store=STORE,
    output:
        sheet=report(
            "results/{dataset}/store/{partition}/{variant}/{size}px_samples.png",
            caption="../report/samples.rst",
            category="Data",
            labels={"dataset": "{dataset}", "split": "{partition}", "variant": "{variant}", "size": "{size} px"},
        ),
    log:
        "results/logs/samples/{dataset}/{partition}/{variant}/{size}px.log",
    params:
        code=code_of("samples"),
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/samples.py"


rule store_features:
    input:
        store=STORE,
    output:
        features=FEATURES,
    log:
        "results/logs/features/{dataset}/{partition}/{variant}/{size}px_{features}.log",
    params:
        compute_threads=COMPUTE_THREADS,
        code=code_of("store_features"),
        options=config["features"],
    threads: COMPUTE_THREADS
    resources:
        mem_mb=8000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/store_features.py"

