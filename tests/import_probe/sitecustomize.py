"""Put on PYTHONPATH by the workflow tests: each process that imports one of the heavy libraries
(TensorFlow, scikit-learn, matplotlib) appends a line ``<library> <script>`` to the file named by
$LEUKOBENCH_IMPORT_PROBE (a Snakemake job runs ``.snakemake/scripts/tmpXXXX.<rule script>.py``),
so a finished run shows which jobs started TensorFlow, and a dry run that its planning imported none."""

import os
import sys

PROBED = ("tensorflow", "sklearn", "matplotlib")


class ImportProbe:
    def __init__(self):
        self.waiting = set(PROBED)

    def find_spec(self, name, path=None, target=None):
        if name in self.waiting:
            self.waiting.discard(name)
            with open(os.environ["LEUKOBENCH_IMPORT_PROBE"], "a") as probe:
                probe.write(f"{name} {os.path.basename(sys.argv[0] if sys.argv else '')}\n")
        return None  # the import itself goes on as usual


if os.environ.get("LEUKOBENCH_IMPORT_PROBE"):
    sys.meta_path.insert(0, ImportProbe())
