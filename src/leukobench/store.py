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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from leukobench.io import atomic_path
from leukobench.readers import decode_image

STORE_COLUMNS = [
    "image_id", "label", "class_name", "patient_id", "split", "source",
    "height", "width", "channels", "pixels",
]
METADATA_KEY = b"leukobench"
COLOR_MODES = {"rgb": 3, "gray": 1}
BALANCE_MODES = ("none", "undersample")


@dataclass(frozen=True)
class Preparation:
    """How raw images become model inputs; saved with the store and with every model."""

    size: int
    color: str = "rgb"
    balance: str = "undersample"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"image size must be at least 8 px, got {self.size}")
        if self.color not in COLOR_MODES:
            raise ValueError(f"colour mode '{self.color}' unknown; allowed: {', '.join(COLOR_MODES)}")
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance '{self.balance}' unknown; allowed: {', '.join(BALANCE_MODES)}")

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
    """One decoded image (as OpenCV gives it: BGR, BGRA, gray, 8 or 16 bit) to a uint8 HWC array."""
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / max(1, np.iinfo(image.dtype).max))
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if prep.color == "rgb":
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    interpolation = cv2.INTER_AREA if max(image.shape[:2]) > prep.size else cv2.INTER_LINEAR
    resized = cv2.resize(image, (prep.size, prep.size), interpolation=interpolation)
    return resized.reshape(prep.size, prep.size, prep.channels)


def load_image(path: str | os.PathLike, prep: Preparation) -> np.ndarray:
    """Read one file and prepare it exactly as the store does."""
    image = decode_image(Path(path).read_bytes())
    if image is None:
        raise ValueError(f"{path}: not a decodable image")
    return to_model_input(image, prep)


def balance(rows: pd.DataFrame, prep: Preparation) -> pd.DataFrame:
    """Undersample each split to its smallest class (seeded); 'none' keeps every row."""
    if prep.balance == "none":
        return rows
    rng = np.random.default_rng(prep.seed)
    kept = []
    for _, part in rows.groupby("split", sort=True):
        smallest = part["label"].value_counts().min()
        for _, cls in part.groupby("label", sort=True):
            kept.append(cls.iloc[np.sort(rng.choice(len(cls), size=smallest, replace=False))])
    return pd.concat(kept).sort_values("image_id").reset_index(drop=True)


def build_store(manifest: pd.DataFrame, splits: pd.DataFrame, prep: Preparation, out_path: str | os.PathLike,
                threads: int = 1, provenance: dict | None = None) -> pd.DataFrame:
    """Balance, decode, resize and write one store; returns the table written (without pixels).

    Args:
        manifest: the reader's manifest (needs ``image_id``, ``path``, ``class_name``).
        splits: ``image_id``, ``split`` (and ``label``, ``patient_id``) from :func:`assign_splits`.
        prep: size, colour mode, balancing.
        out_path: the Parquet file; written aside and moved into place when complete.
        threads: images decoded in parallel (OpenCV releases the GIL).
        provenance: extra metadata to record (e.g. the dataset name).
    """
    rows = splits.merge(manifest[["image_id", "path", "class_name"]], on="image_id", how="inner", validate="one_to_one")
    if len(rows) != len(splits):
        raise ValueError(f"{len(splits) - len(rows)} image(s) of the split are missing from the manifest")
    rows = balance(rows, prep)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        images = list(pool.map(lambda p: load_image(p, prep), rows["path"]))
    class_names = (
        manifest[["label", "class_name"]].drop_duplicates().sort_values("label")["class_name"].tolist()
    )
    table = pd.DataFrame({
        "image_id": rows["image_id"], "label": rows["label"].astype("int16"), "class_name": rows["class_name"],
        "patient_id": rows["patient_id"].astype(str), "split": rows["split"], "source": rows["path"],
        "height": np.int16(prep.size), "width": np.int16(prep.size), "channels": np.int16(prep.channels),
    })
    arrow = pa.Table.from_pandas(table, preserve_index=False).append_column(
        "pixels", pa.array([image.tobytes() for image in images], type=pa.binary()))
    metadata = {"preparation": prep.__dict__, "class_names": class_names, **(provenance or {})}
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), METADATA_KEY: json.dumps(metadata).encode()})
    with atomic_path(out_path) as tmp:
        pq.write_table(arrow, tmp)
    return table


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
