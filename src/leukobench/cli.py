"""The ``leukobench`` command: apply a trained trial to new images.

    leukobench predict results/trials/<trial>/ new_cells/ more.bmp -o predictions.csv

The work is done by :mod:`leukobench.apply.predict` (its docstring says what each error does); this
module only parses the command line, and ends a run stopped by Ctrl-C (exit 130) or ``SIGTERM``
(exit 143) through the cleanups, so that no temporary output file is left behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import contextmanager

from leukobench.metrics import SUBJECT_AGGREGATIONS
from leukobench.score_variants import choices

CNMC_SUBJECT = r"UID_(?P<subject>H?\d+)_"  # --by-subject's default: the subject in C-NMC's file names


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    from leukobench.apply.subjects import PATTERN_SECONDS

    main_parser = argparse.ArgumentParser(prog="leukobench", description=__doc__.split("\n\n")[0])
    commands = main_parser.add_subparsers(dest="command", required=True)
    predict = commands.add_parser(
        "predict", help="classify image files with a trained Keras trial",
        description="Classify image files with a trained Keras trial; one CSV row per image.",
        epilog="Exit status: 0 when at least one image was classified (unreadable ones get a row with "
               "status 'error' and a line on standard error); 2 for a wrong model path or model files, "
               "no image in the inputs, a bad option, a --by-subject pattern refused, or an output (-o, "
               "--subjects-output, --saliency) that is one of the inputs or model files, lies inside a folder given "
               "as input, or cannot be written (the message names the file); 3 when no image could be classified; 141 when the output's reader went "
               "away (e.g. | head), quietly; 130 on Ctrl-C and 143 on SIGTERM (no partial output file is left).")
    predict.add_argument("model", help="a trained trial's folder (results/trials/.../, holding model.keras and "
                                       "model.json) or its model.keras")
    predict.add_argument("images", nargs="+", help="image files, or folders searched recursively for images")
    predict.add_argument("-o", "--output", help="CSV to write (default: standard output); a regular file appears "
                                                "only when complete, a symbolic link is written through, a device "
                                                "or FIFO is written as it is; never one of the inputs or model files, nor inside a "
                                                "folder given as input")
    predict.add_argument("-b", "--batch-size", type=positive, default=64,
                         help="images decoded and classified at a time (default: %(default)s)")
    predict.add_argument("-j", "--threads", type=positive, default=None,
                         help="threads decoding images (default: all cores)")
    predict.add_argument("--by-subject", nargs="?", const=CNMC_SUBJECT, metavar="PATTERN",
                         help="also write one row per subject (its cells' aggregate score, predicted class and number "
                              "of trials) to --subjects-output, or beside -o as <output stem>_subjects.csv when -o is a "
                              "regular file; PATTERN, a regular expression with a group (?P<subject>...), finds the "
                              "subject in each file name (default: C-NMC's, %(const)s). An image whose name gives an "
                              "empty subject gets an error row; a name it does not match is left out of the subjects' "
                              "CSV. The pattern is tried on every name before any image is read, and refused when it "
                              f"takes more than {PATTERN_SECONDS:g} s on one name (nested repeats such as (a+)+ "
                              "backtrack for years)")
    predict.add_argument("--subjects-output", metavar="FILE",
                         help="with --by-subject: the subjects' CSV (needed when -o is not a regular file, e.g. "
                              "/dev/stdout, or not given); same rules as -o")
    predict.add_argument("--aggregation", choices=SUBJECT_AGGREGATIONS, default="mean",
                         help="how a subject's cells make its score with --by-subject, as evaluation.subject_aggregation "
                              "(default: %(default)s)")
    predict.add_argument("--saliency", metavar="DIR",
                         help="also write, per classified image, its Grad-CAM heat map of the predicted class over the "
                              "image as the model saw it, to DIR/<input number>_<name>.png (DIR is made if missing; "
                              "never a folder given as input nor inside one, and no overlay is ever an input or "
                              "model file)")
    predict.add_argument("--tta", choices=choices("tta"), default=None,
                         help="test-time augmentation: average each image's scores over the views that a score "
                              "variant of evaluation.tta gives, one of %(choices)s (leukobench.score_variants, e.g. "
                              "flips: the image mirrored and upside down; none: the image alone; default: the trial's "
                              "evaluation.tta, from its scoring.json)")
    predict.add_argument("--uncalibrated", action="store_true",
                         help="the model's own scores, without the temperature the trial's evaluation fitted "
                              "(scoring.json, with evaluation.calibration: temperature); also applies a trial whose "
                              "scoring.json is missing or refused (made from another model file, values the "
                              "evaluation does not write), saying so on standard error")
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # the per-file messages say why an image was refused; OpenCV's own decoder logs would only repeat them
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    from leukobench.apply.predict import run

    with _terminated_as_exit():
        try:
            return run(args.model, args.images, output=args.output, batch_size=args.batch_size,
                       threads=args.threads, calibrated=not args.uncalibrated, by_subject=args.by_subject,
                       aggregation=args.aggregation, saliency=args.saliency, tta=args.tta,
                       subjects_file=args.subjects_output)
        except KeyboardInterrupt:  # Ctrl-C: the output's temporary file is already gone (atomic_path)
            return 128 + signal.SIGINT


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


@contextmanager
def _terminated_as_exit():
    """SIGTERM raises SystemExit(143) for the block, so that cleanups (``finally``) run: a killed
    command leaves no temporary output file behind. The previous handler is restored after."""
    try:
        previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def command() -> int:
    """The installed ``leukobench`` command: :func:`main`, with TensorFlow's start-up notices left
    out of standard error (:func:`leukobench.plan.joblog.filter_native_log`)."""
    from leukobench.plan.joblog import filter_native_log

    filter_native_log(2)
    return main()


if __name__ == "__main__":
    sys.exit(command())
