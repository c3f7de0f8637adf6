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
from concurrent.futures import Executor, Future

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# One below zlib's default (6, which libpng and TensorFlow use): on 28x28
# Fashion-MNIST images the PNGs come out 0.1% larger (516.1 vs 515.7 bytes on
# average) for 10% less CPU; on ring-shaped strokes 0.4% larger for 23% less.
COMPRESSION_LEVEL = 5
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


def _encode_slice(lines: np.ndarray, prefix: bytes, level: int) -> list[bytes]:
    return [
        prefix + _chunk(b"IDAT", zlib.compress(scan.tobytes(), level)) + _IEND
        for scan in lines
    ]


def _checked_lines(images: np.ndarray) -> tuple[np.ndarray, bytes]:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"expected (N, H, W) uint8 images, got {images.shape} {images.dtype}"
        )
    return _scanlines(images), _png_prefix(*images.shape[1:])


def submit_gray_pngs(
    images: np.ndarray, executor: Executor, *, level: int = COMPRESSION_LEVEL
) -> list[Future]:
    """Starts encoding images as `encode_gray_pngs` does, on `executor`'s threads.

    Returns futures of consecutive lists of PNGs, in order: the caller can
    queue the next images before these are done, so the threads never idle.
    """
    lines, prefix = _checked_lines(images)
    return [executor.submit(_encode_slice, lines[i : i + _SLICE], prefix, level)
            for i in range(0, len(lines), _SLICE)]


def encode_gray_pngs(
    images: np.ndarray,
    *,
    level: int = COMPRESSION_LEVEL,
    executor: Executor | None = None,
) -> list[bytes]:
    """Encodes an (N, H, W) or (N, H, W, 1) uint8 array as N grayscale PNG files.

    With an `executor`, images are compressed on its threads (zlib releases
    the GIL while it compresses).
    """
    if executor is not None:
        return [png for part in submit_gray_pngs(images, executor, level=level)
                for png in part.result()]
    lines, prefix = _checked_lines(images)
    return _encode_slice(lines, prefix, level)


def _own_streams(
    flat: np.ndarray, starts: np.ndarray, sizes: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finds the PNGs laid out as `encode_gray_pngs` writes height x width images.

    `flat` is a uint8 buffer holding N PNGs, the i-th at `starts[i]` with
    `sizes[i]` bytes. Returns `(own, stream_starts, stream_ends)`: an (N,)
    mask of the PNGs whose chunks are laid out as this module writes them,
    and where each one's zlib stream (its IDAT's data) lies in `flat`. The
    layout is checked on all PNGs at once with numpy; the CRC, the stream and
    the filter bytes are checked as each PNG is inflated.
    """
    prefix = np.frombuffer(_png_prefix(height, width), dtype=np.uint8)
    tail = np.frombuffer(_IEND, dtype=np.uint8)
    head = len(prefix) + 8  # the IDAT's length and type follow the prefix
    stream_sizes = sizes - head - 4 - len(tail)  # then the IDAT's CRC and IEND
    candidates = np.flatnonzero(stream_sizes > 0)
    first = flat[starts[candidates, None] + np.arange(head)]
    last = flat[(starts + sizes)[candidates, None] - len(tail) + np.arange(len(tail))]
    length_bytes = first[:, len(prefix) : len(prefix) + 4].astype(np.int64)
    declared = length_bytes @ (1 << np.arange(24, -1, -8))  # big-endian
    laid_out = (
        (first[:, : len(prefix)] == prefix).all(axis=1)
        & (first[:, len(prefix) + 4 :] == np.frombuffer(b"IDAT", dtype=np.uint8)).all(axis=1)
        & (declared == stream_sizes[candidates])
        & (last == tail).all(axis=1)
    )
    own = np.zeros(len(starts), dtype=bool)
    own[candidates[laid_out]] = True
    stream_starts = starts + head
    return own, stream_starts, stream_starts + stream_sizes


def _inflate(view: memoryview, start: int, end: int, size: int) -> bytes | None:
    """The `size` bytes of the zlib stream `view[start:end]`, an IDAT's data, whose
    CRC follows it; None if the CRC, the stream or its size is wrong."""
    if zlib.crc32(view[start - 4 : end]) != int.from_bytes(view[end : end + 4], "big"):
        return None
    try:
        data = zlib.decompress(view[start:end])
    except zlib.error:
        return None
    return data if len(data) == size else None


def own_pixels_at(
    buffer: bytes, starts: np.ndarray, sizes: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes the PNGs that lie in `buffer` at `starts`, of `sizes` bytes, laid out
    as `encode_gray_pngs` writes height x width images.

    Returns `(pixels, own)`: an (N, height, width) uint8 array and an (N,)
    mask of the PNGs decoded here. A PNG that is not exactly in that layout
    (another encoder's chunks or filters, a corrupt stream or CRC) is left out
    of the mask with zero pixels, for a full PNG decoder to handle.

    After `_own_streams`, what is left per image is one `zlib.decompress`
    call; the filter bytes are checked on all images at once. Callers that
    want several cores decode blocks of images on threads of their own
    (zlib lets go of the GIL while it inflates), as `split_decoder` does.
    """
    own, stream_starts, stream_ends = _own_streams(
        np.frombuffer(buffer, dtype=np.uint8), starts, sizes, height, width)
    rows = np.flatnonzero(own)
    view = memoryview(buffer)
    line_bytes = height * (width + 1)
    inflated = [_inflate(view, start, end, line_bytes) for start, end in
                zip(stream_starts[rows].tolist(), stream_ends[rows].tolist(), strict=True)]
    own[rows] = [data is not None for data in inflated]
    lines = np.frombuffer(b"".join(d for d in inflated if d is not None), dtype=np.uint8)
    lines = lines.reshape(-1, height, width + 1)
    unfiltered = ~lines[:, :, 0].any(axis=1)  # filter type 0 on every row
    own[np.flatnonzero(own)[~unfiltered]] = False
    pixels = np.zeros((len(starts), height, width), dtype=np.uint8)
    pixels[own] = lines[unfiltered, :, 1:]
    return pixels, own
