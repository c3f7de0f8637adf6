"""Writes a split to TFDS shards from columns of already-encoded feature values.

TFDS's generic writer sends every example through `FeaturesDict.encode_example`
and `ExampleSerializer` (about 50 us for QMNIST's 8 features) and keeps every
serialized example in memory until the split ends. Here a chunk of examples
arrives as columns (PNG bytes, Python ints), each example becomes a
`tf.train.Example` in about 5 us, and the records are spooled to an unnamed
temporary file beside the shards, then read back sequentially (a memory map of
it would count in the process's RSS). The spool is cut into the shards TFDS
would make (its `ShardConfig` rule and boundaries, its file names) and written
by the builder's own `ExampleWriter`, so a split reads back exactly as one
written by TFDS.
"""

from __future__ import annotations

import array
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import naming, splits, writer
from tensorflow_datasets.core.utils import dtype_utils, shard_utils

# Formats whose TFDS writer needs no per-record index file.
FILE_FORMATS = frozenset({tfds.core.FileFormat.TFRECORD, tfds.core.FileFormat.ARRAY_RECORD})


class ScalarExampleSerializer:
    """Serializes columns of scalar feature values into `tf.train.Example` bytes.

    The protos hold what TFDS's `ExampleSerializer` writes for the same encoded
    values (int64_list for integers up to int64, bytes_list for strings, one
    value each); features of other kinds are refused. It does no encoding or
    range checks of its own: values must already be what
    `FeaturesDict.encode_example` would return.
    """

    def __init__(self, features: tfds.features.FeaturesDict):
        self._fields: dict[str, str] = {}
        for name, info in features.get_serialized_info().items():
            if not isinstance(info, tfds.features.TensorInfo) or info.shape != ():
                raise ValueError(f"feature {name!r} is not a scalar: {info}")
            if info.np_dtype == np.bool_ or (
                dtype_utils.is_integer(info.np_dtype) and info.np_dtype != np.uint64
            ):
                self._fields[name] = "int64_list"
            elif dtype_utils.is_string(info.np_dtype):
                self._fields[name] = "bytes_list"
            else:
                raise ValueError(f"feature {name!r} has unsupported dtype {info.np_dtype}")

    def serialize(self, columns: Mapping[str, Sequence]) -> list[bytes]:
        """Returns one serialized example per row of `columns` (name -> values)."""
        if set(columns) != set(self._fields):
            raise ValueError(
                f"columns {sorted(columns)} do not match the features {sorted(self._fields)}"
            )
        fields = [(name, field, columns[name]) for name, field in self._fields.items()]
        lengths = {len(values) for _, _, values in fields}
        if len(lengths) != 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        records = []
        for row in range(lengths.pop()):
            example = tf.train.Example()
            feature = example.features.feature
            for name, field, values in fields:
                getattr(feature[name], field).value.append(values[row])
            records.append(example.SerializeToString())
        return records


def write_split(
    split_name: str,
    record_chunks: Iterable[list[bytes]],
    *,
    filename_template: naming.ShardedFileTemplate,
    example_writer: writer.ExampleWriter,
    shard_config: shard_utils.ShardConfig,
) -> splits.SplitInfo:
    """Writes serialized examples, in order, as the shards of one split.

    `record_chunks` yields lists of serialized examples. The shards are written
    once the last record is in, so an error while producing the records leaves
    no shard.
    """
    # The spool goes beside the shards (as TFDS's own spill files do), not to a
    # possibly RAM-backed /tmp; only for remote data dirs does it use the temp dir.
    spool_dir = os.fspath(filename_template.data_dir)
    if "://" in spool_dir:
        spool_dir = None
    with tempfile.TemporaryFile(prefix=f"{split_name}-records-", dir=spool_dir) as spool:
        sizes = array.array("q")  # 8 bytes a record, not a Python int each
        with tfds.core.utils.tqdm(
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
        boundaries = shard_utils.get_shard_boundaries(len(sizes), num_shards)
        spool.seek(0)
        first = 0
        for index, last in enumerate(boundaries):
            path = filename_template.sharded_filepath(shard_index=index, num_shards=num_shards)
            records = ((row, spool.read(sizes[row])) for row in range(first, last))
            if example_writer.write(path, records) is not None:
                raise NotImplementedError(
                    f"{example_writer.file_format} needs record indexes; "
                    f"supported formats: {sorted(f.value for f in FILE_FORMATS)}"
                )
            first = last
    return splits.SplitInfo(
        name=split_name,
        shard_lengths=np.diff(boundaries, prepend=0).tolist(),
        num_bytes=total_size,
        filename_template=filename_template,
    )

