"""The report layer: the tables and figures of a whole grid, from the metrics the trials wrote, and the
figures of one trial (``figures/``: one module per figure family, each drawn by a rule of its own).
Imports the ground floor and itself only: editing a model or a reader never reruns the report's rules."""
