"""``leukobench predict``, the application: a trained, evaluated trial applied to image files.

:mod:`~leukobench.apply.predict` runs the command (the checks in order, the classification, the
exit codes); :mod:`~leukobench.apply.inputs` finds and prepares the image files;
:mod:`~leukobench.apply.outputs` writes the CSVs and overlays, each through one guard;
:mod:`~leukobench.apply.subjects` finds subjects in file names (``--by-subject``). The scores are the
library's (:class:`leukobench.learn.scored_model.ScoredModel`), which takes arrays, not files.
"""
