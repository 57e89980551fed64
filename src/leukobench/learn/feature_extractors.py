"""Feature stores: one fixed-length float32 vector per image of an image store.

The classical classifiers (:mod:`leukobench.learn.classical`) learn from these vectors. Two
extractors of a store alone are registered in ``FEATURE_EXTRACTORS`` (a
:class:`leukobench.registry.Registry`):

* ``pixels``: the image as it is stored (HWC), flattened and scaled to [0, 1] (Rezayi's
  machine-learning baselines);
* ``hog_pca``: Zhang (2024): grayscale, Histogram of Oriented Gradients, then PCA to
  ``pca_components`` (100) dimensions. PCA is fitted on the train split only and applied to
  every split, so nothing of the val or test images shapes the features.

The third kind, ``cnn`` (the conv features of a trained Keras cell: Varol's FEM-k, Approach 2), is
written in the same layout by the cell's training job (:mod:`leukobench.learn.cnn_features`),
while its model is in memory; this module, which every classical cell reads its features with,
never reaches the Keras code.

The file they are written to is a feature store (:mod:`leukobench.learn.feature_store`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from leukobench.data.store import Store, load_store
from leukobench.learn.feature_store import TRAIN_SPLIT, write_store_features
from leukobench.registry import Registry


# HOG. Zhang (2024) states grayscale 100x100 images scaled to [0, 1], HOG, then PCA to 100
# components, but not HOG's own parameters. These are scikit-image's `hog` defaults, the usual
# Python choice, computed with OpenCV (scikit-image is not a dependency):
HOG_ORIENTATIONS = 9  # orientations=9, unsigned gradients (0-180 degrees)
HOG_CELL_PX = 8  # pixels_per_cell=(8, 8)
HOG_BLOCK_CELLS = 3  # cells_per_block=(3, 3); blocks step by one cell, so they overlap
HOG_L2HYS_CLIP = 0.2  # block_norm="L2-Hys": L2-normalise, clip at 0.2, renormalise
# OpenCV weights each block with a Gaussian window by default, scikit-image does not: a window
# this wide is flat over any block.
HOG_WINDOW_SIGMA = 1e6
# Like scikit-image, HOG covers the whole cells that fit from the top-left corner (96 of 100 px:
# 12x12 cells, 10x10 blocks, 8100 values). OpenCV also splits each gradient vote between
# neighbouring bins and cells (trilinear interpolation), which scikit-image does not: the values
# are close to scikit-image's, not identical. OpenCV's HOG reads uint8 images; scaling them to
# [0, 1] first, as Zhang does, changes nothing after the block normalisation.


@dataclass(frozen=True)
class ExtractorOptions:
    """What the extractors may use besides the store; each uses the fields it needs."""

    pca_components: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        value = self.pca_components
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise ValueError(f"pca_components must be a positive integer, got {value!r}")


Extractor = Callable[[Store, ExtractorOptions], tuple[np.ndarray, dict]]
FEATURE_EXTRACTORS: Registry[Extractor] = Registry("feature extractor", listed_as="registered extractors")
register_extractor = FEATURE_EXTRACTORS.register


def list_extractors() -> list[str]:
    """The registered extractor names, sorted."""
    return FEATURE_EXTRACTORS.names()


# ----------------------------------------------------------------------------- extractors


@register_extractor("pixels")
def pixel_features(store: Store, options: ExtractorOptions) -> tuple[np.ndarray, dict]:
    """The stored pixels (HWC order), flattened and scaled to [0, 1]."""
    n = len(store.images)
    features = store.images.reshape(n, -1).astype(np.float32)
    features /= np.float32(255)
    return features, {"scale": "1/255"}


def hog_descriptor(size: int) -> cv2.HOGDescriptor:
    """OpenCV's HOG with the parameters above, over the whole cells of a ``size`` px image."""
    block_px = HOG_BLOCK_CELLS * HOG_CELL_PX
    if size < block_px:
        raise ValueError(
            f"HOG needs images of at least {block_px} px (one block of {HOG_BLOCK_CELLS}x{HOG_BLOCK_CELLS} "
            f"cells of {HOG_CELL_PX} px); the store's images are {size} px: build a larger store"
        )
    window = (size // HOG_CELL_PX) * HOG_CELL_PX
    return cv2.HOGDescriptor(
        (window, window), (block_px, block_px), (HOG_CELL_PX, HOG_CELL_PX), (HOG_CELL_PX, HOG_CELL_PX),
        HOG_ORIENTATIONS, 1, HOG_WINDOW_SIGMA, cv2.HOGDescriptor_L2Hys, HOG_L2HYS_CLIP, False,
        cv2.HOGDescriptor_DEFAULT_NLEVELS, False,
    )


def to_gray(image: np.ndarray) -> np.ndarray:
    """A stored HWC image (RGB or single-channel) as a 2-D uint8 grayscale image."""
    if image.shape[2] == 1:
        return image[:, :, 0]
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def hog_features(images: np.ndarray, descriptor: cv2.HOGDescriptor) -> np.ndarray:
    """``(n, d)`` HOG descriptors of stored images ``(n, H, W, C)``; one OpenCV call per image."""
    window = descriptor.winSize[0]
    features = np.empty((len(images), descriptor.getDescriptorSize()), dtype=np.float32)
    for i, image in enumerate(images):
        features[i] = descriptor.compute(np.ascontiguousarray(to_gray(image)[:window, :window])).ravel()
    return features


def pca_components_for(requested: int, n_train: int, n_features: int) -> int:
    """``min(requested, n_train, n_features)``, with a note in the log when it is fewer than asked."""
    components = min(requested, n_train, n_features)
    if components < requested:
        print(
            f"PCA: {components} components instead of the {requested} requested: "
            f"only {n_train} train images and {n_features} features",
            flush=True,
        )
    return components


@register_extractor("hog_pca")
def hog_pca_features(store: Store, options: ExtractorOptions) -> tuple[np.ndarray, dict]:
    """Zhang (2024): grayscale HOG, then PCA fitted on the train split only."""
    train = (store.frame["split"] == TRAIN_SPLIT).to_numpy()
    if not train.any():
        raise ValueError("the store has no train images to fit PCA on")
    descriptor = hog_descriptor(min(store.images.shape[1:3]))
    hog = hog_features(store.images, descriptor)
    components = pca_components_for(options.pca_components, int(train.sum()), hog.shape[1])
    pca = PCA(n_components=components, random_state=options.seed).fit(hog[train])
    features = pca.transform(hog).astype(np.float32)
    print(
        f"hog_pca: {hog.shape[1]} HOG values per image, PCA to {components} components fitted on "
        f"{int(train.sum())} train images ({pca.explained_variance_ratio_.sum():.3f} of their variance)",
        flush=True,
    )
    parameters = {
        "color": "gray",
        "hog": {
            "library": f"opencv {cv2.__version__}", "orientations": HOG_ORIENTATIONS, "signed_gradient": False,
            "pixels_per_cell": HOG_CELL_PX, "cells_per_block": HOG_BLOCK_CELLS, "block_stride_cells": 1,
            "block_norm": "L2-Hys", "l2hys_clip": HOG_L2HYS_CLIP, "window_px": int(descriptor.winSize[0]),
            "n_values": int(hog.shape[1]),
        },
        "pca": {
            "requested_components": options.pca_components, "components": components, "fitted_on": TRAIN_SPLIT,
            "n_train": int(train.sum()), "explained_variance": float(pca.explained_variance_ratio_.sum()),
            "seed": options.seed,
        },
    }
    return features, parameters


# ----------------------------------------------------------------------------- a store's features


def extract_features(store_path: str | os.PathLike, extractor: str, out_path: str | os.PathLike, *,
                     pca_components: int = 100, seed: int = 0, threads: int = 1) -> pd.DataFrame:
    """Compute one feature vector per image of a store and write the feature store.

    Args:
        store_path: the Parquet image store.
        extractor: a name from :func:`list_extractors`.
        out_path: the feature store to write (written aside, moved into place when complete).
        pca_components: PCA dimensions (``hog_pca``); fewer when the train split or the HOG
            vector is smaller, with a note in the log.
        seed: seeds PCA's randomised solver.
        threads: BLAS/OpenMP threads for HOG and PCA (the job's share of the cores; more threads
            than free cores makes OpenBLAS stall for seconds).

    Returns:
        The rows written (``image_id``, ``patient_id``, ``split``, ``label``, ``class_name``),
        without the feature column.
    """
    options = ExtractorOptions(pca_components=pca_components, seed=seed)
    extract = FEATURE_EXTRACTORS.get(extractor)  # ValueError naming the registered ones, before reading anything
    store = load_store(store_path)
    with threadpool_limits(limits=max(1, int(threads))):
        features, parameters = extract(store, options)
    return write_store_features(store, store_path, extractor, features, parameters, asdict(options), out_path)
