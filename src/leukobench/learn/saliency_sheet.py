"""A trained trial's saliency sheet: Grad-CAM heat maps over the images they explain.

The figure of the workflow's rule ``saliency_sheet``, drawn from the panels the ``saliency`` job
chose and wrote (:func:`leukobench.learn.saliency.saliency_of_trial`) with the shared look of
:mod:`leukobench.style` (one PNG, written atomically, no pyplot state): editing the look or this
module redraws the sheet and runs no model again. Bad input raises ``ValueError`` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.figure
import numpy as np

from leukobench.io import atomic_folder
from leukobench.learn.saliency_panels import SHEET_PER_GROUP, sheet_panels
from leukobench.style import DPI, NEUTRAL, OKABE_ITO, drawing, save_png

HEAT_COLORMAP = "inferno"  # perceptually uniform and colour-blind safe; cold is black like the background
HEAT_ALPHA = 0.5  # weight of the heat colour in an overlay


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = HEAT_ALPHA, cmap: str = HEAT_COLORMAP) -> np.ndarray:
    """A heat map blended over its image: uint8 RGB ``(H, W, 3)`` = ``(1 - alpha) * image + alpha * colour``.

    ``image`` is uint8 ``(H, W, 3)`` RGB, ``(H, W, 1)`` or ``(H, W)`` gray (repeated to RGB), as the
    image store holds it: :func:`leukobench.data.store.to_model_input` converts OpenCV's BGR to RGB,
    so store images need no conversion (an image read with ``cv2.imread`` is BGR: convert it with
    ``cv2.cvtColor(image, cv2.COLOR_BGR2RGB)`` first). ``heatmap`` is ``(H, W)`` in [0, 1] (e.g. one
    map of :func:`leukobench.learn.saliency.grad_cam`), coloured with the matplotlib colormap ``cmap``.
    """
    picture = np.asarray(image)
    if picture.ndim == 3 and picture.shape[2] == 1:
        picture = picture[..., 0]
    if picture.ndim == 2:
        picture = np.repeat(picture[..., None], 3, axis=2)
    if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) RGB or (H, W[, 1]) gray, got {np.asarray(image).dtype} "
                         f"{np.shape(image)}")
    heat = np.asarray(heatmap, dtype=np.float64)
    if heat.shape != picture.shape[:2]:
        raise ValueError(f"heatmap {heat.shape} does not match the image's size {picture.shape[:2]}")
    if not np.isfinite(heat).all() or heat.min() < 0 or heat.max() > 1:
        raise ValueError("heatmap must hold finite values in [0, 1]")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    colour = matplotlib.colormaps[cmap](heat)[..., :3] * 255
    return np.clip(np.rint((1 - alpha) * picture + alpha * colour), 0, 255).astype(np.uint8)


def plot_saliency_sheet(
    images: np.ndarray,
    heatmaps: np.ndarray,
    labels: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray,
    class_names: Sequence[str],
    path: str | os.PathLike,
    per_group: int = SHEET_PER_GROUP,
    title: str = "Where the model looks (Grad-CAM of the predicted class)",
) -> None:
    """A trial's saliency sheet: for each true class a row of correct predictions and a row of wrong
    ones, most confident first, each panel the heat map over its image with the predicted class and
    its score; an empty group says "none".

    Args:
        images: uint8 ``(n, H, W, C)`` as the store holds them (RGB or gray).
        heatmaps: ``(n, H, W)`` in [0, 1] (:func:`leukobench.learn.saliency.grad_cam`).
        labels, predicted: ``(n,)`` true and predicted classes.
        scores: ``(n,)`` the score of class 1 (a sigmoid head) or ``(n, k)`` the class scores;
            the confidence shown and sorted by is the score of the predicted class.
        class_names: one name per class.
        path: the PNG to write.
        per_group: panels per row (the most confident of each group).
        title: the figure's title.
    """
    names = [str(name) for name in class_names]
    k = len(names)
    rows, confidence = sheet_panels(labels, predicted, scores, k, per_group)
    pictures, heat = np.asarray(images), np.asarray(heatmaps)
    n = len(confidence)
    if len(pictures) != n or len(heat) != n:
        raise ValueError(f"images ({len(pictures)}), heatmaps ({len(heat)}) and labels ({n}) must have one entry per image")
    guess = np.asarray(predicted)
    panel = 1.55  # inches per panel
    with drawing():
        fig = matplotlib.figure.Figure(figsize=(panel * per_group + 1.9, panel * 2 * k + 0.9), dpi=DPI)
        axes = fig.subplots(2 * k, per_group, squeeze=False)
        for c, name in enumerate(names):
            for r, (correct, verdict) in enumerate(((True, "correct"), (False, "wrong"))):
                row, members = axes[2 * c + r], rows[2 * c + r]
                for ax in row:
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.spines[:].set_visible(False)
                    ax.set_box_aspect(pictures.shape[1] / pictures.shape[2])  # empty panels as tall as images
                row[0].set_ylabel(f"true {name}\n{verdict}", fontsize=10)
                if members.size == 0:
                    row[0].text(0.5, 0.5, "none", ha="center", va="center", fontsize=11, color=NEUTRAL,
                                transform=row[0].transAxes)
                for ax, i in zip(row, members):
                    ax.imshow(overlay(pictures[i], heat[i]), interpolation="nearest")
                    ax.set_title(f"{names[int(guess[i])]} {confidence[i]:.2f}", fontsize=9,
                                 color="black" if correct else OKABE_ITO[1])
        scale = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, 1), cmap=HEAT_COLORMAP)
        colorbar = fig.colorbar(scale, ax=axes.ravel().tolist(), fraction=0.04, pad=0.03, shrink=min(1.0, 4 / k))
        colorbar.set_label("Grad-CAM (share of the image's peak)")
        fig.suptitle(f"{title}\npanel: predicted class and its score, most confident first", fontsize=11)
        save_png(fig, path)


def draw_saliency_sheet(panels_path: str | os.PathLike, sheet_path: str | os.PathLike) -> None:
    """The sheet of the panels a ``saliency`` job wrote (:func:`leukobench.learn.saliency.saliency_of_trial`)."""
    with np.load(panels_path, allow_pickle=False) as panels:
        plot_saliency_sheet(panels["images"], panels["heatmaps"], panels["labels"], panels["predicted"], panels["scores"],
                            panels["class_names"].tolist(), sheet_path, title=str(panels["title"]))


def draw_saliency_sheets(panels_folder: str | os.PathLike, sheets_folder: str | os.PathLike) -> list[str]:
    """Every sheet of a folder of panels (``<name>.npz``, :func:`leukobench.learn.saliency.saliency_of_chosen_trials`)
    as ``<name>.png`` in ``sheets_folder``, which appears only complete; return the names drawn."""
    names = sorted(path.stem for path in Path(panels_folder).glob("*.npz"))
    with atomic_folder(sheets_folder) as folder:
        for name in names:
            draw_saliency_sheet(Path(panels_folder) / f"{name}.npz", folder / f"{name}.png")
    return names
