"""The ``leukobench`` command: apply a trained cell to new images.

    leukobench predict results/cells/<cell>/ new_cells/ more.bmp -o predictions.csv

The work is done by :mod:`leukobench.predict` (its docstring says what each error does); this
module only parses the command line.
"""

from __future__ import annotations

import argparse
import os
import sys


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="leukobench", description=__doc__.split("\n\n")[0])
    commands = main_parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict", help="classify image files with a trained Keras cell",
        description="Classify image files with a trained Keras cell; one CSV row per image.",
        epilog="Exit status: 0 when at least one image was classified (unreadable ones get a row with "
               "status 'error' and a line on standard error); 2 for a wrong model path or model files, "
               "no image in the inputs or a bad option; 3 when no image could be classified.")
    predict.add_argument("model", help="a trained cell's folder (results/cells/.../, holding model.keras and "
                                       "model.json) or its model.keras")
    predict.add_argument("images", nargs="+", help="image files, or folders searched recursively for images")
    predict.add_argument("-o", "--output", help="CSV to write (default: standard output)")
    predict.add_argument("-b", "--batch-size", type=positive, default=64,
                         help="images decoded and classified at a time (default: %(default)s)")
    predict.add_argument("-j", "--threads", type=positive, default=None,
                         help="threads decoding images (default: all cores)")
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # the per-file messages say why an image was refused; OpenCV's own decoder logs and TensorFlow's
    # warnings would only repeat or drown them
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from leukobench.predict import run

    return run(args.model, args.images, output=args.output, batch_size=args.batch_size, threads=args.threads)


if __name__ == "__main__":
    sys.exit(main())
