"""TensorFlow's devices in a leukobench process: GPUs shared, CPU threads bounded, seeds set.

TensorFlow reserves nearly all of a GPU's memory in the first process that uses it, so a second
job on the same GPU fails for want of memory. :func:`share_gpus` turns on memory growth (a process
takes what it uses, as it needs it) on every visible GPU before the first operation, in every job
and command that runs a model; several Keras jobs can then hold one GPU at once (how many, the
workflow's ``gpu`` resource decides: see the README's "GPUs").
"""

from __future__ import annotations


def share_gpus() -> list:
    """Memory growth on every visible GPU; returns them (none on a machine without one).

    Must run before TensorFlow's first operation; afterwards TensorFlow keeps its setting and the
    note says so (tests, notebooks)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    try:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        print("TensorFlow is already initialised; its GPU memory setting is kept", flush=True)
    return gpus


def configure_runtime(threads: int, seed: int) -> None:
    """GPUs shared (:func:`share_gpus`), Python, numpy and Keras seeded, TensorFlow's CPU threads
    bounded to the job's share; one log line says which devices run it."""
    import keras
    import tensorflow as tf

    gpus = share_gpus()
    keras.utils.set_random_seed(seed)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, threads)))
    except RuntimeError:  # TensorFlow already ran in this process (tests, notebooks): keep its threads
        print("TensorFlow is already initialised; its thread settings are kept", flush=True)
    where = f"{len(gpus)} GPU(s) with memory growth ({', '.join(gpu.name for gpu in gpus)})" if gpus else "the CPU (no GPU visible)"
    print(f"TensorFlow {tf.__version__} runs on {where}, {threads} CPU thread(s), seed {seed}", flush=True)
