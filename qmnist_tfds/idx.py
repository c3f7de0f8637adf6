"""Reading and writing IDX files, the array format of MNIST and QMNIST.

An IDX file is a 4-byte magic number (two zero bytes, a data type code, the
number of dimensions), one big-endian uint32 per dimension, then the values in
row-major order, big-endian. QMNIST ships them gzip- or xz-compressed; the
compression is recognised from the file's first bytes, never from its name
(TFDS keeps the `.gz` suffix on files it has already extracted).

Every defect raises `IdxFormatError` with the file's path in the message.
Payloads are read in bounded pieces, so a header that claims more data than
the file holds fails on the missing bytes instead of allocating the claim.
"""

from __future__ import annotations

import dataclasses
import gzip
import itertools
import lzma
import math
import os
import zlib
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np

# Data type codes of the IDX format (third byte of the magic number).
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_MAX_DIMS = 8
_READ_PIECE_BYTES = 16 << 20
_MAX_ROW_BYTES = 1 << 30  # one row (an image, a label row) larger than this is no IDX we read

_GZIP_MAGIC = b"\x1f\x8b"
_XZ_MAGIC = b"\xfd7zXZ\x00"

# The two layouts QMNIST uses.
IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions: count x 28 x 28
IMAGE_SHAPE = (28, 28)
EXTENDED_LABELS_MAGIC = 0x00000C02  # int32, 2 dimensions: count x 8
EXTENDED_LABEL_COLUMNS = 8

PathLike = str | os.PathLike


class IdxFormatError(ValueError):
    """A file is not the IDX file it should be (the message names file and defect)."""


@dataclasses.dataclass(frozen=True)
class IdxHeader:
    """What an IDX header declares: element type and array shape."""

    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def magic(self) -> int:
        return int.from_bytes(header_bytes(self.dtype, self.shape)[:4], "big")

    @property
    def count(self) -> int:
        return self.shape[0]

    @property
    def row_bytes(self) -> int:
        return self.dtype.itemsize * math.prod(self.shape[1:])


def _open_decompressed(path: PathLike) -> BinaryIO:
    """Opens `path` for reading, decompressing gzip or xz as its first bytes say."""
    raw = open(path, "rb")  # noqa: SIM115 (returned to the caller, who closes it)
    head = raw.read(len(_XZ_MAGIC))
    raw.seek(0)
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(_XZ_MAGIC):
        return lzma.LZMAFile(raw, mode="rb")
    return raw


class IdxReader:
    """Streams the rows of one IDX file, checking its structure as it goes.

    Use as a context manager. The header is read and checked on opening; rows
    are read with `read_rows`; `check_end` confirms that the file ends exactly
    after the declared payload.
    """

    def __init__(
        self,
        path: PathLike,
        *,
        magic: int | None = None,
        row_shape: tuple[int, ...] | None = None,
    ):
        self.path = os.fspath(path)
        self._stream = _open_decompressed(self.path)
        self._rows_read = 0
        try:
            self.header = self._read_header()
            self._check_layout(magic, row_shape)
        except BaseException:
            self._stream.close()
            raise

    def __enter__(self) -> IdxReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._stream.close()

    def _error(self, defect: str) -> IdxFormatError:
        return IdxFormatError(f"{self.path}: {defect}")

    def _read(self, size: int) -> bytes:
        """Reads up to `size` decompressed bytes, in bounded pieces."""
        pieces = []
        remaining = size
        try:
            while remaining > 0:
                piece = self._stream.read(min(remaining, _READ_PIECE_BYTES))
                if not piece:
                    break
                pieces.append(piece)
                remaining -= len(piece)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:
            # gzip.BadGzipFile is an OSError; a stream cut short is an EOFError.
            raise self._error(f"corrupt or truncated compressed data ({e})") from e
        return b"".join(pieces)

    def _read_header(self) -> IdxHeader:
        magic = self._read(4)
        if len(magic) < 4:
            raise self._error(
                f"file too short for an IDX header ({len(magic)} bytes)"
            )
        if magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
            raise self._error(
                f"bad magic number 0x{magic.hex().upper()}: not an IDX file"
            )
        ndim = magic[3]
        if not 1 <= ndim <= _MAX_DIMS:
            raise self._error(f"bad magic number 0x{magic.hex().upper()}: "
                              f"{ndim} dimensions")
        dims = self._read(4 * ndim)
        if len(dims) < 4 * ndim:
            raise self._error(f"header truncated: {ndim} dimensions declared, "
                              f"{len(dims) // 4} present")
        shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
        header = IdxHeader(dtype=_DTYPES[magic[2]], shape=shape)
        # numpy cannot even describe shapes whose non-zero extents overflow.
        extent = math.prod(max(d, 1) for d in shape) * header.dtype.itemsize
        if header.row_bytes > _MAX_ROW_BYTES or extent >= 2**62:
            raise self._error(
                f"dimensions {_shape_str(shape)} are implausibly large (rows of "
                f"{header.row_bytes} bytes; at most {_MAX_ROW_BYTES} are accepted)"
            )
        return header

    def _check_layout(
        self, magic: int | None, row_shape: tuple[int, ...] | None
    ) -> None:
        if magic is not None and self.header.magic != magic:
            raise self._error(
                f"magic number 0x{self.header.magic:08X}, expected 0x{magic:08X}"
            )
        if row_shape is not None and self.header.shape[1:] != tuple(row_shape):
            raise self._error(
                f"dimensions {_shape_str(self.header.shape)}, expected "
                f"{_shape_str(('N', *row_shape))}"
            )

    @property
    def rows_left(self) -> int:
        return self.header.count - self._rows_read

    def read_rows(self, count: int) -> np.ndarray:
        """Returns the next `count` rows as a native-byte-order array."""
        count = min(count, self.rows_left)
        wanted = count * self.header.row_bytes
        data = self._read(wanted)
        if len(data) < wanted:
            got_rows = self._rows_read + len(data) // max(self.header.row_bytes, 1)
            raise self._error(
                f"payload truncated: header declares {self.header.count} rows, "
                f"the data ends after {got_rows}"
            )
        self._rows_read += count
        array = np.frombuffer(data, dtype=self.header.dtype)
        array = array.reshape((count, *self.header.shape[1:]))
        return array.astype(self.header.dtype.newbyteorder("="), copy=False)

    def skip_rows(self, count: int) -> None:
        """Advances past `count` rows without keeping them."""
        while count > 0:
            step = min(count, _READ_PIECE_BYTES // max(self.header.row_bytes, 1))
            self.read_rows(step)
            count -= step

    def iter_chunks(self, rows_per_chunk: int) -> Iterator[np.ndarray]:
        """Yields the remaining rows in arrays of at most `rows_per_chunk` rows."""
        if self.header.row_bytes == 0:  # empty rows: no reason to loop over billions of them
            rows_per_chunk = max(self.rows_left, 1)
        while self.rows_left > 0:
            yield self.read_rows(rows_per_chunk)

    def check_end(self) -> None:
        """Raises unless every row was read and nothing follows the payload."""
        if self.rows_left:
            raise self._error(f"{self.rows_left} rows left unread")
        extra = self._read(_READ_PIECE_BYTES)
        if extra:
            more = " or more" if len(extra) == _READ_PIECE_BYTES else ""
            raise self._error(
                f"{len(extra)}{more} trailing bytes after the "
                f"{self.header.count} rows the header declares"
            )


def _shape_str(shape: tuple) -> str:
    return "x".join(str(d) for d in shape)


def read_idx(
    path: PathLike,
    *,
    magic: int | None = None,
    row_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Reads a whole IDX file into a native-byte-order array, checking its structure."""
    with IdxReader(path, magic=magic, row_shape=row_shape) as reader:
        array = reader.read_rows(reader.header.count)
        reader.check_end()
    return array


def read_extended_labels(path: PathLike) -> np.ndarray:
    """Reads a QMNIST `idx2-int` extended-label file as an (N, 8) int32 array."""
    return read_idx(
        path, magic=EXTENDED_LABELS_MAGIC, row_shape=(EXTENDED_LABEL_COLUMNS,)
    )


def open_images(path: PathLike) -> IdxReader:
    """Opens a QMNIST `idx3-ubyte` image file (N x 28 x 28 uint8) for streaming."""
    return IdxReader(path, magic=IMAGES_MAGIC, row_shape=IMAGE_SHAPE)


def _big_endian(dtype: np.dtype) -> np.dtype:
    dtype = np.dtype(dtype).newbyteorder(">")
    if dtype not in _DTYPES.values():
        raise ValueError(f"IDX has no type code for dtype {dtype}")
    return dtype


def header_bytes(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The IDX header of an array of `dtype` and `shape`."""
    code = next(c for c, d in _DTYPES.items() if d == _big_endian(dtype))
    if not 1 <= len(shape) <= _MAX_DIMS:
        raise ValueError(f"IDX cannot hold {len(shape)} dimensions")
    return bytes([0, 0, code, len(shape)]) + np.asarray(shape, dtype=">u4").tobytes()


def encode_idx(array: np.ndarray) -> bytes:
    """Returns the uncompressed IDX encoding of `array`."""
    array = np.asarray(array)
    payload = np.ascontiguousarray(array, dtype=_big_endian(array.dtype)).tobytes()
    return header_bytes(array.dtype, array.shape) + payload


def _open_for_writing(path: str) -> BinaryIO:
    if path.endswith(".gz"):
        # mtime=0 keeps the bytes, and so any checksum of them, reproducible.
        return gzip.GzipFile(path, "wb", mtime=0)
    if path.endswith(".xz"):
        return lzma.LZMAFile(path, "wb", preset=1)
    return open(path, "wb")  # noqa: SIM115 (returned to the caller, who closes it)


def write_idx(
    path: PathLike,
    rows: np.ndarray | Iterable[np.ndarray],
    *,
    count: int | None = None,
) -> None:
    """Writes IDX, gzip- or xz-compressed when `path` ends in .gz or .xz.

    `rows` is one array, or an iterable of arrays of equal row shape and dtype
    that together hold `count` rows (written as they come, for large files).
    """
    chunks = iter([rows] if isinstance(rows, np.ndarray) else rows)
    first = np.asarray(next(chunks))
    count = len(first) if count is None else count
    dtype = _big_endian(first.dtype)
    written = 0
    with _open_for_writing(os.fspath(path)) as f:
        f.write(header_bytes(first.dtype, (count, *first.shape[1:])))
        for chunk in itertools.chain([first], chunks):
            f.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())
            written += len(chunk)
    if written != count:
        raise ValueError(f"{os.fspath(path)}: wrote {written} rows, header says {count}")
