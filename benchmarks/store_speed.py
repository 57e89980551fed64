"""Images per second from raw files to a finished store, side by side in one run.

Three ways over the same files:
  bare decoding   OpenCV decodes every file on all cores and does nothing else (the floor);
  baseline        what the studies' code does: a Python loop over files with Keras' image
                  utilities (load_img with target_size, img_to_array), then np.save;
  leukobench      ingest (hash + decode check -> manifest) + split + build_store (decode,
                  resize, Parquet), on all cores.

    python benchmarks/store_speed.py [--images 1500] [--size 450] [--store-size 32]

The files are synthetic cells in the C-NMC layout at the real size (450 px BMP) unless
--data points at a real dataset folder (format cnmc).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from leukobench.readers import read_dataset
from leukobench.splits import assign_splits
from leukobench.store import Preparation, build_store
from leukobench.synthetic import SyntheticSpec, write_cnmc_tree

RATIOS = {"train": 0.7, "val": 0.15, "test": 0.15}


def bare_decoding(files: list[Path], threads: int) -> None:
    with ThreadPoolExecutor(threads) as pool:
        for image in pool.map(lambda f: cv2.imread(str(f), cv2.IMREAD_UNCHANGED), files):
            assert image is not None


def keras_loop(files: list[Path], size: int, out: Path) -> None:
    from keras.utils import img_to_array, load_img  # imported before timing: see main()

    arrays = [img_to_array(load_img(f, target_size=(size, size))) for f in files]
    np.save(out, np.stack(arrays).astype(np.uint8))


def leukobench_store(root: Path, size: int, out: Path, threads: int) -> None:
    manifest, _ = read_dataset("cnmc", root, threads=threads)
    splits = assign_splits(manifest, "subject", RATIOS, seed=0)
    build_store(manifest, splits, Preparation(size=size, balance="none"), out, threads=threads)


def timed(label: str, n: int, run) -> float:
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    print(f"{label:<16} {seconds:8.2f} s {n / seconds:10.0f} images/s", flush=True)
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--size", type=int, default=450, help="side of the synthetic raw images")
    parser.add_argument("--store-size", type=int, default=32)
    parser.add_argument("--data", type=Path, help="a real C-NMC folder instead of synthetic cells")
    args = parser.parse_args()
    threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        root = args.data
        if root is None:
            root = scratch / "raw"
            subjects = max(6, args.images // 50)
            write_cnmc_tree(root, SyntheticSpec(subjects=subjects, cells_per_subject=args.images // subjects,
                                                image_size=args.size))
        files = sorted(root.rglob("*.bmp"))
        n = len(files)
        print(f"{n} files of {root}, {threads} cores, store size {args.store_size} px")
        bare_decoding(files[:50], threads)  # warm the page cache for every contender alike
        for f in files:
            f.read_bytes()
        import keras.utils  # noqa: F401 - TensorFlow's start-up is not part of the loop's time

        floor = timed("bare decoding", n, lambda: bare_decoding(files, threads))
        baseline = timed("keras loop", n, lambda: keras_loop(files, args.store_size, scratch / "baseline.npy"))
        ours = timed("leukobench", n, lambda: leukobench_store(root, args.store_size, scratch / "store.parquet", threads))
        print(f"leukobench vs keras loop: {ours / baseline:.2f}x faster (target >= 2x)")
        print(f"bare decoding vs leukobench: {floor / ours:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
