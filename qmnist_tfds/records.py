"""Parses many serialized `tf.train.Example` records at once with numpy.

The inverse of `shards.ScalarExampleSerializer`: records holding one value per
feature, an integer (`int64_list`) or a byte string (`bytes_list`), are walked
field by field for all records together, so parsing costs a few numpy
operations per field rather than a protobuf object per record.

A record is parsed here only if it is laid out exactly as that serializer
writes it (and as protobuf's deterministic serialization does): every feature
once, in sorted key order, packed integers, no other field. Every tag, key and
length is checked, and each field must end where its enclosing message says,
so a record that parses here gives the values any protobuf parser gives. Any
other record, valid or not, is reported as not parsed, for a full parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

_MAX_VARINT = 10  # bytes of the longest varint (a 64-bit value)
_SHIFTS = np.arange(0, 7 * _MAX_VARINT, 7, dtype=np.uint64)
# A length beyond any record, so that sums of lengths cannot overflow int64.
_LENGTH_CAP = 1 << 48


class _Cursor:
    """One read position per record, moved forward field by field.

    `ok` marks the records still laid out as expected. A record that stops
    matching keeps being read from its own start, so positions stay within
    the buffer; its values are then meaningless and it is reported as not
    parsed.
    """

    def __init__(self, records: Sequence[bytes]):
        sizes = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
        self.ends = np.cumsum(sizes)
        self.starts = self.ends - sizes
        # Padding: a varint or a key is read as a fixed-size window.
        self.blob = b"".join(records) + bytes(_MAX_VARINT + 0x80)
        self.flat = np.frombuffer(self.blob, dtype=np.uint8)
        self.pos = self.starts.copy()
        self.ok = np.ones(len(records), dtype=bool)

    def _keep_in_record(self, ends: np.ndarray) -> None:
        self.ok &= self.pos <= ends
        self.pos = np.where(self.ok, self.pos, self.starts)

    def expect(self, data: bytes) -> None:
        """Consumes `data`, which every record must hold at its position."""
        window = self.flat[self.pos[:, None] + np.arange(len(data))]
        self.ok &= (window == np.frombuffer(data, dtype=np.uint8)).all(axis=1)
        self.pos = self.pos + len(data)
        self._keep_in_record(self.ends)

    def varint(self) -> np.ndarray:
        """Consumes one base-128 varint per record; returns them as uint64.

        Byte by byte, each step on the records whose varint goes on: the
        varints here are mostly one or two bytes long.
        """
        byte = self.flat[self.pos]
        values = (byte & 0x7F).astype(np.uint64)
        sizes = np.ones(len(values), dtype=np.int64)
        going = np.flatnonzero(byte >= 0x80)
        for shift in _SHIFTS[1:]:
            if not going.size:
                break
            byte = self.flat[self.pos[going] + sizes[going]]
            values[going] |= (byte & 0x7F).astype(np.uint64) << shift
            sizes[going] += 1
            going = going[byte >= 0x80]
        self.ok[going] = False  # longer than any varint
        self.pos = self.pos + sizes
        self._keep_in_record(self.ends)
        return values

    def length(self) -> np.ndarray:
        """Consumes a length prefix; returns where the field it prefixes ends."""
        size = np.minimum(self.varint(), _LENGTH_CAP).astype(np.int64)
        return self.pos + size

    def require(self, condition: np.ndarray) -> None:
        """Marks the records where `condition` is false as not laid out as expected."""
        self.ok &= condition
        self.pos = np.where(self.ok, self.pos, self.starts)

    def at(self, ends: np.ndarray) -> None:
        """Requires every record to be exactly at `ends`."""
        self.require(self.pos == ends)


@dataclasses.dataclass(frozen=True)
class ParsedExamples:
    """Records parsed by `parse_scalar_examples`.

    `blob` holds the records one after the other; `ints` maps each integer
    feature to an int64 array, one value per record; `spans` maps each string
    feature to the `(starts, ends)` int64 arrays of its value in `blob`.
    `parsed` marks the records parsed here: the entries of the others are
    zeros (empty spans).
    """

    blob: bytes
    ints: dict[str, np.ndarray]
    spans: dict[str, tuple[np.ndarray, np.ndarray]]
    parsed: np.ndarray


def parse_scalar_examples(records: Sequence[bytes], kinds: Mapping[str, str]) -> ParsedExamples:
    """Parses records holding one value per feature.

    `kinds` maps each feature name to `"int64_list"` or `"bytes_list"`.
    """
    cursor = _Cursor(records)
    cursor.expect(b"\x0a")  # Example.features (1)
    cursor.require(cursor.length() == cursor.ends)  # it fills the record
    ints: dict[str, np.ndarray] = {}
    spans: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in sorted(kinds):
        key = name.encode()
        if len(key) > 0x7F:
            raise ValueError(f"feature name {name!r} is too long")
        cursor.expect(b"\x0a")  # Features.feature (1): a map entry
        entry_end = cursor.length()
        cursor.expect(bytes([0x0A, len(key)]) + key)  # the entry's key (1)
        cursor.expect(b"\x12")  # the entry's value (2): a Feature
        cursor.require(cursor.length() == entry_end)
        if kinds[name] == "int64_list":
            cursor.expect(b"\x1a")  # Feature.int64_list (3)
            cursor.require(cursor.length() == entry_end)
            cursor.expect(b"\x0a")  # Int64List.value (1), packed
            cursor.require(cursor.length() == entry_end)
            ints[name] = cursor.varint().view(np.int64)
        elif kinds[name] == "bytes_list":
            cursor.expect(b"\x0a")  # Feature.bytes_list (1)
            cursor.require(cursor.length() == entry_end)
            cursor.expect(b"\x0a")  # BytesList.value (1)
            value_end = cursor.length()
            spans[name] = (cursor.pos, value_end)
            cursor.pos = np.minimum(value_end, cursor.ends)
        else:
            raise ValueError(f"feature {name!r}: unknown kind {kinds[name]!r}")
        cursor.at(entry_end)
    cursor.at(cursor.ends)
    failed = ~cursor.ok
    for values in ints.values():
        values[failed] = 0
    for starts, ends in spans.values():
        starts[failed] = ends[failed] = 0
    return ParsedExamples(cursor.blob, ints, spans, cursor.ok)
