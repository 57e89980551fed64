"""The Parquet image store: balanced, resized, uint8 pixels with their split and label.

One row per image with the columns of ``STORE_COLUMNS``; ``pixels`` holds the HWC uint8 bytes.
The file's key-value metadata (``leukobench``) holds the parameters that made the store and the
class names, so training and prediction read the same preprocessing from one place.
Loading a store into numpy reads the pixel column's data buffer in one piece: no Python loop
over images or pixels.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leukobench.io import METADATA_KEY, atomic_path
from leukobench.data.images import open_image, thread_map

STORE_COLUMNS = [
    "image_id", "label", "class_name", "patient_id", "split", "source", "augmented",
    "height", "width", "channels", "pixels",
]
COLOR_MODES = {"rgb": 3, "gray": 1}
BALANCE_MODES = ("none", "undersample", "oversample")
AUGMENT_SCOPES = ("train", "before_split")
NORMALIZATIONS = ("none", "mean_image", "per_channel")
INTERPOLATIONS = ("area", "linear", "nearest")


@dataclass(frozen=True)
class Preparation:
    """How raw images become model inputs; saved with the store and with every model.

    Attributes:
        size: side of the square images, in pixels.
        color: ``rgb`` or ``gray``.
        balance: ``none``; ``undersample`` (each class reduced, Varol's Dataset1/2);
            ``oversample`` (originals plus augmented copies, Varol's Dataset3).
        per_class: images per class over all splits (None: as many as the smallest class has).
        augmentation: options of :class:`leukobench.data.augment.Augmentation` for oversampling.
        augment_scope: ``train`` (augmented copies only in the training split, default) or
            ``before_split`` (the studies' protocol: augmented copies of any image may land in
            validation or test; leaky, and marked so in the store's metadata).
        normalization: ``none``, ``mean_image`` (subtract the training split's mean image, Abed)
            or ``per_channel`` (standardise each channel with the training split's statistics).
        seed: seed of sampling and augmentation.
        interpolation: how images are resized: ``area`` (averages every source pixel when
            shrinking, bilinear when enlarging; the default), ``linear`` (bilinear both ways, no
            anti-aliasing: OpenCV's and TensorFlow's default) or ``nearest`` (nearest neighbour,
            the pixels ``keras.utils.load_img(path, target_size=...)`` gives, the studies' loaders).
    """

    size: int
    color: str = "rgb"
    balance: str = "undersample"
    per_class: int | None = None
    augmentation: dict | None = None
    augment_scope: str = "train"
    normalization: str = "none"
    seed: int = 0
    interpolation: str = "area"

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"image size must be at least 8 px, got {self.size}")
        for name, value, allowed in (("color", self.color, COLOR_MODES), ("balance", self.balance, BALANCE_MODES),
                                     ("augment_scope", self.augment_scope, AUGMENT_SCOPES),
                                     ("normalization", self.normalization, NORMALIZATIONS),
                                     ("interpolation", self.interpolation, INTERPOLATIONS)):
            if value not in allowed:
                label = "colour mode" if name == "color" else name
                raise ValueError(f"{label} '{value}' unknown; allowed: {', '.join(allowed)}")
        if self.per_class is not None and self.per_class < 2:
            raise ValueError(f"per_class must be at least 2, got {self.per_class}")
        if self.balance == "oversample" and (self.per_class is None or not self.augmentation):
            raise ValueError("balance 'oversample' needs per_class (images per class) and augmentation options")

    @property
    def leaky(self) -> bool:
        """True when augmented copies may share a source with validation or test images."""
        return self.balance == "oversample" and self.augment_scope == "before_split"

    @property
    def channels(self) -> int:
        return COLOR_MODES[self.color]


@dataclass
class Store:
    """A store read into memory: the table without pixels, the images and the metadata."""

    frame: pd.DataFrame
    images: np.ndarray  # (n, size, size, channels) uint8
    metadata: dict

    @property
    def class_names(self) -> list[str]:
        return self.metadata["class_names"]

    def part(self, split: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """Images, labels and rows of one split."""
        mask = (self.frame["split"] == split).to_numpy()
        return self.images[mask], self.frame.loc[mask, "label"].to_numpy(), self.frame.loc[mask].reset_index(drop=True)


def to_model_input(image: np.ndarray, prep: Preparation) -> np.ndarray:
    """One image as :func:`leukobench.data.images.open_image` gives it (uint8; gray, 2-D or with one
    channel, or BGR) to a uint8 HWC array of ``prep.size`` and ``prep.color``.

    Sample types and alpha are the decoding layer's (:func:`leukobench.data.images.to_8bit`), so
    ingest, the store and predict share one rule; anything else is a ValueError here.
    Steps: (gray mode) BGR to gray, resize (``prep.interpolation``), (rgb mode) BGR to RGB or
    gray to RGB. The last step only reorders or copies channels, and the resize treats each
    channel alone, so doing it on the small image gives the same pixels as doing it first,
    without a pass over the full-size image.
    The BGR to gray conversion rounds, so it stays before the resize.
    """
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if image.dtype != np.uint8 or channels not in (1, 3):
        raise ValueError(f"to_model_input takes uint8 gray or BGR images (what open_image gives), got "
                         f"{image.dtype} with shape {image.shape}; decode with leukobench.data.images.open_image")
    if prep.color == "gray" and image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    resized = cv2.resize(image, (prep.size, prep.size), interpolation=_resize_flag(image, prep))  # (h, w, 1) comes back 2-D
    if prep.color == "rgb":
        resized = cv2.cvtColor(resized, cv2.COLOR_GRAY2RGB if resized.ndim == 2 else cv2.COLOR_BGR2RGB)
    return resized.reshape(prep.size, prep.size, prep.channels)


def _resize_flag(image: np.ndarray, prep: Preparation) -> int:
    if prep.interpolation == "nearest":
        return cv2.INTER_NEAREST_EXACT  # source pixel centres, as PIL picks them (INTER_NEAREST is half a pixel off)
    if prep.interpolation == "area" and max(image.shape[:2]) > prep.size:
        return cv2.INTER_AREA
    return cv2.INTER_LINEAR


def prepared_image(path: str | os.PathLike, prep: Preparation,
                   max_pixels: int | None = None) -> tuple[np.ndarray | None, str]:
    """One file prepared exactly as the store does, or None and why not (the reason alone, without
    the path): what the store and ``leukobench predict`` both do with a file."""
    image, problem, _ = open_image(path, max_pixels=max_pixels)
    if image is None:
        return None, problem
    try:
        return to_model_input(image, prep), ""
    except (ValueError, cv2.error) as error:
        return None, str(error)


def load_image(path: str | os.PathLike, prep: Preparation, max_pixels: int | None = None) -> np.ndarray:
    """Read one file and prepare it exactly as the store does; a ValueError names the file.

    ``max_pixels`` (see :func:`leukobench.data.images.open_image`) is off by default: files in a
    manifest passed ingest's limit; the workflow's store rule passes ingest's limit again (the
    header read costs about 10 us per PNG, BMP or TIFF file), in case a file changed since.
    """
    image, problem = prepared_image(path, prep, max_pixels)
    if image is None:
        raise ValueError(f"{path}: {problem}")
    return image


def _load_listed_image(path: str, prep: Preparation, max_pixels: int | None) -> np.ndarray:
    try:
        return load_image(path, prep, max_pixels)
    except ValueError as error:
        raise ValueError(f"{error} (the manifest lists it as a readable image: was it changed after ingest? "
                         "rerun ingest, e.g. snakemake --forcerun ingest)") from error


def split_targets(rows: pd.DataFrame, prep: Preparation) -> dict[str, int]:
    """Images per class wanted in each split.

    Without ``per_class``: the smallest class of the split. With it: ``per_class`` shared between
    the splits in proportion to their sizes, so the store holds ``per_class`` images per class.
    With ``oversample`` limited to the training split, validation and test keep balanced
    originals (their smallest class) and the training split gets the rest of ``per_class``:
    augmented copies cannot fill held-out splits without leaking their sources.
    """
    counts = rows.groupby(["split", "label"]).size().unstack(fill_value=0)
    if prep.per_class is None:
        return counts.min(axis=1).to_dict()
    if prep.balance == "oversample" and prep.augment_scope == "train":
        targets = counts.min(axis=1).to_dict()
        targets["train"] = prep.per_class - sum(n for split, n in targets.items() if split != "train")
        if targets["train"] < 1:
            raise ValueError(f"per_class {prep.per_class} is smaller than the validation and test images per class")
        return targets
    shares = counts.sum(axis=1) / counts.to_numpy().sum()
    targets = (shares * prep.per_class).round().astype(int)
    targets.iloc[-1] += prep.per_class - targets.sum()  # rounding never changes the total
    return targets.to_dict()


def _sample(part: pd.DataFrame, n: int, rng: np.random.Generator, what: str) -> pd.DataFrame:
    if n > len(part):
        raise ValueError(f"{what}: {n} images wanted but only {len(part)} available; lower per_class "
                         "or use balance: oversample")
    return part.iloc[np.sort(rng.choice(len(part), size=n, replace=False))]


def balance(rows: pd.DataFrame, prep: Preparation) -> pd.DataFrame:
    """Sample each split and class to its target (seeded). Oversampled training classes keep all
    originals (up to the target) and get a column ``copies``: how many augmented images to add.
    """
    rows = rows.assign(copies=0)
    if prep.balance == "none":
        return rows
    rng = np.random.default_rng(prep.seed)
    targets = split_targets(rows, prep)
    kept = []
    for (split, label), part in rows.groupby(["split", "label"], sort=True):
        target, what = targets[split], f"split {split}, class {label}"
        if prep.balance == "oversample" and (split == "train" or prep.augment_scope == "before_split"):
            chosen = _sample(part, min(target, len(part)), rng, what)
            extra = target - len(chosen)
            chosen = chosen.assign(copies=np.bincount(np.arange(extra) % len(chosen), minlength=len(chosen)))
            kept.append(chosen)
        else:
            kept.append(_sample(part, target, rng, what))
    return pd.concat(kept).sort_values("image_id").reset_index(drop=True)


def _augmented_rows(rows: pd.DataFrame, images: np.ndarray, prep: Preparation) -> tuple[pd.DataFrame, np.ndarray]:
    """Augmented copies of the rows that ask for them (``copies``), at the store's size."""
    from leukobench.data.augment import Augmentation, augment_many

    aug = Augmentation.from_config(prep.augmentation)
    parts, arrays = [], []
    for label, group in rows[rows["copies"] > 0].groupby("label", sort=True):
        positions = group.index.to_numpy()
        count = int(group["copies"].sum())
        made, source = augment_many(images[positions], aug, seed=prep.seed + int(label), count=count)
        origin = group.iloc[source]
        numbers = origin.groupby("image_id").cumcount().to_numpy()
        parts.append(origin.assign(
            image_id=[f"{i}#aug{k}" for i, k in zip(origin["image_id"], numbers)],
            source=origin["image_id"].to_numpy(), augmented=True))
        arrays.append(made)
    if not parts:
        return rows.iloc[:0].assign(source="", augmented=True), images[:0]
    return pd.concat(parts, ignore_index=True), np.concatenate(arrays)


def _leaky_resplit(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The studies' protocol: augmented copies are split at random like any image (leaks sources)."""
    rng = np.random.default_rng(seed)
    augmented = rows["augmented"].to_numpy()
    shares = rows.loc[~augmented, "split"].value_counts(normalize=True)
    rows.loc[augmented, "split"] = rng.choice(shares.index.to_numpy(), size=augmented.sum(), p=shares.to_numpy())
    return rows


def normalization_stats(images: np.ndarray, prep: Preparation) -> dict | None:
    """Statistics of the training images, in [0, 1] units, for the model's normalisation layer."""
    if prep.normalization == "none" or len(images) == 0:
        return None
    pixels = images.astype(np.float64) / 255
    if prep.normalization == "mean_image":
        return {"mean": pixels.mean(axis=0).tolist(), "variance": 1.0}
    axes = (0, 1, 2)
    return {"mean": pixels.mean(axis=axes).tolist(), "variance": pixels.var(axis=axes).tolist()}


def build_store(manifest: pd.DataFrame, splits: pd.DataFrame, prep: Preparation, out_path: str | os.PathLike,
                threads: int = 1, provenance: dict | None = None, max_pixels: int | None = None) -> Store:
    """Balance, decode, resize and write one store; returns what was written, as :func:`load_store` reads it.

    Args:
        manifest: the reader's manifest (needs ``image_id``, ``path``, ``class_name``).
        splits: ``image_id``, ``split`` (and ``label``, ``patient_id``) from :func:`assign_splits`.
        prep: size, colour mode, balancing.
        out_path: the Parquet file; written aside and moved into place when complete.
        threads: images decoded in parallel (OpenCV releases the GIL).
        provenance: extra metadata to record (e.g. the dataset name).
        max_pixels: the pixel limit of :func:`load_image` (None, the default: none; the files
            passed ingest's, which the workflow passes here too).

    A file that cannot be decoded any more (changed since ingest) stops the build with a
    ValueError naming it.
    """
    rows = splits.merge(manifest[["image_id", "path", "class_name"]], on="image_id", how="inner", validate="one_to_one")
    if len(rows) != len(splits):
        raise ValueError(f"{len(splits) - len(rows)} image(s) of the split are missing from the manifest")
    rows = balance(rows, prep)
    images = np.stack(thread_map(lambda p: _load_listed_image(p, prep, max_pixels), rows["path"], threads))
    rows = rows.assign(source=rows["path"], augmented=False)
    extra_rows, extra_images = _augmented_rows(rows, images, prep)
    rows, images = pd.concat([rows, extra_rows], ignore_index=True), np.concatenate([images, extra_images])
    if prep.leaky:
        rows = _leaky_resplit(rows, prep.seed)
    class_names = (
        manifest[["label", "class_name"]].drop_duplicates().sort_values("label")["class_name"].tolist()
    )
    table = pd.DataFrame({
        "image_id": rows["image_id"], "label": rows["label"].astype("int16"), "class_name": rows["class_name"],
        "patient_id": rows["patient_id"].astype(str), "split": rows["split"], "source": rows["source"],
        "augmented": rows["augmented"].astype(bool),
        "height": np.int16(prep.size), "width": np.int16(prep.size), "channels": np.int16(prep.channels),
    })
    arrow = pa.Table.from_pandas(table, preserve_index=False).append_column(
        "pixels", pa.array([image.tobytes() for image in images], type=pa.binary()))
    metadata = {
        "preparation": prep.__dict__, "class_names": class_names, "leaky": prep.leaky,
        "normalization": normalization_stats(images[(table["split"] == "train").to_numpy()], prep),
        "duplicate_images": int(manifest.loc[manifest["image_id"].isin(rows["image_id"]), "content_hash"].duplicated().sum())
        if "content_hash" in manifest else 0,
        **(provenance or {}),
    }
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()})
    with atomic_path(out_path) as tmp:
        pq.write_table(arrow, tmp)
    return Store(frame=table, images=images, metadata=metadata)


def read_metadata(path: str | os.PathLike) -> dict:
    """The parameters a store was made with."""
    return json.loads(pq.read_schema(path).metadata[METADATA_KEY])


def load_store(path: str | os.PathLike) -> Store:
    """Read a store; the images come from the pixel column's buffer in one reshape."""
    table = pq.read_table(path)
    metadata = json.loads(table.schema.metadata[METADATA_KEY])
    prep = Preparation(**metadata["preparation"])
    pixels = table.column("pixels").combine_chunks()
    n = len(pixels)
    image_bytes = prep.size * prep.size * prep.channels
    offsets = np.frombuffer(pixels.buffers()[1], dtype=np.int32, count=n + 1, offset=pixels.offset * 4)
    if n and not np.all(np.diff(offsets) == image_bytes):
        raise ValueError(f"{path}: pixel rows are not all {prep.size}x{prep.size}x{prep.channels}")
    data = np.frombuffer(pixels.buffers()[2], dtype=np.uint8, count=n * image_bytes, offset=int(offsets[0]) if n else 0)
    images = data.reshape(n, prep.size, prep.size, prep.channels)
    frame = table.drop_columns(["pixels"]).to_pandas()
    return Store(frame=frame, images=images, metadata=metadata)
