"""Decodes every serialized example of a split into arrays, without TensorFlow.

The one whole-split decoder of the package: `load_arrays` and the in-memory
data source both use it. Records are read in blocks from array_record or
TFRecord files, parsed with numpy (`records.parse_scalar_examples`), and their
PNGs inflated with zlib (`png.own_pixels_at`) on threads, a block each (zlib
lets go of the GIL while it inflates), into arrays made for the whole split.
Records it cannot parse, or whose PNG is not laid out as `qmnist_tfds.png`
writes it (none in a build of this package), keep their bytes, for TFDS's
own decoder.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent import futures

import numpy as np
import tensorflow_datasets as tfds

from qmnist_tfds import pipeline, png, records, tfrecord

# Records are decoded this many at a time by this many threads: a load passes
# through at most _THREADS + 1 blocks of records at once (docs/design.md).
_BLOCK = 4096
_THREADS = 2
_INT32 = np.iinfo(np.int32)


def int_kinds(features: tfds.features.FeaturesDict) -> dict[str, np.dtype] | None:
    """Name -> dtype of every feature but `image`, if all are integer scalars."""
    kinds = {}
    for name, info in features.get_tensor_info().items():
        if name == "image":
            continue
        if info.shape != () or not np.issubdtype(info.np_dtype, np.integer):
            return None
        kinds[name] = np.dtype(info.np_dtype)
    return kinds


def decodes(features: tfds.features.FeaturesDict) -> bool:
    """Whether `features` are those decoded here: a (H, W, 1) uint8 PNG `image`
    and integer scalars, each stored as one value."""
    if "image" not in features.get_tensor_info() or int_kinds(features) is None:
        return False
    image = features["image"]
    shape = tuple(getattr(image, "shape", ()))
    return (getattr(image, "encoding_format", None) in (None, "png")
            and len(shape) == 3 and shape[2] == 1 and None not in shape
            and np.dtype(image.np_dtype) == np.uint8)


@dataclasses.dataclass
class DecodedSplit:
    """A split's examples, decoded."""

    images: np.ndarray  # (N, H, W, 1) uint8
    ints: np.ndarray  # (N, len(int_keys)) int64
    int_keys: list[str]
    own: memoryview  # 1 for the records decoded here (its items index as Python ints)
    undecoded: dict[int, bytes]  # the others' serialized examples, by row
    # The images' bytes, flat. A memoryview copies an image holding the GIL;
    # numpy lets go of it to copy more than 500 elements, and under Grain's
    # reading threads each letting go hands it to another thread, a wait that
    # costs more than the copy.
    pixels: memoryview = dataclasses.field(init=False)

    def __post_init__(self):
        self.pixels = memoryview(self.images.reshape(-1))


FileRange = tuple[str, int, int]  # a file, the first record to read and the one after


def file_ranges(instructions) -> list[FileRange]:
    """TFDS's file instructions of a split as (file, start, stop)."""
    return [(os.fspath(i.filename), i.skip, i.skip + i.take) for i in instructions]


def record_blocks(files: Iterable[FileRange], file_format: tfds.core.FileFormat,
                  block: int = _BLOCK) -> Iterator[list[bytes]]:
    """The serialized records of `files` in order, up to `block` at a time, read
    file by file in ranges (array_record reads ahead within a file)."""
    for filename, start, stop in files:
        if file_format == tfds.core.FileFormat.TFRECORD:
            yield from tfrecord.read_blocks(filename, start, stop, block)
            continue
        if file_format != tfds.core.FileFormat.ARRAY_RECORD:
            raise ValueError(f"{filename}: cannot read {file_format.value} files")
        from array_record.python import array_record_module

        reader = array_record_module.ArrayRecordReader(filename)
        try:
            for first in range(start, stop, block):
                yield reader.read(first, min(first + block, stop))
        finally:
            reader.close()


def decode(blocks: Iterable[Sequence[bytes]], count: int,
           features: tfds.features.FeaturesDict, int_keys: Sequence[str],
           where: str) -> DecodedSplit:
    """Decodes the `count` records of `blocks` (see `decodes`); `int_keys` orders
    the columns of `ints`, and `where` names the records in errors."""
    kinds = records.feature_kinds(features)
    shape = features["image"].shape
    dtypes = int_kinds(features)
    int32_columns = [column for column, key in enumerate(int_keys) if dtypes[key] == np.int32]
    split = DecodedSplit(np.zeros((count, *shape), dtype=np.uint8),
                         np.zeros((count, len(int_keys)), dtype=np.int64), list(int_keys),
                         memoryview(np.zeros(count, dtype=np.uint8)), {})
    own = np.frombuffer(split.own, dtype=np.uint8)

    def decode_block(raw: Sequence[bytes], first: int) -> None:
        rows = slice(first, first + len(raw))
        parsed = records.parse_scalar_examples(raw, kinds)
        ints = split.ints[rows]
        ints[:] = np.stack([parsed.ints[name] for name in int_keys], axis=1)
        served = parsed.parsed
        for column in int32_columns:  # TFDS casts, and fails out of range
            served &= (ints[:, column] >= _INT32.min) & (ints[:, column] <= _INT32.max)
        starts, ends = parsed.spans["image"]
        pixels, laid_out = png.own_pixels_at(parsed.blob, starts, ends - starts, *shape[:2])
        split.images[rows, ..., 0] = pixels
        own[rows] = served & laid_out
        for row in np.flatnonzero(~(served & laid_out)).tolist():
            split.undecoded[first + row] = bytes(raw[row])

    row = 0

    def submitted(pool: futures.Executor) -> Iterator[futures.Future]:
        nonlocal row
        for raw in blocks:
            if row + len(raw) > count:
                raise ValueError(f"{where}: more than the {count} records expected")
            yield pool.submit(decode_block, raw, row)
            row += len(raw)

    with futures.ThreadPoolExecutor(_THREADS) as pool:
        for done in pipeline.ahead(submitted(pool), _THREADS - 1):
            done.result()
    if row != count:
        raise ValueError(f"{where}: read {row} records, expected {count}")
    return split


def as_arrays(split: DecodedSplit,
              features: tfds.features.FeaturesDict) -> dict[str, np.ndarray]:
    """Every feature as one array (keys in the features' order, their numpy
    dtypes), as `tfds.as_numpy(tfds.load(..., batch_size=-1))` gives them;
    the records not decoded here are decoded by TFDS (its values, its errors)."""
    kinds = int_kinds(features)
    columns = {"image": split.images}
    for column, key in enumerate(split.int_keys):
        columns[key] = split.ints[:, column].astype(kinds[key])
    for index, raw in split.undecoded.items():
        for key, value in features.deserialize_example_np(raw).items():
            columns[key][index] = value
    return {key: columns[key] for key in features}


def empty_arrays(features: tfds.features.FeaturesDict) -> dict[str, np.ndarray]:
    """`as_arrays` of a split without records."""
    return {key: np.zeros((0, *info.shape), dtype=info.np_dtype)
            for key, info in features.get_tensor_info().items()}
