"""The `tf.train.Example` layout of scalar features, written and parsed with numpy.

`ScalarExampleSerializer` writes, and `parse_scalar_examples` reads, many
records at once, a few numpy operations per field rather than a protobuf
object per record. The one layout both use, as protobuf's deterministic
serialization writes it: an `Example` holds one `Features` message, whose map
has an entry per feature, in sorted key order; an entry holds the key and a
`Feature`, which holds one list of one value, an integer (`int64_list`,
packed) or a byte string (`bytes_list`). Each field is a tag byte (field
number and wire type) and, all being length-delimited, a varint length.

A record is parsed here only if it is laid out exactly so. Every tag, key and
length is checked, and each field must end where its enclosing message says,
so a record that parses here gives the values any protobuf parser gives. Any
other record, valid or not, is reported as not parsed, for a full parser.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

# The tags of the layout, outermost first.
EXAMPLE_FEATURES = b"\x0a"  # Example.features (1)
FEATURES_ENTRY = b"\x0a"  # Features.feature (1): a map entry
ENTRY_KEY = b"\x0a"  # the entry's key (1)
ENTRY_VALUE = b"\x12"  # the entry's value (2): a Feature
# Per kind of Feature: the list's tag in it, and the tag of the list's values.
LIST_TAGS = {
    "int64_list": (b"\x1a", b"\x0a"),  # Feature.int64_list (3), Int64List.value (1)
    "bytes_list": (b"\x0a", b"\x0a"),  # Feature.bytes_list (1), BytesList.value (1)
}


def feature_kinds(features: tfds.features.FeaturesDict) -> dict[str, str]:
    """Each serialized feature's kind of list, `"int64_list"` or `"bytes_list"`.

    Raises ValueError for a feature that is not a scalar of a kind written here.
    """
    kinds: dict[str, str] = {}
    for name, info in features.get_serialized_info().items():
        if not isinstance(info, tfds.features.TensorInfo) or info.shape != ():
            raise ValueError(f"feature {name!r} is not a scalar: {info}")
        dtype = np.dtype(info.np_dtype)
        if dtype == np.bool_ or (np.issubdtype(dtype, np.integer) and dtype != np.uint64):
            kinds[name] = "int64_list"
        elif np.issubdtype(dtype, np.character) or dtype == np.object_:
            kinds[name] = "bytes_list"
        else:
            raise ValueError(f"feature {name!r} has unsupported dtype {dtype}")
    return kinds


def _as_uint64(values) -> np.ndarray:
    """Integers as uint64: an int64 below zero as its two's complement, as protobuf
    writes a negative int64."""
    values = np.asarray(values)
    return values.view(np.uint64) if values.dtype == np.int64 else values.astype(np.uint64)


def _varint_sizes(values) -> np.ndarray:
    """Bytes of protobuf's base-128 varint of each value."""
    values = _as_uint64(values)
    sizes = np.ones(len(values), dtype=np.int64)
    top = int(values.max(initial=0))
    for bits in range(7, top.bit_length(), 7):
        sizes += values >> np.uint64(bits) != 0
    return sizes


def _varints(values) -> tuple[np.ndarray, np.ndarray]:
    """Each value's varint, as an (N, width) uint8 array padded at the end, and its size."""
    values = _as_uint64(values)
    sizes = _varint_sizes(values)
    width = int(sizes.max(initial=1))
    block = np.empty((len(values), width), dtype=np.uint8)
    for i in range(width):
        group = (values >> np.uint64(7 * i) & np.uint64(0x7F)).astype(np.uint8)
        block[:, i] = group | (i < sizes - 1).astype(np.uint8) << 7  # continuation bit
    return block, sizes


def _as_bytes(value) -> bytes:
    """A string feature's encoded value (bytes, str, or a numpy scalar of either) as bytes."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.item()
    return value.encode() if isinstance(value, str) else bytes(value)


class _Rows:
    """Pieces of bytes laid side by side for N rows, each piece of a per-row size."""

    def __init__(self, count: int):
        self.count = count
        self.blocks: list[np.ndarray] = []  # (N, width) uint8
        self.sizes: list[np.ndarray] = []  # (N,) bytes used of each row's block

    def constant(self, data: bytes) -> None:
        block = np.frombuffer(data, dtype=np.uint8)
        self.blocks.append(np.broadcast_to(block, (self.count, len(block))))
        self.sizes.append(np.full(self.count, len(block)))

    def varint(self, values: np.ndarray) -> None:
        block, sizes = _varints(values)
        self.blocks.append(block)
        self.sizes.append(sizes)

    def length_delimited(self, tag: bytes, payload_sizes: np.ndarray) -> np.ndarray:
        """Writes a field's tag and its payload's size; returns the field's whole size."""
        self.constant(tag)
        self.varint(payload_sizes)
        return 1 + _varint_sizes(payload_sizes) + payload_sizes

    def slices(self) -> list[bytes]:
        """Each row's pieces, in order, as one bytes object per row."""
        if not self.blocks:
            return [b""] * self.count
        blocks = np.concatenate(self.blocks, axis=1)
        used = np.concatenate([np.arange(b.shape[1]) < s[:, None]
                               for b, s in zip(self.blocks, self.sizes, strict=True)], axis=1)
        data = blocks[used].tobytes()  # row-major: each row's used bytes, in order
        ends = np.cumsum(sum(self.sizes)).tolist()
        return [data[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


class ScalarExampleSerializer:
    """Serializes columns of scalar feature values into `tf.train.Example` bytes.

    The records parse to what TFDS's `ExampleSerializer` writes for the same
    encoded values (int64_list for integers up to int64, bytes_list for
    strings, one value each); features of other kinds are refused. It does no
    encoding or range checks of its own: values must already be what
    `FeaturesDict.encode_example` would return.

    The records of a chunk are assembled at once with numpy, in the layout
    described at the top of this module; the same values give the same bytes
    in every process (the tests compare them with protobuf's deterministic
    serialization). TFDS's writer writes the map's entries in an order that
    varies from process to process.
    """

    def __init__(self, features: tfds.features.FeaturesDict):
        self._fields = feature_kinds(features)

    def serialize(self, columns: Mapping[str, Sequence]) -> list[bytes]:
        """Returns one serialized example per row of `columns` (name -> values)."""
        if set(columns) != set(self._fields):
            raise ValueError(
                f"columns {sorted(columns)} do not match the features {sorted(self._fields)}"
            )
        lengths = {len(values) for values in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        count = lengths.pop()
        # A record is runs of bytes built here (tags, sizes, integers), each
        # run followed by one bytes feature's values, which are copied once.
        runs = [_Rows(count)]
        payloads: list[Sequence[bytes]] = []
        features_size = np.zeros(count, dtype=np.int64)
        for name in sorted(self._fields):
            key = name.encode()
            if len(key) > 0x7F:
                raise ValueError(f"feature name {name!r} is too long")
            key_field = ENTRY_KEY + bytes([len(key)]) + key
            kind = self._fields[name]
            list_tag, value_tag = LIST_TAGS[kind]
            if kind == "int64_list":
                values = np.asarray(columns[name], dtype=np.int64)
                value_sizes = _varint_sizes(values)  # packed: one varint
            else:
                values = [v if type(v) is bytes else _as_bytes(v) for v in columns[name]]
                value_sizes = np.fromiter(map(len, values), dtype=np.int64, count=count)
            value_list = 1 + _varint_sizes(value_sizes) + value_sizes
            feature = 1 + _varint_sizes(value_list) + value_list
            entry = len(key_field) + 1 + _varint_sizes(feature) + feature
            features_size += 1 + _varint_sizes(entry) + entry
            run = runs[-1]
            run.length_delimited(FEATURES_ENTRY, entry)
            run.constant(key_field)
            run.length_delimited(ENTRY_VALUE, feature)
            run.length_delimited(list_tag, value_list)
            run.length_delimited(value_tag, value_sizes)
            if kind == "int64_list":
                run.varint(values)
            else:
                payloads.append(values)
                runs.append(_Rows(count))
        head = _Rows(count)
        head.length_delimited(EXAMPLE_FEATURES, features_size)
        head.blocks += runs[0].blocks
        head.sizes += runs[0].sizes
        runs[0] = head
        parts = [runs[0].slices()]
        for values, run in zip(payloads, runs[1:], strict=True):
            parts += [values, run.slices()]
        return list(map(b"".join, zip(*parts, strict=True)))


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
    cursor.expect(EXAMPLE_FEATURES)
    cursor.require(cursor.length() == cursor.ends)  # it fills the record
    ints: dict[str, np.ndarray] = {}
    spans: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in sorted(kinds):
        key = name.encode()
        if len(key) > 0x7F:
            raise ValueError(f"feature name {name!r} is too long")
        if kinds[name] not in LIST_TAGS:
            raise ValueError(f"feature {name!r}: unknown kind {kinds[name]!r}")
        list_tag, value_tag = LIST_TAGS[kinds[name]]
        cursor.expect(FEATURES_ENTRY)
        entry_end = cursor.length()
        cursor.expect(ENTRY_KEY + bytes([len(key)]) + key)
        cursor.expect(ENTRY_VALUE)
        cursor.require(cursor.length() == entry_end)
        cursor.expect(list_tag)
        cursor.require(cursor.length() == entry_end)
        cursor.expect(value_tag)
        value_end = cursor.length()
        if kinds[name] == "int64_list":
            cursor.require(value_end == entry_end)
            ints[name] = cursor.varint().view(np.int64)
        else:
            spans[name] = (cursor.pos, value_end)
            cursor.pos = np.minimum(value_end, cursor.ends)
        cursor.at(entry_end)
    cursor.at(cursor.ends)
    failed = ~cursor.ok
    for values in ints.values():
        values[failed] = 0
    for starts, ends in spans.values():
        starts[failed] = ends[failed] = 0
    return ParsedExamples(cursor.blob, ints, spans, cursor.ok)
