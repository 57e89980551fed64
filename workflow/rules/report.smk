rule aggregate:
    input:
        metrics=cell_files("metrics.json"),
    output:
        table=report(
            "results/report/metrics.csv",
            caption="../report/metrics.rst",
            category="Comparison",
            labels={"table": "metrics of every cell and split"},
        ),
        figure=report(
            "results/report/comparison.png",
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"figure": "test accuracy of every cell"},
        ),
    log:
        "results/logs/aggregate.log",
    localrule: True
    conda:
        "../../envs/leukobench.yaml"
    script:
        "../scripts/aggregate.py"
