"""Image files: read, judged and decoded the one way ingest, the stores and ``leukobench predict``
share (:func:`open_image`), with the one rule for every sample type and channel count
(:func:`to_8bit`) and the pixel limit read from a file's header (:func:`image_size`); and
:func:`thread_map`, the threads that read them.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import cv2
import numpy as np
import tifffile
import xxhash
from PIL import Image

IMAGE_SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
THREAD_CHUNK = 16  # images per task handed to a thread (see thread_map)
DEFAULT_MAX_PIXELS = 50_000_000  # ingest.max_pixels: see open_image
# Pillow only reads headers here (image_size); the pixel limit is max_pixels, checked by us. Pillow's
# own guard (a warning above 89 Mpx, an error above 179 Mpx) would hide the size of such a file.
Image.MAX_IMAGE_PIXELS = None


_READ_BUFFERS = threading.local()


@contextmanager
def file_bytes(path: str | os.PathLike) -> Iterator[memoryview]:
    """A file's bytes, read into a buffer that each thread reuses: valid inside the ``with`` only.

    A fresh 600 kB ``bytes`` per file (``Path.read_bytes``) costs more than hashing and decoding
    it together, because the allocator hands its pages back and faults them in again each time;
    the reused buffer keeps its pages. (A memory map would not copy, but a file truncated while
    it is mapped kills the process with SIGBUS instead of giving a short read.)
    """
    with open(path, "rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        buffer = getattr(_READ_BUFFERS, "buffer", None)
        if buffer is None or len(buffer) < size:
            buffer = _READ_BUFFERS.buffer = bytearray(size)
        with memoryview(buffer) as whole:
            read = 0
            while read < size:  # one read gives a regular file whole; some file systems give less
                got = handle.readinto(whole[read:size])
                if not got:  # the file shrank since fstat
                    break
                read += got
            with whole[:read] as data:
                yield data


def decode_image(data: bytes | memoryview) -> np.ndarray | None:
    """Decode image bytes with OpenCV, as it gives them (any sample type, 1 to 4 channels); None
    when OpenCV cannot read them (or refuses to). :func:`open_image` adds the checks and the rule
    that make an image of any type what the store prepares."""
    if not len(data):
        return None
    try:
        return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. a header declaring an image too large to allocate
        return None


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # little / big endian, classic / BigTIFF


def _bmp_size(head: bytes) -> tuple[int, int]:
    if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sides
        return struct.unpack("<HH", head[18:22])
    width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)  # a negative height: rows stored top-down


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """``(width, height)`` read from the file's header without decoding its pixels; None when the
    header is not one read here (OpenCV's decode then decides). PNG and BMP sizes sit at fixed
    offsets of their first bytes, read here for speed (Pillow's parsing adds a fifth to the
    decoding time of a 450 x 450 BMP cell, this 7 %); TIFF's first directory is read by tifffile
    (Pillow has no mode for 16-bit, signed or float RGB, common in microscopy); other formats by
    Pillow, which reads the header only.
    Raises OSError when the file cannot be opened.
    """
    with open(path, "rb") as handle:
        try:
            head = handle.read(32)
            if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":  # IHDR is the first chunk
                return struct.unpack(">II", head[16:24])
            if head[:2] == b"BM" and len(head) >= 26:
                return _bmp_size(head)
            handle.seek(0)
            if head[:4] in TIFF_SIGNATURES:
                with tifffile.TiffFile(handle) as tiff:
                    page = tiff.pages.first
                    return page.imagewidth, page.imagelength
            with Image.open(handle) as image:
                return image.size
        except Exception:  # not an image, truncated, a format Pillow lacks: OpenCV decides
            return None


def _megapixels(pixels: int) -> str:
    megapixels = pixels / 1e6
    return f"{megapixels:,.0f}" if megapixels >= 1000 else f"{megapixels:.4g}"


def pixel_limit_problem(width: int, height: int, max_pixels: int | None) -> str:
    """Why an image of this size is refused; empty when it is within ``max_pixels`` (None: no limit)."""
    if max_pixels is None or width * height <= max_pixels:
        return ""
    return (f"image is {width} x {height} px = {_megapixels(width * height)} Mpx, above the limit of "
            f"{_megapixels(max_pixels)} Mpx (ingest.max_pixels); crop it or raise the limit")


def to_8bit(image: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The one rule from a decoded image (any sample type, 1 to 4 channels) to what the store
    prepares: ``(image, "")`` with the image uint8, 2-D (gray) or 3 channels in OpenCV's BGR
    order, or ``(None, why it is refused)``.

    Channels: gray and BGR as they are; BGRA and gray + alpha lose the alpha channel (the colours
    as stored, not composited on a background); any other count is refused.
    Sample types, judged on the colour channels (the same mapping for every image of a type, so
    no image is brightened or darkened by its own content):

    * uint8: as it is.
    * uint16: times 255/65535, rounded (the type's full range; a 12-bit camera's 0..4095 stays dark).
    * other integer types (int8, int16, int32, uint32, int64): values within [0, 255] as they are
      (8-bit values stored in a wider type); any value outside is refused, naming the type and the
      range: no fixed range fits such data, and stretching each image to its own min and max would
      change brightness from image to image.
    * float16/32/64: values within [0, 1] times 255, rounded; NaN, infinity or any value outside
      [0, 1] is refused.
    """
    channels = 1 if image.ndim == 2 else image.shape[2] if image.ndim == 3 else 0
    if channels not in (1, 2, 3, 4):
        return None, f"{channels or image.ndim} channels: convert to gray, RGB or RGBA images"
    if channels == 1 and image.ndim == 3:
        image = image[:, :, 0]
    elif channels == 2:  # gray + alpha: the gray
        image = np.ascontiguousarray(image[:, :, 0])
    elif channels == 4:  # BGRA: BGR
        supported = image.dtype in (np.uint8, np.uint16, np.float32)
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR) if supported else np.ascontiguousarray(image[:, :, :3])
    dtype = image.dtype
    if dtype == np.uint8:
        return image, ""
    if dtype == np.uint16:
        return cv2.convertScaleAbs(image, alpha=255 / 65535), ""
    if dtype.kind in "iu":
        low, high = int(image.min()), int(image.max())
        if low < 0 or high > 255:
            return None, (f"sample type {dtype.name} with values outside [0, 255] (min {low}, max {high}): "
                          "convert to 8- or 16-bit unsigned integer images")
        return image.astype(np.uint8), ""
    if dtype.kind == "f":
        if not np.isfinite(image).all():
            return None, f"sample type {dtype.name} with NaN or infinite values: convert to 8- or 16-bit integer images"
        low, high = float(image.min()), float(image.max())
        if low < 0 or high > 1:
            return None, (f"sample type {dtype.name} with values outside [0, 1] (min {low:g}, max {high:g}): "
                          "convert to 8- or 16-bit integer images")
        samples = image.astype(np.float32) if dtype.itemsize < 4 else image
        return np.rint(samples * 255).astype(np.uint8), ""
    return None, f"sample type {dtype.name}: convert to 8- or 16-bit integer images"


def open_image(
    path: str | os.PathLike, with_hash: bool = False, max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> tuple[np.ndarray | None, str, str]:
    """Read, check and decode one file: the one way ingest, the store and predict judge and decode images.

    Returns ``(image, problem, content_hash)``: the image as the store prepares it (uint8, 2-D
    gray or BGR in OpenCV's order: :func:`to_8bit` is the rule for every sample type and channel
    count) and an empty problem, or None and why the file cannot be used (missing, unreadable,
    empty, not decodable, above ``max_pixels``, a sample type or channel count the rule refuses).

    ``max_pixels`` (None: no limit): the size is read from the header first (:func:`image_size`),
    so an image above the limit is refused without decoding it (a 20,000 x 20,000 PNG takes
    1.2 GB decoded); a file whose header only OpenCV reads is checked once decoded. The default,
    50 Mpx, is far above any microscope image (a C-NMC cell is 0.2 Mpx, an ALL-IDB1 field 5 Mpx,
    a full camera frame 20 to 25 Mpx), and an image at the limit decodes to 150 MB as 8-bit BGR
    (400 MB as 16-bit BGRA), so a few decoding threads stay within ingest's memory.

    ``content_hash`` (with ``with_hash``) is XXH3-128 of the bytes: it only has to find
    byte-identical copies, so not SHA-256 (0.02 ms for a 600 kB BMP against 0.34 ms); an
    accidental collision among n files has a chance of about n^2 / 2^129. It is empty for a file
    refused by its header's size.
    """
    try:
        size = image_size(path) if max_pixels is not None else None
        if size is not None and (too_large := pixel_limit_problem(*size, max_pixels)):
            return None, too_large, ""
        with file_bytes(path) as data:
            content_hash = xxhash.xxh3_128_hexdigest(data) if with_hash else ""
            if not len(data):
                return None, "empty file (0 bytes)", content_hash
            image = decode_image(data)
    except FileNotFoundError:
        return None, "no such file or folder", ""
    except OSError as error:
        return None, f"unreadable: {error.strerror or error}", ""
    if image is None or image.size == 0:
        return None, "not a decodable image (truncated, corrupt or not an image)", content_hash
    problem = pixel_limit_problem(image.shape[1], image.shape[0], max_pixels)
    if problem:
        return None, problem, content_hash
    image, problem = to_8bit(image)
    return image, problem, content_hash


def thread_map(fn: Callable[[Any], Any], items: Iterable[Any], threads: int) -> list[Any]:
    """``[fn(item) for item in items]`` on ``threads`` threads; the results keep the items' order.

    For work that releases the GIL (file reads, xxhash, OpenCV). The items go to the threads in
    chunks of consecutive items, so the pool's own cost per task, paid while holding the GIL, is
    paid once per chunk rather than once per image. An exception is raised as the loop would
    raise it: the first failing item's, in order.
    """
    items = list(items)
    threads = max(1, int(threads))
    if threads == 1 or len(items) < 2:
        return [fn(item) for item in items]
    size = max(1, min(THREAD_CHUNK, len(items) // (4 * threads)))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return [result for chunk in pool.map(lambda part: [fn(item) for item in part], chunks) for result in chunk]
