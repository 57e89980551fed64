from leukobench.plan.runtime import log_to

log_to(snakemake.log[0])

from leukobench.learn.evaluate import evaluate_predictions

options = snakemake.params.evaluation
predictions, metadata = evaluate_predictions(
    snakemake.input.predictions, snakemake.output.metrics, snakemake.output.scoring,
    n_boot=options["bootstrap"], seed=options["seed"], min_groups=options["min_interval_groups"],
    subject_aggregation=options["subject_aggregation"], calibration=options["calibration"],
    tta=snakemake.params.tta,  # a Keras cell's evaluation.tta (rule evaluate); none for hybrid and classical cells
    tta_path=next(iter(snakemake.input.get("tta") or []), None),
)
if "curves" in snakemake.output.keys():  # a Keras cell's figures (rule evaluate; not evaluate_hybrid, evaluate_classical)
    from leukobench.learn.figures import plot_cell

    plot_cell(predictions, metadata, snakemake.input.history, snakemake.output.roc, snakemake.output.confusion,
              snakemake.output.curves)
