"""Images per second of ``leukobench predict`` against the bare model, side by side in one run.

Three ways over the same files and the same model:
  model.predict      the images already decoded, resized and stacked in memory, classified by
                     ``model.predict`` (the ceiling: no file is touched);
  decoding only      what ``leukobench predict`` does to the files without the model (read, decode,
                     colour, resize, in chunks on all cores);
  leukobench predict files on disk to a finished CSV (``leukobench.apply.predict.write_predictions``,
                     the command's path, in this process; the model is loaded before timing).

    python benchmarks/predict_speed.py [--images 1000] [--size 450] [--model-size 32] [--batch-size 64]
    python benchmarks/predict_speed.py --trial results/trials/<trial>/ [--data folder/of/images]

Without --trial an untrained model (``--model``, default abed_cnn) is built at --model-size: the
speed of a model does not depend on its weights. The files are synthetic cells in the C-NMC layout
at the real size (450 px BMP) unless --data points at a folder of images.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from leukobench.apply.inputs import find_images, prepared_chunks
from leukobench.apply.predict import load_trial, write_predictions
from leukobench.data.store import Preparation, load_image

from common import available_cores, write_synthetic_cells  # benchmarks/common.py


def untrained_trial(folder: Path, model: str, size: int) -> Path:
    """A trial folder (model.keras + model.json) holding an untrained two-class model."""
    from leukobench.models import create_model

    folder.mkdir(parents=True)
    prep = Preparation(size=size, balance="none")
    create_model(model, input_shape=(size, size, prep.channels), n_classes=2).save(folder / "model.keras")
    (folder / "model.json").write_text(json.dumps({"model": model, "preparation": asdict(prep),
                                                   "class_names": ["hem", "all"], "trial": {}}))
    return folder


def timed(label: str, n: int, run, repeat: int) -> float:
    """The best of ``repeat`` runs (the first also pays for tracing and warm caches)."""
    seconds = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        seconds = min(seconds, time.perf_counter() - started)
    print(f"{label:<20} {seconds:8.2f} s {n / seconds:10.0f} images/s", flush=True)
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=450, help="side of the synthetic raw images")
    parser.add_argument("--model-size", type=int, default=32, help="input side of the untrained model")
    parser.add_argument("--model", default="abed_cnn", help="registered model to build when no --trial is given")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--trial", type=Path,
                        help="a trained trial's folder or model.keras instead of an untrained model")
    parser.add_argument("--data", type=Path, help="a folder of images instead of synthetic cells")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way; the best is reported")
    args = parser.parse_args()
    threads = available_cores()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        root = args.data
        if root is None:
            root = write_synthetic_cells(scratch / "raw", args.images, args.size)
        files = find_images([root])
        n = len(files)
        trial = args.trial or untrained_trial(scratch / "trial", args.model, args.model_size)
        model = load_trial(trial)  # TensorFlow's start-up and the model's loading are not part of any time
        prep = model.preparation
        print(f"{n} files of {root}, {threads} cores, model {model.record.get('model', '?')} at "
              f"{prep.size} px {prep.color}, batch size {args.batch_size}")
        arrays = np.stack([load_image(f, prep) for f in files])  # also warms the page cache for all three
        print(f"{arrays.nbytes / 2**20:.0f} MiB of preloaded arrays; best of {args.repeat} runs each")

        ceiling = timed("model.predict", n, lambda: model.model.predict(arrays, batch_size=args.batch_size, verbose=0),
                        args.repeat)
        timed("decoding only", n, lambda: [None for _ in prepared_chunks(files, prep, args.batch_size)], args.repeat)

        def to_csv() -> None:
            with open(scratch / "predictions.csv", "w", newline="") as out:
                summary = write_predictions(model, files, out, args.batch_size)
            assert summary.classified == n, summary

        ours = timed("leukobench predict", n, to_csv, args.repeat)
        print(f"leukobench predict / model.predict on preloaded arrays: {ours / ceiling:.2f} "
              "(ratio of images per second; below 1: the cost of reading, decoding and resizing the files)")


if __name__ == "__main__":
    main()
