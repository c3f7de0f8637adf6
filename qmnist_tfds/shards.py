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

Those are TFDS internals, not its public API. `missing_tfds_internals` names
any that the installed TFDS lacks or has changed, and the builder then takes
TFDS's own writer path instead. They are imported where they are used, so
that this module imports whatever the TFDS version.
"""

from __future__ import annotations

import array
import functools
import importlib
import inspect
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from qmnist_tfds import lazy_tf

# Formats whose TFDS writer needs no per-record index file.
FILE_FORMATS = frozenset({tfds.core.FileFormat.TFRECORD, tfds.core.FileFormat.ARRAY_RECORD})

# Every TFDS internal this module and the builder's `_generate_splits` call,
# with the parameters they pass to it.
TFDS_INTERNALS: dict[str, tuple[str, ...]] = {
    "tensorflow_datasets.core.dataset_builder.GeneratorBasedBuilder._generate_splits":
        ("dl_manager", "download_config"),
    "tensorflow_datasets.core.dataset_builder.GeneratorBasedBuilder._example_writer": (),
    "tensorflow_datasets.core.dataset_builder.GeneratorBasedBuilder._get_filename_template":
        ("split_name",),
    "tensorflow_datasets.core.download.DownloadConfig.get_shard_config": (),
    "tensorflow_datasets.core.writer.ExampleWriter.write": ("path", "examples"),
    "tensorflow_datasets.core.utils.shard_utils.ShardConfig.get_number_shards":
        ("total_size", "num_examples"),
    "tensorflow_datasets.core.utils.shard_utils.get_shard_boundaries":
        ("num_examples", "number_of_shards"),
    "tensorflow_datasets.core.naming.ShardedFileTemplate.sharded_filepath":
        ("shard_index", "num_shards"),
    "tensorflow_datasets.core.splits.SplitInfo":
        ("name", "shard_lengths", "num_bytes", "filename_template"),
    "tensorflow_datasets.core.utils.dtype_utils.is_integer": (),
    "tensorflow_datasets.core.utils.dtype_utils.is_string": (),
}


def _resolve(dotted: str) -> Any:
    """The object at a dotted path: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ImportError(dotted)


@functools.cache
def missing_tfds_internals() -> tuple[str, ...]:
    """The entries of `TFDS_INTERNALS` that the installed TFDS lacks or has changed.

    Empty where the fast writer can run. A callable counts as changed when it
    no longer takes every parameter it is passed here by name.
    """
    missing = []
    for dotted, parameters in TFDS_INTERNALS.items():
        try:
            accepted = inspect.signature(_resolve(dotted)).parameters
        except (ImportError, AttributeError, TypeError, ValueError):
            missing.append(dotted)
            continue
        if not set(parameters) <= set(accepted):
            missing.append(dotted)
    return tuple(missing)


class ScalarExampleSerializer:
    """Serializes columns of scalar feature values into `tf.train.Example` bytes.

    The protos hold what TFDS's `ExampleSerializer` writes for the same encoded
    values (int64_list for integers up to int64, bytes_list for strings, one
    value each); features of other kinds are refused. It does no encoding or
    range checks of its own: values must already be what
    `FeaturesDict.encode_example` would return.
    """

    def __init__(self, features: tfds.features.FeaturesDict):
        from tensorflow_datasets.core.utils import dtype_utils

        self._example_class = lazy_tf.tensorflow().train.Example
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
            example = self._example_class()
            feature = example.features.feature
            for name, field, values in fields:
                getattr(feature[name], field).value.append(values[row])
            records.append(example.SerializeToString())
        return records


def write_split(
    split_name: str,
    record_chunks: Iterable[list[bytes]],
    *,
    filename_template,
    example_writer,
    shard_config,
) -> tfds.core.SplitInfo:
    """Writes serialized examples, in order, as the shards of one split.

    `record_chunks` yields lists of serialized examples. The shards are written
    once the last record is in, so an error while producing the records leaves
    no shard. `filename_template`, `example_writer` and `shard_config` are the
    TFDS objects its own writer path uses (`naming.ShardedFileTemplate`,
    `writer.ExampleWriter`, `shard_utils.ShardConfig`).
    """
    from tensorflow_datasets.core import splits
    from tensorflow_datasets.core.utils import shard_utils

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

