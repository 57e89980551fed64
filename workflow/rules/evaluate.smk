rule evaluate:
    input:
        model=f"{CELL}/model.keras",
        bundle=f"{CELL}/model.json",
        history=f"{CELL}/history.csv",
        store=store_of_cell,
    output:
        predictions=f"{CELL}/predictions.parquet",
        metrics=f"{CELL}/metrics.json",
        roc=report(
            f"{CELL}/roc.png",
            caption="../report/roc.rst",
            category="Models",
            subcategory="ROC curves",
            labels=CELL_LABELS,
        ),
        confusion=report(
            f"{CELL}/confusion.png",
            caption="../report/confusion.rst",
            category="Models",
            subcategory="Confusion matrices",
            labels=CELL_LABELS,
        ),
        curves=report(
            f"{CELL}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Models",
            subcategory="Training curves",
            labels=CELL_LABELS,
        ),
    log:
        f"results/logs/evaluate/{CELLS.wildcard_pattern}.log",
    params:
        code=code_of("evaluate"),
        cell=cell_parameters(CELLS),
        evaluation=evaluation_options,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/evaluate.py"
