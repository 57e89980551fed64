# Every cell is evaluated from the predictions its fit wrote, by a light job that loads no model
# (no TensorFlow): editing the metrics, or changing evaluation:, reruns these only.
# The model file is an input for its digest only: scoring.json names what it was made from.
rule evaluate:
    input:
        model=f"{CELL}/model.keras",
        predictions=f"{CELL}/predictions.parquet",
        history=f"{CELL}/history.csv",  # whether the trial learned: its training loss (leukobench.learned)
        tta=tta_predictions,
    output:
        metrics=f"{CELL}/metrics.json",
        scoring=f"{CELL}/scoring.json",
    log:
        f"results/logs/evaluate/{CELLS.wildcard_pattern}.log",
    params:
        code=code_of("evaluate"),
        evaluation=evaluation_options,
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/evaluate.py"


# A Keras cell's figures (ROC, confusion matrix, training curves), drawn from its predictions and
# history by a job of their own: editing a figure or their look (leukobench.style) redraws them and
# reruns no evaluation, so nothing of the report's tables.
rule cell_figures:
    input:
        predictions=f"{CELL}/predictions.parquet",
        history=f"{CELL}/history.csv",
    output:
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
        f"results/logs/cell_figures/{CELLS.wildcard_pattern}.log",
    params:
        code=code_of("cell_figures"),
    localrule: True  # a few small figures from small files: no cluster job
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/cell_figures.py"


# A hybrid or classical cell: its metrics (no figures of its own; the report draws the best cells' ROC).
use rule evaluate as evaluate_hybrid with:
    input:
        model=f"{HYBRID}/classifier.joblib",
        predictions=f"{HYBRID}/predictions.parquet",
    output:
        metrics=f"{HYBRID}/metrics.json",
        scoring=f"{HYBRID}/scoring.json",
    log:
        f"results/logs/evaluate/hybrid/{HYBRIDS.wildcard_pattern}.log",


use rule evaluate as evaluate_classical with:
    input:
        model=f"{CLASSICAL}/classifier.joblib",
        predictions=f"{CLASSICAL}/predictions.parquet",
    output:
        metrics=f"{CLASSICAL}/metrics.json",
        scoring=f"{CLASSICAL}/scoring.json",
    log:
        f"results/logs/evaluate/classical/{CLASSICALS.wildcard_pattern}.log",
