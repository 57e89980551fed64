"""The learning layer: models, training, features, classical classifiers, evaluation, prediction
and the figures of one trial. Imports the data layer and the ground floor, never the report."""
