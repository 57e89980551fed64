"""Put on PYTHONPATH by tests/test_workflow.py: each process that imports TensorFlow appends the name
of its script (a Snakemake job runs ``.snakemake/scripts/tmpXXXX.<rule script>.py``) to the file
named by $LEUKOBENCH_TF_PROBE, so a finished run shows which jobs started TensorFlow."""

import os
import sys


class TensorFlowProbe:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow":
            sys.meta_path.remove(self)
            with open(os.environ["LEUKOBENCH_TF_PROBE"], "a") as probe:
                probe.write(f"{os.path.basename(sys.argv[0] if sys.argv else '')}\n")
        return None  # the import itself goes on as usual


if os.environ.get("LEUKOBENCH_TF_PROBE"):
    sys.meta_path.insert(0, TensorFlowProbe())
