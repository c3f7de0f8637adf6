"""A small, fast PNG encoder for batches of 8-bit grayscale images.

`tfds.features.Image` PNG-encodes each image through TensorFlow, which costs
most of a build's time for 28x28 digits. It also accepts already-encoded PNG
bytes and stores them untouched, without validating them. This module writes
such bytes with numpy and zlib: every image becomes one PNG with an IHDR, a
single IDAT holding all scanlines with filter type 0 (none), and an IEND.
"""

from __future__ import annotations

import functools
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COMPRESSION_LEVEL = 6  # zlib's default, as libpng and TensorFlow use
_SLICE = 512  # images per task handed to an executor


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data))
    )


@functools.cache
def _png_prefix(height: int, width: int) -> bytes:
    # Bit depth 8, color type 0 (grayscale), deflate, adaptive filtering, no interlace.
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr)


_IEND = _chunk(b"IEND", b"")


def _scanlines(images: np.ndarray) -> np.ndarray:
    """Prefixes every row of every image with filter byte 0: shape (N, H, W + 1)."""
    count, height, width = images.shape
    lines = np.zeros((count, height, width + 1), dtype=np.uint8)
    lines[:, :, 1:] = images
    return lines


def encode_gray_pngs(
    images: np.ndarray,
    *,
    level: int = COMPRESSION_LEVEL,
    executor: ThreadPoolExecutor | None = None,
) -> list[bytes]:
    """Encodes an (N, H, W) or (N, H, W, 1) uint8 array as N grayscale PNG files.

    With an `executor`, images are compressed on its threads (zlib releases
    the GIL while it compresses).
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"expected (N, H, W) uint8 images, got {images.shape} {images.dtype}"
        )
    prefix = _png_prefix(*images.shape[1:])

    def encode_slice(lines: np.ndarray) -> list[bytes]:
        return [
            prefix + _chunk(b"IDAT", zlib.compress(scan.tobytes(), level)) + _IEND
            for scan in lines
        ]

    lines = _scanlines(images)
    if executor is None:
        return encode_slice(lines)
    slices = [lines[i : i + _SLICE] for i in range(0, len(lines), _SLICE)]
    return [png for part in executor.map(encode_slice, slices) for png in part]


def own_scanlines(data: bytes, height: int, width: int) -> bytes | None:
    """The decompressed scanlines (filter byte first) of a PNG laid out as
    `encode_gray_pngs` writes a height x width image, or None for any other PNG."""
    prefix = _png_prefix(height, width)
    start = len(prefix)
    stream_end = len(data) - 4 - len(_IEND)  # the IDAT's CRC, then IEND
    if (
        not data.startswith(prefix)
        or data[start + 4 : start + 8] != b"IDAT"
        or int.from_bytes(data[start : start + 4], "big") != stream_end - start - 8
        or not data.endswith(_IEND)
    ):
        return None
    try:
        rows = zlib.decompress(data[start + 8 : stream_end])
    except zlib.error:
        return None
    return rows if len(rows) == height * (width + 1) else None
