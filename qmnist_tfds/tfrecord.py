"""Reads the records of TFRecord files without TensorFlow, checking their CRCs.

A TFRecord file is a sequence of records, each framed as TensorFlow's
`RecordWriter` writes it: the data's length (uint64, little-endian), a masked
CRC-32C of those 8 bytes, the data, and a masked CRC-32C of the data (each
uint32, little-endian).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import google_crc32c
from etils import epath

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_MASK_DELTA = 0xA282EAD8


def masked_crc(data: bytes) -> int:
    """TensorFlow's masked CRC-32C of `data`."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_blocks(path: str | os.PathLike, start: int, stop: int,
                block: int) -> Iterator[list[bytes]]:
    """Records `start` to `stop` of the file at `path`, up to `block` at a time.

    Raises ValueError naming the file and the record where a frame is
    truncated or a CRC does not match, and where the file has fewer records.
    """
    records: list[bytes] = []
    with epath.Path(path).open("rb") as f:
        for index in range(stop):
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                raise ValueError(f"{path}: {index} records, expected at least {stop}"
                                 + (" (the last one truncated)" if header else ""))
            length, length_crc = _HEADER.unpack(header)
            if masked_crc(header[:8]) != length_crc:
                raise ValueError(f"{path}: record {index}: corrupt length (CRC mismatch)")
            if index < start:
                f.seek(length + _FOOTER.size, os.SEEK_CUR)
                continue
            data = f.read(length + _FOOTER.size)
            if len(data) < length + _FOOTER.size:
                raise ValueError(f"{path}: record {index}: truncated")
            record = data[:length]
            if masked_crc(record) != _FOOTER.unpack_from(data, length)[0]:
                raise ValueError(f"{path}: record {index}: corrupt data (CRC mismatch)")
            records.append(record)
            if len(records) == block:
                yield records
                records = []
    if records:
        yield records
