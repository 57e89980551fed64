"""Seeded image augmentation with OpenCV that means what Keras' ``ImageDataGenerator`` means.

Varol et al. made their "Dataset3" with ``ImageDataGenerator(rotation_range=30, shear_range=0.2,
brightness_range=[0.1, 1.0])``; Abed used random flips and brightness/contrast. This module does
the same transforms with OpenCV and numpy, without Keras, seeded per image so that a store is the
same on every run and with any number of threads.

What Keras 3.15.1 does (``keras/src/legacy/preprocessing/image.py``), and what is done here:

- ``get_random_transform`` draws ``theta ~ U(-rotation_range, rotation_range)`` and
  ``shear ~ U(-shear_range, shear_range)``; ``apply_affine_transform`` turns **both** into radians
  with ``np.deg2rad``. So ``shear_range`` is an angle in **degrees**: Varol's ``shear_range=0.2``
  shears by at most 0.2 degrees, which moves a pixel of a 450 px cell by less than 1 px. It is kept
  here as it is in Keras (degrees), so a preset that copies a paper's value gets the paper's
  (weak) augmentation.
- The affine map goes from output to input pixel: ``input = R(theta) @ S(shear) @ output`` in
  (x = column, y = row) coordinates about the image centre, with
  ``R = [[cos, -sin], [sin, cos]]`` and ``S = [[1, -sin(shear)], [0, cos(shear)]]``; scipy's
  ``affine_transform`` with ``order=1`` (bilinear) and ``mode=fill_mode`` (default ``"nearest"``)
  samples it. Here ``cv2.warpAffine(..., INTER_LINEAR | WARP_INVERSE_MAP)`` samples the same map
  (a positive angle turns the picture counter-clockwise: +90 degrees is ``np.rot90(image, 1)``).
  The two agree to well under one grey level on average (OpenCV rounds to uint8 and weighs with
  1/32 px steps); with ``"constant"`` they differ in a one-pixel band along the rotated edge only:
  scipy zeroes a pixel whose source lies outside the input by any amount, OpenCV blends it with 0.
  Keras puts the centre at ``((h - 1) / 2, (w - 1) / 2)`` with rows and columns swapped, which is
  the true centre only for square images; here the true centre is used (the same for square
  images, which is all a store holds).
- Flips: ``np.random.random() < 0.5`` each, applied after the affine map.
- Brightness: ``factor ~ U(low, high)``, applied last through PIL
  ``ImageEnhance.Brightness(img).enhance(factor)`` (``apply_brightness_shift(x, factor,
  scale=False)``), which is ``blend(black, img, factor)``: each value times ``factor`` in float32,
  truncated to an integer and clipped to 0..255. ``brightness_range=[0.1, 1.0]`` only darkens.
- Contrast (not in Keras; Abed's): PIL ``ImageEnhance.Contrast``: the grey mean ``m`` of the image
  (ITU-R 601 luma of RGB, rounded), then ``m + factor * (value - m)``, truncated and clipped.
  Images are taken as RGB (the store's order) for the luma.

Fill modes: ``"nearest"`` (Keras' default; ``cv2.BORDER_REPLICATE``), ``"constant"`` (black; the
right choice for C-NMC cells, which are segmented on black) and ``"reflect"``
(``cv2.BORDER_REFLECT``, scipy's ``"reflect"``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields

import cv2
import numpy as np

FILL_MODES = {"nearest": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT}
MAX_ROTATION = 180.0
MAX_SHEAR = 90.0  # degrees; cos(90) = 0 would collapse the image
# Stream tags of the seed sequences: [seed, _ORDER] orders the sources, [seed, _IMAGE, i] draws image i.
_ORDER, _IMAGE = 0, 1
_CV_MAX_CHANNELS = 4


def _number(name: str, value, low: float, high: float, high_open: bool = False) -> float:
    allowed = f"a number in [{low:g}, {high:g}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"augmentation {name}={value!r} is not allowed; expected {allowed}")
    if not (low <= value <= high) or (high_open and value >= high):
        raise ValueError(f"augmentation {name}={value!r} is out of range; expected {allowed}")
    return float(value)


def _factor_range(name: str, value) -> tuple[float, float] | None:
    allowed = "null or two numbers [low, high] with 0 <= low <= high"
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"augmentation {name}={value!r} is not allowed; expected {allowed}")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0 for v in value):
        raise ValueError(f"augmentation {name}={list(value)!r} is not allowed; expected {allowed}")
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise ValueError(f"augmentation {name}={list(value)!r} has low > high; expected {allowed}")
    return (low, high)


def _flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"augmentation {name}={value!r} is not allowed; expected true or false")
    return bool(value)


@dataclass(frozen=True)
class Transform:
    """One drawn transform, as Keras' ``get_random_transform`` returns it (angles in degrees)."""

    theta: float = 0.0
    shear: float = 0.0
    flip_horizontal: bool = False
    flip_vertical: bool = False
    brightness: float | None = None
    contrast: float | None = None


@dataclass(frozen=True)
class Augmentation:
    """The random transforms of Keras' ``ImageDataGenerator`` (plus contrast), with its units.

    Attributes:
        rotation_range: degrees; the angle is uniform in [-rotation_range, rotation_range].
        shear_range: degrees, as Keras 3 (``shear = U(-shear_range, shear_range)``, then
            ``np.deg2rad``); ``0.2`` is a shear of at most 0.2 degrees.
        brightness_range: ``(low, high)`` factor range, PIL ``ImageEnhance.Brightness`` (multiply,
            clip); ``None`` for none.
        contrast_range: ``(low, high)`` factor range, PIL ``ImageEnhance.Contrast`` (scale
            deviations from the grey mean); ``None`` for none.
        horizontal_flip, vertical_flip: flip with probability 0.5 each.
        fill_mode: the pixels the rotation brings in: ``"nearest"`` (Keras' default),
            ``"constant"`` (black) or ``"reflect"``.
    """

    rotation_range: float = 0.0
    shear_range: float = 0.0
    brightness_range: tuple[float, float] | None = None
    contrast_range: tuple[float, float] | None = None
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: str = "nearest"

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("rotation_range", _number("rotation_range", self.rotation_range, 0.0, MAX_ROTATION))
        set_("shear_range", _number("shear_range", self.shear_range, 0.0, MAX_SHEAR, high_open=True))
        set_("brightness_range", _factor_range("brightness_range", self.brightness_range))
        set_("contrast_range", _factor_range("contrast_range", self.contrast_range))
        set_("horizontal_flip", _flag("horizontal_flip", self.horizontal_flip))
        set_("vertical_flip", _flag("vertical_flip", self.vertical_flip))
        if self.fill_mode not in FILL_MODES:
            raise ValueError(f"augmentation fill_mode={self.fill_mode!r} is not allowed; "
                             f"allowed: {', '.join(FILL_MODES)}")

    @classmethod
    def from_config(cls, options: Mapping | None) -> Augmentation:
        """From a config mapping with the field names as keys (missing keys keep their defaults)."""
        if options is None:
            return cls()
        if not isinstance(options, Mapping):
            raise ValueError(f"augmentation options must be a mapping, got {type(options).__name__}: {options!r}")
        allowed = [f.name for f in fields(cls)]
        unknown = [key for key in options if key not in allowed]
        if unknown:
            raise ValueError(f"unknown augmentation option(s) {', '.join(map(repr, unknown))}; "
                             f"allowed: {', '.join(allowed)}")
        return cls(**options)

    def to_config(self) -> dict:
        """The options as plain JSON/YAML values (``from_config(a.to_config()) == a``)."""
        config = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("brightness_range", "contrast_range"):
            if config[key] is not None:
                config[key] = list(config[key])
        return config

    @property
    def is_identity(self) -> bool:
        """True when every draw leaves an image unchanged."""
        return (self.rotation_range == 0 and self.shear_range == 0 and not self.horizontal_flip
                and not self.vertical_flip and self.brightness_range in (None, (1.0, 1.0))
                and self.contrast_range in (None, (1.0, 1.0)))

    def draw(self, rng: np.random.Generator) -> Transform:
        """One random transform. Always six draws, so enabling one transform never changes another's."""
        u = rng.random(6)
        uniform = lambda low, high, v: low + (high - low) * v  # noqa: E731
        return Transform(
            theta=uniform(-self.rotation_range, self.rotation_range, u[0]) if self.rotation_range else 0.0,
            shear=uniform(-self.shear_range, self.shear_range, u[1]) if self.shear_range else 0.0,
            flip_horizontal=bool(self.horizontal_flip and u[2] < 0.5),
            flip_vertical=bool(self.vertical_flip and u[3] < 0.5),
            brightness=None if self.brightness_range is None else uniform(*self.brightness_range, u[4]),
            contrast=None if self.contrast_range is None else uniform(*self.contrast_range, u[5]),
        )


def affine_matrix(theta: float, shear: float, height: int, width: int) -> np.ndarray:
    """The 2x3 output-to-input map (x = column, y = row) of Keras' rotation and shear about the centre.

    Use with ``cv2.warpAffine(..., flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)``.
    """
    t, s = math.radians(theta), math.radians(shear)
    cos_t, sin_t = math.cos(t), math.sin(t)
    # rotation [[cos_t, -sin_t], [sin_t, cos_t]] times shear [[1, -sin_s], [0, cos_s]]
    a, b = cos_t, -cos_t * math.sin(s) - sin_t * math.cos(s)
    c, d = sin_t, -sin_t * math.sin(s) + cos_t * math.cos(s)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    return np.array([[a, b, cx - a * cx - b * cy], [c, d, cy - c * cx - d * cy]])


def _warp(image: np.ndarray, matrix: np.ndarray, fill_mode: str) -> np.ndarray:
    h, w, c = image.shape
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    border = FILL_MODES[fill_mode]
    if c <= _CV_MAX_CHANNELS:
        out = cv2.warpAffine(image, matrix, (w, h), flags=flags, borderMode=border, borderValue=0)
        return out.reshape(h, w, c)
    return np.stack([cv2.warpAffine(np.ascontiguousarray(image[:, :, k]), matrix, (w, h), flags=flags,
                                    borderMode=border, borderValue=0) for k in range(c)], axis=2)


def _blend(image: np.ndarray, base: float, factor: float) -> np.ndarray:
    """PIL's ``Image.blend(constant base, image, factor)``: float32, truncated, clipped to 0..255.

    A per-value map, so it is computed once for the 256 values and applied as a lookup table.
    """
    values = np.arange(256, dtype=np.float32)
    table = np.clip(np.float32(base) + np.float32(factor) * (values - np.float32(base)), 0, 255).astype(np.uint8)
    return cv2.LUT(np.ascontiguousarray(image), table).reshape(image.shape)


def grey_mean(image: np.ndarray) -> int:
    """PIL's ``ImageEnhance.Contrast`` mean: luma of RGB (integer ITU-R 601, as ``convert("L")``), rounded."""
    if image.shape[2] >= 3:
        rgb = image[:, :, :3].astype(np.uint32)
        luma = (rgb[:, :, 0] * 19595 + rgb[:, :, 1] * 38470 + rgb[:, :, 2] * 7471 + 0x8000) >> 16
    else:
        luma = image[:, :, 0]
    return int(float(luma.mean()) + 0.5)


def apply_transform(image: np.ndarray, transform: Transform, fill_mode: str = "nearest") -> np.ndarray:
    """Apply one drawn transform in Keras' order: rotation + shear, flips, brightness; then contrast."""
    _check_image(image)
    if fill_mode not in FILL_MODES:
        raise ValueError(f"fill_mode={fill_mode!r} is not allowed; allowed: {', '.join(FILL_MODES)}")
    out = image if image.ndim == 3 else image[:, :, None]
    if transform.theta or transform.shear:
        out = _warp(np.ascontiguousarray(out), affine_matrix(transform.theta, transform.shear, *out.shape[:2]),
                    fill_mode)
    if transform.flip_horizontal:
        out = out[:, ::-1]
    if transform.flip_vertical:
        out = out[::-1]
    if transform.brightness is not None and transform.brightness != 1.0:
        out = _blend(out, 0.0, transform.brightness)
    if transform.contrast is not None and transform.contrast != 1.0:
        out = _blend(out, grey_mean(out), transform.contrast)
    out = out.reshape(image.shape)
    return np.array(out, copy=True) if np.shares_memory(out, image) else np.ascontiguousarray(out)


def _check_image(image) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3) or 0 in image.shape:
        what = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise ValueError(f"augment expects a non-empty uint8 image of shape HxW or HxWxC, got a {what}")


def augment_image(image: np.ndarray, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """One random draw of every transform of ``aug`` applied to a uint8 HxWxC (or HxW) image.

    Returns a new array of the same shape and dtype; ``Augmentation()`` returns an unchanged copy.
    """
    _check_image(image)
    return apply_transform(image, aug.draw(rng), aug.fill_mode)


def source_order(n_sources: int, count: int, seed: int) -> np.ndarray:
    """Positions 0..n_sources-1 for ``count`` outputs: seeded permutations back to back.

    Every source is used ``count // n`` or ``count // n + 1`` times.
    """
    rng = np.random.default_rng([seed, _ORDER])
    cycles = -(-count // n_sources) if count else 0
    if not cycles:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([rng.permutation(n_sources) for _ in range(cycles)])[:count].astype(np.int64)


def augment_many(images: np.ndarray, aug: Augmentation, seed: int, count: int,
                 sources: np.ndarray | None = None, *, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``count`` augmented images made from the batch ``images`` (n, H, W, C) uint8.

    Args:
        images: the originals, (n, H, W, C) (or (n, H, W)) uint8.
        aug: the transforms.
        seed: a non-negative integer; the same seed gives the same output, whatever ``threads``.
        count: how many images to make.
        sources: indices into ``images`` that may be augmented (e.g. the training split only);
            all of them when ``None``. They are cycled through in a seeded random order, so each is
            used ``count // len(sources)`` or one more times.
        threads: worker threads (OpenCV releases the GIL). Output ``i`` draws from its own
            generator ``np.random.default_rng([seed, 1, i])``, so scheduling changes nothing.

    Returns:
        ``(augmented, origin)``: the (count, H, W, C) uint8 images and, for each, the index in
        ``images`` of the original it was made from.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim not in (3, 4):
        what = f"{images.dtype} array of shape {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"augment_many expects a uint8 batch (n, H, W, C), got a {what}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"augment_many seed={seed!r} is not allowed; expected a non-negative integer")
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
        raise ValueError(f"augment_many count={count!r} is not allowed; expected a non-negative integer")
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ValueError(f"augment_many threads={threads!r} is not allowed; expected a positive integer")
    n = len(images)
    if sources is None:
        sources = np.arange(n)
    sources = np.asarray(sources)
    if sources.ndim != 1 or sources.size == 0 or not np.issubdtype(sources.dtype, np.integer):
        raise ValueError(f"augment_many sources must be a non-empty 1-D array of integer indices, got {sources!r}")
    if sources.min() < 0 or sources.max() >= n:
        raise ValueError(f"augment_many sources must index the {n} images (0..{n - 1}); "
                         f"got values from {sources.min()} to {sources.max()}")
    origin = sources[source_order(len(sources), int(count), int(seed))].astype(np.int64)
    out = np.empty((int(count), *images.shape[1:]), dtype=np.uint8)

    def work(chunk: np.ndarray) -> None:
        for i in chunk:
            out[i] = augment_image(images[origin[i]], aug, np.random.default_rng([int(seed), _IMAGE, int(i)]))

    chunks = np.array_split(np.arange(int(count)), max(1, min(int(threads) * 4, int(count))))
    if threads == 1 or count < 2:
        for chunk in chunks:
            work(chunk)
    else:
        with ThreadPoolExecutor(max_workers=int(threads)) as pool:
            list(pool.map(work, chunks))
    return out, origin
