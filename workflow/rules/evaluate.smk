# A Keras trial's inspection passes, which run its model again: Grad-CAM (evaluation.saliency: all) and
# test-time augmentation (evaluation.tta), in one TensorFlow job that loads the model and the store once.
# At most one such job per trial besides its training; none with saliency none or chosen and tta none.
rule inspect:
    input:
        model=f"{TRIAL}/model.keras",
        record=f"{TRIAL}/model.json",
        predictions=f"{TRIAL}/predictions.parquet",
        store=store_of_trial,
    output:
        **inspect_outputs(),
    log:
        f"results/logs/inspect/{TRIALS.wildcard_pattern}.log",
    params:
        compute_threads=COMPUTE_THREADS,
        code=code_of("inspect"),
        tta=tta_mode,
    wildcard_constraints:
        model=one_of(KERAS_MODELS if SALIENCY == "all" else ()),  # else rule tta and rule saliency_best
    threads: COMPUTE_THREADS
    resources:
        gpu=gpu_slots,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/inspect.py"


# Test-time augmentation alone (evaluation.tta, with saliency none or chosen: no Grad-CAM of every trial),
# in its own script, so that an edit of the Grad-CAM code reruns none of these passes.
rule tta:
    input:
        model=f"{TRIAL}/model.keras",
        record=f"{TRIAL}/model.json",
        predictions=f"{TRIAL}/predictions.parquet",
        store=store_of_trial,
    output:
        predictions=f"{TRIAL}/predictions_tta.parquet",
    log:
        f"results/logs/tta/{TRIALS.wildcard_pattern}.log",
    params:
        compute_threads=COMPUTE_THREADS,
        code=code_of("tta"),
        tta=tta_mode,
    wildcard_constraints:
        model=one_of(KERAS_MODELS if SALIENCY != "all" else ()),  # with saliency all, rule inspect writes them
    threads: COMPUTE_THREADS
    resources:
        gpu=gpu_slots,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/tta.py"


# Every trial is evaluated from the predictions its fit wrote, by a light job that loads no model
# (no TensorFlow): editing the metrics, or changing evaluation:, reruns these only.
# The model file is an input for its digest only: scoring.json names what it was made from.
rule evaluate:
    input:
        model=f"{TRIAL}/model.keras",
        predictions=f"{TRIAL}/predictions.parquet",
        history=f"{TRIAL}/history.csv",  # whether the trial learned: its training loss (leukobench.learned)
        tta=tta_predictions,
    output:
        metrics=f"{TRIAL}/metrics.json",
        scoring=f"{TRIAL}/scoring.json",
    log:
        f"results/logs/evaluate/{TRIALS.wildcard_pattern}.log",
    params:
        code=code_of("evaluate"),
        evaluation=evaluation_options,
        tta=tta_mode,  # a Keras trial's rows of its test-time-augmented scores (none for hybrid and classical trials)
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/evaluate.py"


# A Keras trial's Grad-CAM sheet (evaluation.saliency: all), drawn from the panels its inspect job chose:
# editing the figures' look (leukobench.style) redraws it and runs no model again.
rule saliency_sheet:
    input:
        panels=f"{TRIAL}/saliency_panels.npz",
    output:
        sheet=report(
            f"{TRIAL}/saliency.png",
            caption="../report/saliency.rst",
            category="Saliency",
            labels=TRIAL_LABELS,
        ),
    log:
        f"results/logs/saliency_sheet/{TRIALS.wildcard_pattern}.log",
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


# A Keras trial's figures (ROC, confusion matrix, training curves), drawn from its predictions and
# history by a job of their own: editing a figure or their look (leukobench.style) redraws them and
# reruns no evaluation, so nothing of the report's tables.
rule trial_figures:
    input:
        predictions=f"{TRIAL}/predictions.parquet",
        history=f"{TRIAL}/history.csv",
    output:
        roc=report(
            f"{TRIAL}/roc.png",
            caption="../report/roc.rst",
            category="Models",
            subcategory="ROC curves",
            labels=TRIAL_LABELS,
        ),
        confusion=report(
            f"{TRIAL}/confusion.png",
            caption="../report/confusion.rst",
            category="Models",
            subcategory="Confusion matrices",
            labels=TRIAL_LABELS,
        ),
        curves=report(
            f"{TRIAL}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Models",
            subcategory="Training curves",
            labels=TRIAL_LABELS,
        ),
    log:
        f"results/logs/trial_figures/{TRIALS.wildcard_pattern}.log",
    params:
        code=code_of("trial_figures"),
    localrule: True  # a few small figures from small files: no cluster job
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/trial_figures.py"


# A hybrid or classical trial: its metrics (no training curves; the report draws the best trials' ROC), and
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


# Grad-CAM of the trials a reader looks at (evaluation.saliency: chosen): per dataset, one TensorFlow job
# draws the sheet of the trial behind each Keras model's best configuration, chosen on validation as the
# best-configuration tables choose it (leukobench.report.selection.chosen_keras_trials), from the trials'
# own scores (their predictions): no evaluation: setting reruns it; a retrained or added trial, or an edit
# of the choosing code (its digest), does.
rule saliency_best:
    input:
        predictions=keras_trials_of_dataset("predictions.parquet"),
        models=keras_trials_of_dataset("model.keras"),
        records=keras_trials_of_dataset("model.json"),
        stores=stores_of_keras_trials,
    output:
        summary="results/report/saliency_best_{dataset}.json",
        panels=directory("results/report/saliency_best_{dataset}_panels"),
    log:
        "results/logs/saliency_best/{dataset}.log",
    params:
        compute_threads=COMPUTE_THREADS,
        code=code_of("saliency_best"),
    wildcard_constraints:
        dataset=one_of(keras_datasets() if SALIENCY == "chosen" else ()),
    threads: COMPUTE_THREADS
    resources:
        gpu=dataset_gpu_slots,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/saliency_best.py"


# The chosen trials' sheets, drawn from the panels their Grad-CAM job chose: editing the figures' look
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
            labels={"figure": "Grad-CAM of the best trials: {name}", "dataset": "{dataset}"},
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
