"""Put on PYTHONPATH by tests/test_weights.py: Keras' file hashes of leukobench.models.weights are
replaced by those in $LEUKOBENCH_TEST_KERAS_HASHES (JSON, file name to hash), in the snakemake process
that plans the run and in every job it starts, so that a real run fetches made-up weights files from
a local HTTP server."""

import json
import os

if os.environ.get("LEUKOBENCH_TEST_KERAS_HASHES"):
    import leukobench.models.weights

    leukobench.models.weights.KERAS_FILE_HASHES.update(json.loads(os.environ["LEUKOBENCH_TEST_KERAS_HASHES"]))
