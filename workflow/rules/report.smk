rule aggregate:
    input:
        metrics=trial_files("metrics.json"),
        saliency=saliency_files,
    output:
        table=report(
            METRICS,
            caption="../report/metrics.rst",
            category="Comparison",
            labels={"table": "metrics of every trial and split"},
        ),
    log:
        "results/logs/aggregate.log",
    params:
        code=code_of("aggregate"),
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/aggregate.py"


rule comparison:
    input:
        metrics=METRICS,
    output:
        figure=report(
            "results/report/comparison.png",
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"figure": "test accuracy of every trial"},
        ),
    log:
        "results/logs/comparison.log",
    params:
        code=code_of("comparison"),
        pretrained=pretrained_models,
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/comparison.py"


rule tables:
    input:
        metrics=METRICS,
    output:
        csv="results/report/best_configurations.csv",
        markdown="results/report/best_configurations.md",
        html=report(
            "results/report/best_configurations.html",
            caption="../report/best_configurations.rst",
            category="Comparison",
            labels={"table": "best configuration of each model"},
        ),
    log:
        "results/logs/tables.log",
    params:
        code=code_of("tables"),
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/tables.py"


rule reproduction:
    input:
        metrics=METRICS,
        published=settings_of("published", published_results),
    output:
        csv="results/report/reproduction.csv",
        markdown="results/report/reproduction.md",
        html=report(
            "results/report/reproduction.html",
            caption="../report/reproduction.rst",
            category="Reproduction",
            labels={"table": "published numbers beside ours"},
        ),
    log:
        "results/logs/reproduction.log",
    params:
        code=code_of("reproduction"),
        scale=config["scale"],
        smoke_min_size=smoke_min_size(),  # the sizes a smoke run was scaled to at least (the model registry's)
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/reproduction.py"


rule figures:
    input:
        metrics=METRICS,
    output:
        effects=report(
            "results/report/hyperparameters.png",
            caption="../report/hyperparameters.rst",
            category="Comparison",
            labels={"figure": "effect of each hyperparameter on test F1"},
        ),
        speed=report(
            "results/report/accuracy_vs_time.png",
            caption="../report/accuracy_vs_time.rst",
            category="Comparison",
            labels={"figure": "test accuracy against prediction time"},
        ),
    log:
        "results/logs/figures.log",
    params:
        code=code_of("figures"),
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/figures.py"


rule leakage:
    input:
        metrics=METRICS,
    output:
        figure=report(
            "results/report/leakage.png",
            caption="../report/leakage.rst",
            category="Comparison",
            labels={"figure": "subject-disjoint vs cell-level random split"},
        ),
    log:
        "results/logs/leakage.log",
    params:
        code=code_of("leakage"),
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/leakage.py"


rule seeds:
    input:
        metrics=METRICS,
    output:
        figure=report(
            "results/report/seeds.png",
            caption="../report/seeds.rst",
            category="Comparison",
            labels={"figure": "spread over training seeds"},
        ),
    log:
        "results/logs/seeds.log",
    params:
        code=code_of("seeds"),
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/seeds.py"


rule best_trials:
    input:
        metrics=METRICS,
        predictions=of_dataset("predictions.parquet"),
        scorings=of_dataset("scoring.json"),
    output:
        roc=report(
            "results/report/roc_best_{dataset}.png",
            caption="../report/roc_best.rst",
            category="Comparison",
            labels={"figure": "ROC of the best trials", "dataset": "{dataset}"},
        ),
        reliability=report(
            "results/report/reliability_best_{dataset}.png",
            caption="../report/reliability_best.rst",
            category="Calibration",
            labels={"figure": "reliability of the best trials", "dataset": "{dataset}"},
        ),
        subjects=report(
            "results/report/subjects_best_{dataset}.png",
            caption="../report/subjects_best.rst",
            category="Subjects",
            labels={"figure": "subjects' verdicts by the best trials", "dataset": "{dataset}"},
        ),
    log:
        "results/logs/best_trials/{dataset}.log",
    params:
        code=code_of("best_trials"),
        subject_aggregation=subject_aggregation,
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/best_trials.py"
