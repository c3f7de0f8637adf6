"""Writes a split to TFDS shards from columns of already-encoded feature values.

TFDS's generic writer sends every example through `FeaturesDict.encode_example`
and `ExampleSerializer`, one protobuf object each, and keeps every
serialized example in memory until the split ends. Here a chunk of examples
arrives as columns (PNG bytes, Python ints) and `ScalarExampleSerializer`
assembles the `tf.train.Example` wire format of the whole chunk with numpy
(no protobuf object per record), in a fixed order, so
that two builds of the same files write the same bytes. The records are
spooled to an unnamed temporary file beside the shards, then read back
sequentially (a memory map of it would count in the process's RSS). The spool
is cut into the shards TFDS would make (its `ShardConfig` rule and boundaries,
its file names) and written by the builder's own `ExampleWriter`, so a split
reads back exactly as one written by TFDS. Each split's shard digests are
written beside them; `python -m qmnist_tfds.verify FOLDER` checks them.

The TFDS objects it writes with come from the builder's private steps, through
`qmnist_tfds.tfds_internals`.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from qmnist_tfds import examples, idx, lazy_tf, tfds_internals

# Formats whose TFDS writer needs no per-record index file.
FILE_FORMATS = frozenset({tfds.core.FileFormat.TFRECORD, tfds.core.FileFormat.ARRAY_RECORD})

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

    def length_delimited(self, tag: int, payload_sizes: np.ndarray) -> np.ndarray:
        """Writes a field's tag and its payload's size; returns the field's whole size."""
        self.constant(bytes([tag]))
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

    The wire format is assembled for a whole chunk at once with numpy, with no
    protobuf object per record: an `Example` holds one `Features` message
    whose map has an entry per feature, a `Feature` with a packed
    `int64_list` or a `bytes_list`. Entries are written in sorted key order,
    as protobuf's deterministic serialization writes them (the tests compare
    bytes with it), so the same values give the same bytes in every process;
    TFDS's writer writes them in an order that varies from process to process.
    """

    def __init__(self, features: tfds.features.FeaturesDict):
        self._fields: dict[str, str] = {}
        for name, info in features.get_serialized_info().items():
            if not isinstance(info, tfds.features.TensorInfo) or info.shape != ():
                raise ValueError(f"feature {name!r} is not a scalar: {info}")
            dtype = np.dtype(info.np_dtype)
            if dtype == np.bool_ or (np.issubdtype(dtype, np.integer) and dtype != np.uint64):
                self._fields[name] = "int64_list"
            elif np.issubdtype(dtype, np.character) or dtype == np.object_:
                self._fields[name] = "bytes_list"
            else:
                raise ValueError(f"feature {name!r} has unsupported dtype {info.np_dtype}")

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
            key_field = bytes([0x0A, len(key)]) + key  # the map entry's key (1)
            if self._fields[name] == "int64_list":
                values = np.asarray(columns[name], dtype=np.int64)
                value_sizes = _varint_sizes(values)
                int64_list = 1 + 1 + value_sizes  # Int64List.value (1), packed: tag, size, varint
                feature = 1 + _varint_sizes(int64_list) + int64_list  # Feature.int64_list (3)
            else:
                values = [v if type(v) is bytes else _as_bytes(v) for v in columns[name]]
                value_sizes = np.fromiter(map(len, values), dtype=np.int64, count=count)
                byte_list = 1 + _varint_sizes(value_sizes) + value_sizes  # BytesList.value (1)
                feature = 1 + _varint_sizes(byte_list) + byte_list  # Feature.bytes_list (1)
            entry = len(key_field) + 1 + _varint_sizes(feature) + feature
            features_size += 1 + _varint_sizes(entry) + entry
            run = runs[-1]
            run.length_delimited(0x0A, entry)  # Features.feature (1): a map entry
            run.constant(key_field)
            run.length_delimited(0x12, feature)  # the entry's value (2)
            if self._fields[name] == "int64_list":
                run.length_delimited(0x1A, int64_list)  # Feature.int64_list (3)
                run.length_delimited(0x0A, value_sizes)  # Int64List.value (1), packed
                run.varint(values)
            else:
                run.length_delimited(0x0A, byte_list)  # Feature.bytes_list (1)
                run.length_delimited(0x0A, value_sizes)  # BytesList.value (1)
                payloads.append(values)
                runs.append(_Rows(count))
        head = _Rows(count)
        head.length_delimited(0x0A, features_size)  # Example.features (1)
        head.blocks += runs[0].blocks
        head.sizes += runs[0].sizes
        runs[0] = head
        parts = [runs[0].slices()]
        for values, run in zip(payloads, runs[1:], strict=True):
            parts += [values, run.slices()]
        return list(map(b"".join, zip(*parts, strict=True)))


DIGESTS_SUFFIX = ".sha256"


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with epath.Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_digests(folder) -> list[str]:
    """Checks the shards of a prepared dataset folder against the digests written with them.

    Returns one line per shard, `<file>: OK` or `<file>: FAILED` (or `MISSING`),
    as `sha256sum -c` prints them; raises FileNotFoundError if the folder
    holds no digest file (a build through TFDS's own writer writes none).
    """
    folder = epath.Path(folder)
    lists = sorted(folder.glob(f"*{DIGESTS_SUFFIX}"))
    if not lists:
        raise FileNotFoundError(f"no *{DIGESTS_SUFFIX} digest file in {folder}")
    report = []
    for listing in lists:
        for line in listing.read_text().splitlines():
            expected, name = line.split("  ", 1)
            shard = folder / name
            if not shard.exists():
                report.append(f"{name}: MISSING")
            else:
                report.append(f"{name}: {'OK' if _sha256(shard) == expected else 'FAILED'}")
    return report


def write_split(
    split_name: str,
    record_chunks: Iterable[list[bytes]],
    *,
    filename_template,
    example_writer,
    shard_config,
    copies: Sequence[tuple[Any, Any]] = (),
) -> tfds.core.SplitInfo:
    """Writes serialized examples, in order, as the shards of one split.

    `record_chunks` yields lists of serialized examples. The shards are written
    once the last record is in, so an error while producing the records leaves
    no shard. Their SHA-256 digests go beside them, in `sha256sum` format, in
    `<dataset>-<split>.sha256` (see `check_digests`). `filename_template`,
    `example_writer` and `shard_config` are the TFDS objects its own writer
    path uses (`tfds.core.ShardedFileTemplate`, `tfds.core.ExampleWriter`, and
    the `ShardConfig` of `DownloadConfig.get_shard_config()`). Each
    `(filename_template, example_writer)` of `copies` writes the same records,
    in the same shards, in another file format; their digests go into the same file.
    """
    # The spool goes beside the shards (as TFDS's own spill files do), not to a
    # possibly RAM-backed /tmp; only for remote data dirs does it use the temp dir.
    spool_dir = os.fspath(filename_template.data_dir)
    if "://" in spool_dir:
        spool_dir = None
    with tempfile.TemporaryFile(prefix=f"{split_name}-records-", dir=spool_dir) as spool:
        sizes = array.array("q")  # 8 bytes a record, not a Python int each
        with tfds_internals.progress(
            desc=f"Generating {split_name} examples...",
            unit=" examples",
            leave=False,
            mininterval=1.0,
        ) as progress:
            for records in record_chunks:
                spool.write(b"".join(records))
                sizes.extend(map(len, records))
                progress.update(len(records))
        if not sizes:
            raise ValueError(f"split {split_name!r}: no examples to write")
        total_size = sum(sizes)
        num_shards = shard_config.get_number_shards(total_size, len(sizes))
        boundaries = tfds_internals.shard_boundaries(len(sizes), num_shards)
        digests = []
        for template, writer in [(filename_template, example_writer), *copies]:
            spool.seek(0)
            first = 0
            for index, last in enumerate(boundaries):
                path = template.sharded_filepath(shard_index=index, num_shards=num_shards)
                records = ((row, spool.read(sizes[row])) for row in range(first, last))
                if writer.write(path, records) is not None:
                    raise NotImplementedError(
                        f"{writer.file_format} needs record indexes; "
                        f"supported formats: {sorted(f.value for f in FILE_FORMATS)}"
                    )
                digests.append(f"{_sha256(path)}  {path.name}\n")
                first = last
    digest_name = f"{filename_template.dataset_name}-{split_name}{DIGESTS_SUFFIX}"
    (epath.Path(filename_template.data_dir) / digest_name).write_text("".join(digests))
    return tfds.core.SplitInfo(
        name=split_name,
        shard_lengths=np.diff(boundaries, prepend=0).tolist(),
        num_bytes=total_size,
        filename_template=filename_template,
    )


def copy_writer(filename_template, file_format: tfds.core.FileFormat) -> tuple[Any, Any]:
    """The `(filename_template, example_writer)` that writes the shards of
    `filename_template` again, under the same names, in `file_format`."""
    return (filename_template.replace(filetype_suffix=file_format.file_suffix),
            tfds.core.ExampleWriter(file_format))


def copy_shards(split_info: tfds.core.SplitInfo, file_format: tfds.core.FileFormat,
                records_of) -> None:
    """Writes the shards of `split_info` again in `file_format`, record for record.

    `records_of(path)` iterates over the serialized records of one shard.
    For splits written by TFDS's own writer path, which writes one format.
    """
    template = split_info.filename_template
    copy, example_writer = copy_writer(template, file_format)
    count = len(split_info.shard_lengths)
    for index in range(count):
        records = records_of(template.sharded_filepath(shard_index=index, num_shards=count))
        example_writer.write(copy.sharded_filepath(shard_index=index, num_shards=count),
                             enumerate(records))


def fast_writer_takes(builder: tfds.core.DatasetBuilder,
                      download_config: tfds.download.DownloadConfig) -> bool:
    """Whether the fast writer builds this: TFDS's writer alone takes
    `max_examples_per_split` and formats other than TFRecord and array_record."""
    return (download_config.max_examples_per_split is None
            and builder.info.file_format in FILE_FORMATS)


def generate_splits(builder, dl_manager, download_config, *, tfds_step, example_writer,
                    filename_template) -> list[tfds.core.SplitInfo]:
    """Writes the splits of `builder.split_sources(dl_manager)`.

    With `example_writer` and `filename_template` (the builder's), by the fast
    writer; without them, by `tfds_step`, TFDS's own writer step. Either way a
    TFRecord build with `builder.array_record_copy` also writes every split as
    array_record files. A builder's `max_shards` caps the shards of a split
    that `download_config` leaves TFDS to count.
    """
    sources = builder.split_sources(dl_manager)
    if builder.max_shards and download_config.num_shards is None:
        with idx.open_images(next(iter(sources.values()))["images_path"]) as images:
            rows = images.header.count
        rows = min(rows, download_config.max_examples_per_split or rows)
        download_config = dataclasses.replace(download_config,
                                              num_shards=min(builder.max_shards, rows))
    array_record = tfds.core.FileFormat.ARRAY_RECORD
    copies = (builder.array_record_copy
              and builder.info.file_format == tfds.core.FileFormat.TFRECORD)
    if copies and array_record not in builder.info.alternative_file_formats:
        builder.info.add_alternative_file_format(array_record)
    if example_writer is None:
        split_infos = tfds_step(dl_manager, download_config)
        if copies:
            tf = lazy_tf.tensorflow()  # TFDS's step wrote TFRecord files with it
            for split_info in split_infos:
                copy_shards(split_info, array_record, lambda path: (
                    record.numpy() for record in tf.data.TFRecordDataset(path)))
        return split_infos
    serializer = ScalarExampleSerializer(builder.info.features)
    return [
        write_split(
            split,
            (serializer.serialize(columns) for _, columns in examples.iter_chunks(**source)),
            filename_template=filename_template(split_name=split),
            example_writer=example_writer,
            shard_config=download_config.get_shard_config(),
            copies=[copy_writer(filename_template(split_name=split), array_record)]
            if copies else (),
        )
        for split, source in sources.items()
    ]
