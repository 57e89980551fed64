"""The store's sample sheet: what the models are fed, per class, original and augmented images.

The data layer's one figure, drawn by the workflow's rule ``samples`` from a finished store (not
by the store's job), with the shared look of :mod:`leukobench.style` (one PNG, written atomically,
no pyplot state): editing the look redraws the sheets and rebuilds no store, so retrains nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from leukobench.style import drawing, save_png

SAMPLES_PER_ROW = 8


def plot_sample_sheet(frame: pd.DataFrame, images: np.ndarray, class_names: Sequence[str], path: str | os.PathLike,
                      title: str, seed: int = 0) -> None:
    """What the models are fed: per class, a row of original images and a row of augmented ones.

    Args:
        frame: the store's rows (``label``, ``split``, ``augmented``), aligned with ``images``.
        images: uint8 (n, H, W, C) pixels as stored (RGB or gray).
        class_names: names of the labels 0..k-1.
        path: the PNG to write.
        title: the figure title.
        seed: which images are shown.
    """
    missing = [column for column in ("label", "split", "augmented") if column not in frame]
    if missing:
        raise ValueError(f"frame: missing column(s) {missing}")
    rng = np.random.default_rng(seed)
    rows = []
    for label, name in enumerate(class_names):
        for augmented in (False, True):
            chosen = np.flatnonzero((frame["label"].to_numpy() == label) & (frame["augmented"].to_numpy() == augmented))
            if len(chosen):
                picked = np.sort(rng.choice(chosen, size=min(SAMPLES_PER_ROW, len(chosen)), replace=False))
                rows.append((f"{name}\n{'augmented' if augmented else 'original'}", picked))
    if not rows:
        raise ValueError("frame: no images to show")
    with drawing():
        fig = Figure(figsize=(1.3 * SAMPLES_PER_ROW + 1.2, 1.4 * len(rows) + 0.6))
        axes = fig.subplots(len(rows), SAMPLES_PER_ROW, squeeze=False)
        for (label, picked), row_axes in zip(rows, axes):
            for k, ax in enumerate(row_axes):
                ax.set_xticks([])
                ax.set_yticks([])
                ax.spines[:].set_visible(False)
                if k < len(picked):
                    image = images[picked[k]]
                    ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
                    ax.set_title(frame["split"].iloc[picked[k]], fontsize=8)
            row_axes[0].set_ylabel(label, rotation=0, ha="right", va="center")
        fig.suptitle(title)
        save_png(fig, path)
