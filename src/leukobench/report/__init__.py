"""The report layer: the tables and figures of a whole grid, from the metrics the trials wrote.
Imports the ground floor and itself only: editing a model or a reader never reruns the report's rules."""
