# Keras' ImageNet weights file of the transfer models (training.weights: imagenet), fetched once on
# the machine that runs snakemake (a local rule: a SLURM login node has the network, its compute
# nodes may not; a training job never downloads) into training.weights_folder (Keras' cache by
# default), checked against Keras' own hash. A file already there with that hash is not requested.
rule imagenet_weights:
    input:
        source=settings_of("imagenet_weights/{weights_file}", imagenet_source),
    output:
        receipt=IMAGENET,
    log:
        "results/logs/imagenet_weights/{weights_file}.log",
    params:
        code=code_of("imagenet_weights"),
    wildcard_constraints:
        weights_file=one_of(IMAGENET_FILES),
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/imagenet_weights.py"


# A Keras cell runs in one job, one TensorFlow start: it trains the model, then, with the model in
# memory, writes the predictions of the evaluated splits (the evaluation reads them, loading no
# model) and, for a cell whose conv features a hybrid cell uses, those features.
rule train:
    input:
        store=store_of_cell,
        imagenet=imagenet_receipt,  # transfer models with training.weights: imagenet (rule imagenet_weights)
        training=settings_of("training/{model}/{optimizer}", keras_training),
    output:
        model=f"{CELL}/model.keras",
        bundle=f"{CELL}/model.json",
        history=f"{CELL}/history.csv",
        predictions=f"{CELL}/predictions.parquet",
    log:
        f"results/logs/train/{CELLS.wildcard_pattern}.log",
    benchmark:
        f"{CELL}/train_benchmark.tsv"
    params:
        code=code_of("train"),
        cell=cell_parameters(CELLS),
    wildcard_constraints:
        model=one_of(KERAS_MODELS - HYBRID_MODELS),
    threads: 2
    resources:
        gpu=gpu_slots,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/train.py"


# The cells of the models in hybrid.models: the same training, and their conv features too.
use rule train as train_with_features with:
    output:
        model=f"{CELL}/model.keras",
        bundle=f"{CELL}/model.json",
        history=f"{CELL}/history.csv",
        predictions=f"{CELL}/predictions.parquet",
        features=f"{CELL}/features.parquet",
    wildcard_constraints:
        model=one_of(HYBRID_MODELS),


# Where a trained Keras cell looks (Grad-CAM on its test images): a second model pass, so a second
# TensorFlow job, with evaluation.saliency; it reruns when the model or the saliency code changes.
# It writes the numbers (saliency.json) and the panels of its sheet, which rule saliency_sheet draws.
rule saliency:
    input:
        model=f"{CELL}/model.keras",
        bundle=f"{CELL}/model.json",
        store=store_of_cell,
    output:
        summary=f"{CELL}/saliency.json",
        panels=f"{CELL}/saliency_panels.npz",
    log:
        f"results/logs/saliency/{CELLS.wildcard_pattern}.log",
    params:
        code=code_of("saliency"),
    threads: 2
    resources:
        gpu=gpu_slots,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/saliency.py"


# Test-time augmentation (evaluation.tta): the cell's scores again, averaged over flipped and rotated
# views of each image; a model pass, so a TensorFlow job; its evaluation gives them rows of their own.
# The saliency sheet, drawn from the panels the saliency job chose: editing the figures' look
# (leukobench.style) redraws it and runs no model again.
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
    threads: 2
    resources:
        gpu=gpu_slots,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/tta.py"


rule fit_hybrid:
    input:
        features=features_of_hybrid,
    output:
        model=f"{HYBRID}/classifier.joblib",
        predictions=f"{HYBRID}/predictions.parquet",
    log:
        f"results/logs/hybrid/{HYBRIDS.wildcard_pattern}.log",
    benchmark:
        f"{HYBRID}/fit_benchmark.tsv"
    params:
        code=code_of("fit_classical"),
        cell=cell_parameters(HYBRIDS),
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
    log:
        f"results/logs/classical/{CLASSICALS.wildcard_pattern}.log",
    benchmark:
        f"{CLASSICAL}/fit_benchmark.tsv"
    params:
        code=code_of("fit_classical"),
        cell=cell_parameters(CLASSICALS),
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/fit_classical.py"
