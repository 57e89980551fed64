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


# A Keras trial runs in one job, one TensorFlow start: it trains the model, then, with the model in
# memory, writes the predictions of the evaluated splits (the evaluation reads them, loading no
# model) and, for a trial whose conv features a hybrid trial uses, those features.
rule train:
    input:
        store=store_of_trial,
        imagenet=imagenet_receipt,  # transfer models with training.weights: imagenet (rule imagenet_weights)
        training=settings_of("training/{model}/{optimizer}", keras_training),
    output:
        model=f"{TRIAL}/model.keras",
        record=f"{TRIAL}/model.json",
        history=f"{TRIAL}/history.csv",
        predictions=f"{TRIAL}/predictions.parquet",
    log:
        f"results/logs/train/{TRIALS.wildcard_pattern}.log",
    benchmark:
        f"{TRIAL}/train_benchmark.tsv"
    params:
        compute_threads=COMPUTE_THREADS,
        code=training_code,  # per model: its family of builders, not the others
        trial=trial_parameters(TRIALS),
    wildcard_constraints:
        model=one_of(KERAS_MODELS - HYBRID_MODELS),
    threads: COMPUTE_THREADS
    resources:
        gpu=gpu_slots,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/train.py"


# The trials of the models in hybrid.models: the same training, and their conv features too.
use rule train as train_with_features with:
    output:
        model=f"{TRIAL}/model.keras",
        record=f"{TRIAL}/model.json",
        history=f"{TRIAL}/history.csv",
        predictions=f"{TRIAL}/predictions.parquet",
        features=f"{TRIAL}/features.parquet",
    wildcard_constraints:
        model=one_of(HYBRID_MODELS),


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
        compute_threads=FIT_THREADS,
        code=code_of("fit_classical"),
        trial=trial_parameters(HYBRIDS),
    threads: FIT_THREADS
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/fit_classical.py"


rule fit_classical:
    input:
        features=features_of_trial,
    output:
        model=f"{CLASSICAL}/classifier.joblib",
        predictions=f"{CLASSICAL}/predictions.parquet",
    log:
        f"results/logs/classical/{CLASSICALS.wildcard_pattern}.log",
    benchmark:
        f"{CLASSICAL}/fit_benchmark.tsv"
    params:
        compute_threads=FIT_THREADS,
        code=code_of("fit_classical"),
        trial=trial_parameters(CLASSICALS),
    threads: FIT_THREADS
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/fit_classical.py"
