"""The learning layer: models, training, features, classical classifiers, evaluation and
prediction (a trial's figures are drawn in ``leukobench.report.figures.trial``). Imports the data layer and the ground floor, never the report."""
