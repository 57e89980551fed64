from leukobench.plan.joblog import log_to

log_to(snakemake.log[0])

from leukobench.learn.evaluate import evaluate_predictions

options = snakemake.params.evaluation
evaluate_predictions(
    snakemake.input.predictions, snakemake.output.metrics, snakemake.output.scoring, model_path=snakemake.input.model,
    n_boot=options["bootstrap"], seed=options["seed"], min_groups=options["min_interval_groups"],
    subject_aggregation=options["subject_aggregation"], calibration=options["calibration"],
    tta=snakemake.params.tta,  # a Keras trial's evaluation.tta (rule evaluate); none for hybrid and classical trials
    tta_path=next(iter(snakemake.input.get("tta") or []), None),
    history_path=snakemake.input.get("history"),  # a Keras trial's (rule evaluate): judged on its training loss too
)
