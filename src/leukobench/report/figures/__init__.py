"""The report's figures, one module per figure family, each drawn by the rule that imports only it
(so that editing one family redraws only its figures):

* :mod:`~leukobench.report.figures.trial`: one trial's ROC, confusion matrix and training curves
  (rule ``trial_figures``, from the trial's predictions and history);
* over the whole grid, from the report's metric table (``results/report/metrics.csv``, one row per
  evaluated trial; the caller passes the test rows): :mod:`~leukobench.report.figures.comparison`
  (rule ``comparison``), :mod:`~leukobench.report.figures.hyperparameters` and
  :mod:`~leukobench.report.figures.accuracy_vs_time` (rule ``figures``),
  :mod:`~leukobench.report.figures.leakage` (subject-disjoint vs random split, rule ``leakage``),
  :mod:`~leukobench.report.figures.seeds` (rule ``seeds``);
* of the best trials of a dataset, from their predictions (rule ``best_trials``):
  :mod:`~leukobench.report.figures.roc` (ROC overlay), :mod:`~leukobench.report.figures.reliability`
  (calibration) and :mod:`~leukobench.report.figures.subjects` (the subjects' verdicts).

:mod:`~leukobench.report.figures.common` holds what the grid's figures share. All draw with the shared
look of :mod:`leukobench.style` (one PNG each, written atomically, no pyplot state); which trials to
show and how to name them comes from :mod:`leukobench.report.selection`. All but
``plot_comparison`` return the Figure they saved (for tests). Inputs are checked before drawing
and bad input raises ``ValueError`` naming the argument or any required column the table lacks.
The modules import the ground floor and :mod:`leukobench.report.selection` only; this file imports
none of them (a rule's code digest reaches only the modules its script names).
"""
