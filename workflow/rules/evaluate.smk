# A Keras cell's inspection passes, which run its model again: Grad-CAM (evaluation.saliency: all) and
# test-time augmentation (evaluation.tta), in one TensorFlow job that loads the model and the store once.
# At most one such job per cell besides its training; none with saliency none or chosen and tta none.
rule inspect:
    input:
        model=f"{CELL}/model.keras",
        bundle=f"{CELL}/model.json",
        predictions=f"{CELL}/predictions.parquet",
        store=store_of_cell,
    output:
        **inspect_outputs(),
    log:
        f"results/logs/inspect/{CELLS.wildcard_pattern}.log",
    params:
        code=code_of("inspect"),
        tta=tta_mode,
    wildcard_constraints:
        model=one_of(KERAS_MODELS if SALIENCY == "all" else ()),  # else rule tta and rule saliency_best
    threads: 2
    resources:
        gpu=gpu_slots,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/inspect.py"


# Test-time augmentation alone (evaluation.tta, with saliency none or chosen: no Grad-CAM of every cell),
# in its own script, so that an edit of the Grad-CAM code reruns none of these passes.
rule tta:
    input:
        model=f"{CELL}/model.keras",
        bundle=f"{CELL}/model.json",
        predictions=f"{CELL}/predictions.parquet",
        store=store_of_cell,
    output:
        predictions=f"{CELL}/predictions_tta.parquet",
    log:
        f"results/logs/tta/{CELLS.wildcard_pattern}.log",
    params:
        code=code_of("tta"),
        tta=tta_mode,
    wildcard_constraints:
        model=one_of(KERAS_MODELS if SALIENCY != "all" else ()),  # with saliency all, rule inspect writes them
    threads: 2
    resources:
        gpu=gpu_slots,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/tta.py"


# Every cell is evaluated from the predictions its fit wrote, by a light job that loads no model
# (no TensorFlow): editing the metrics or the figures, or changing evaluation:, reruns these only.
rule evaluate:
    input:
        predictions=f"{CELL}/predictions.parquet",
        history=f"{CELL}/history.csv",
        tta=tta_predictions,
    output:
        metrics=f"{CELL}/metrics.json",
        scoring=f"{CELL}/scoring.json",
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
        evaluation=evaluation_options,
        tta=tta_mode,  # a Keras cell's rows of its test-time-augmented scores
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/evaluate.py"


# A hybrid or classical cell: its metrics (no training curves; the report draws the best cells' ROC), and
# no test-time augmentation: evaluation.tta reruns none of these.
use rule evaluate as evaluate_hybrid with:
    input:
        predictions=f"{HYBRID}/predictions.parquet",
    output:
        metrics=f"{HYBRID}/metrics.json",
        scoring=f"{HYBRID}/scoring.json",
    log:
        f"results/logs/evaluate/hybrid/{HYBRIDS.wildcard_pattern}.log",
    params:  # merged into evaluate's: tta set here, so that evaluation.tta reruns none of these
        tta="none",


use rule evaluate as evaluate_classical with:
    input:
        predictions=f"{CLASSICAL}/predictions.parquet",
    output:
        metrics=f"{CLASSICAL}/metrics.json",
        scoring=f"{CLASSICAL}/scoring.json",
    log:
        f"results/logs/evaluate/classical/{CLASSICALS.wildcard_pattern}.log",
    params:  # merged into evaluate's: tta set here, so that evaluation.tta reruns none of these
        tta="none",


# Grad-CAM of the cells a reader looks at (evaluation.saliency: chosen): per dataset, one TensorFlow job
# draws the sheet of the cell behind each Keras model's best configuration, chosen on validation as the
# best-configuration tables choose it (leukobench.report.selection.chosen_keras_cells), from the cells'
# own scores (their predictions): no evaluation: setting reruns it; a retrained or added cell, or an edit
# of the choosing code (its digest), does.
rule saliency_best:
    input:
        predictions=keras_cells_of_dataset("predictions.parquet"),
        models=keras_cells_of_dataset("model.keras"),
        bundles=keras_cells_of_dataset("model.json"),
        stores=stores_of_keras_cells,
    output:
        summary="results/report/saliency_best_{dataset}.json",
        sheets=report(
            directory("results/report/saliency_best_{dataset}"),
            patterns=["{name}.png"],
            caption="../report/saliency_best.rst",
            category="Saliency",
            labels={"figure": "Grad-CAM of the best cells: {name}", "dataset": "{dataset}"},
        ),
    log:
        "results/logs/saliency_best/{dataset}.log",
    params:
        code=code_of("saliency_best"),
    wildcard_constraints:
        dataset=one_of(keras_datasets() if SALIENCY == "chosen" else ()),
    threads: 2
    resources:
        gpu=dataset_gpu_slots,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/saliency_best.py"
