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
        tta=tta_mode,  # a Keras cell's rows of its test-time-augmented scores (none for hybrid and classical cells)
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/evaluate.py"


# A Keras cell's Grad-CAM sheet (evaluation.saliency: all), drawn from the panels its inspect job chose:
# editing the figures' look (leukobench.style) redraws it and runs no model again.
rule saliency_sheet:
    input:
        panels=f"{CELL}/saliency_panels.npz",
    output:
        sheet=report(
            f"{CELL}/saliency.png",
            caption="../report/saliency.rst",
            category="Saliency",
            labels=CELL_LABELS,
        ),
    log:
        f"results/logs/saliency_sheet/{CELLS.wildcard_pattern}.log",
    params:
        code=code_of("saliency_sheet"),
    localrule: True  # a few small figures from small files: no cluster job
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/saliency_sheet.py"


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


# A hybrid or classical cell: its metrics (no training curves; the report draws the best cells' ROC), and
# no test-time augmentation: evaluation.tta reruns none of these.
use rule evaluate as evaluate_hybrid with:
    input:
        model=f"{HYBRID}/classifier.joblib",
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
        model=f"{CLASSICAL}/classifier.joblib",
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
        panels=directory("results/report/saliency_best_{dataset}_panels"),
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


# The chosen cells' sheets, drawn from the panels their Grad-CAM job chose: editing the figures' look
# (leukobench.style) redraws them and runs no model again.
rule saliency_best_sheets:
    input:
        panels="results/report/saliency_best_{dataset}_panels",
    output:
        sheets=report(
            directory("results/report/saliency_best_{dataset}"),
            patterns=["{name}.png"],
            caption="../report/saliency_best.rst",
            category="Saliency",
            labels={"figure": "Grad-CAM of the best cells: {name}", "dataset": "{dataset}"},
        ),
    log:
        "results/logs/saliency_best_sheets/{dataset}.log",
    params:
        code=code_of("saliency_best_sheets"),
    wildcard_constraints:
        dataset=one_of(keras_datasets() if SALIENCY == "chosen" else ()),
    localrule: True  # a few small figures from small files: no cluster job
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/saliency_best_sheets.py"
