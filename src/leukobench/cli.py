"""The ``leukobench`` command: apply a trained cell to new images.

    leukobench predict results/cells/.../model.keras cells/*.bmp -o predictions.csv

Each image is prepared exactly as the model's store was (size, colour mode; scaling is inside
the model), so a file of the test split gets the score the evaluation gave it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from leukobench.readers import IMAGE_SUFFIXES


def image_files(paths: list[str]) -> list[Path]:
    """The files given, with folders expanded to the images they hold (sorted)."""
    files = []
    for given in map(Path, paths):
        if given.is_dir():
            files.extend(sorted(p for p in given.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif given.is_file():
            files.append(given)
        else:
            raise FileNotFoundError(f"{given}: no such file or folder")
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(paths)}")
    return files


def predict_files(model_path: str | Path, files: list[Path]) -> pd.DataFrame:
    """One row per file: path, predicted class, and the score of each class."""
    from leukobench.metrics import predict_labels
    from leukobench.store import load_image
    from leukobench.train import TrainedModel

    model = TrainedModel.load(model_path)
    images = np.stack([load_image(path, model.preparation) for path in files])
    scores = model.predict_scores(images)
    table = pd.DataFrame({"path": [str(p) for p in files]})
    table["predicted_class"] = np.asarray(model.class_names)[predict_labels(scores)]
    if scores.ndim == 1:
        scores = np.column_stack([1 - scores, scores])
    for k, name in enumerate(model.class_names):
        table[f"score_{name}"] = scores[:, k]
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leukobench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser("predict", help="classify images with a trained cell's model.keras")
    predict.add_argument("model", help="a cell's model.keras (model.json must lie beside it)")
    predict.add_argument("images", nargs="+", help="image files or folders of images")
    predict.add_argument("-o", "--output", help="CSV to write (default: print to standard output)")
    args = parser.parse_args(argv)
    try:
        if not Path(args.model).is_file():
            raise FileNotFoundError(f"{args.model}: no such model file; give a cell's model.keras")
        table = predict_files(args.model, image_files(args.images))
    except (FileNotFoundError, ValueError) as error:
        print(f"leukobench predict: {error}", file=sys.stderr)
        return 2
    if args.output:
        table.to_csv(args.output, index=False)
    else:
        table.to_csv(sys.stdout, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
