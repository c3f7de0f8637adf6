"""Whole splits of a prepared `qmnist` dataset as numpy arrays, fast.

`tfds.as_numpy(tfds.load(..., batch_size=-1))` parses and PNG-decodes one
example at a time through a tf.data pipeline. `load_arrays` returns the same
arrays several times faster. From the array_record copy that a default build
writes, it decodes the split as the in-memory data source does
(`data_source.InMemoryDataSource.arrays`), without TensorFlow. From TFRecord
files alone, it parses the shards in large batches with `tf.io.parse_example`
and decodes the PNGs that this package's builder writes (one IDAT, filter type
0: a zlib stream of the raw rows) with zlib and numpy, falling back to a full
PNG decoder for any other PNG.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds

from qmnist_tfds import data_source, lazy_tf, png

_BATCH = 4096  # small enough for decoding to overlap parsing
_HEIGHT = _WIDTH = 28


def decode_gray_pngs(encoded: Sequence[bytes]) -> np.ndarray:
    """Decodes 28x28 grayscale PNGs into an (N, 28, 28, 1) uint8 array.

    PNGs laid out as `png.encode_gray_pngs` writes them are inflated with zlib
    and checked with numpy (`png.own_pixels`); any other PNG is decoded by
    TensorFlow.
    """
    pixels, own = png.own_pixels(encoded, _HEIGHT, _WIDTH)
    images = pixels[..., None]
    for i in np.flatnonzero(~own):
        tf = lazy_tf.tensorflow()
        images[i] = tf.io.decode_png(encoded[i], channels=1).numpy()
    return images


def load_arrays(
    split: str,
    *,
    name: str = "qmnist",
    data_dir: str | os.PathLike | None = None,
) -> dict[str, np.ndarray]:
    """Returns every feature of `split` of the prepared dataset `name`, as arrays.

    The result equals `tfds.as_numpy(tfds.load(name, split=split,
    data_dir=data_dir, batch_size=-1))`: the same keys, dtypes, shapes and
    values in the same order. `split` may use TFDS's slicing syntax
    (`"test[:1000]"`). The dataset must have been prepared; a dataset that
    holds no array_record copy is read with TensorFlow.
    """
    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    if tfds.core.FileFormat.ARRAY_RECORD in builder.info.available_file_formats():
        source = builder.as_data_source(split)
        found = source.arrays() if isinstance(source, data_source.InMemoryDataSource) else None
        if found is not None:
            return found
    return _load_tfrecord(builder, split)


def _load_tfrecord(builder: tfds.core.DatasetBuilder, split: str) -> dict[str, np.ndarray]:
    """`load_arrays` from the TFRecord files, through tf.data."""
    tf = lazy_tf.tensorflow()
    features = builder.info.features
    specs = {
        key: tf.io.FixedLenFeature([], tf.string if key == "image" else tf.int64)
        for key in features
    }
    instructions = builder.info.splits[split].file_instructions
    records = functools.reduce(
        tf.data.Dataset.concatenate,
        [tf.data.TFRecordDataset(i.filename).skip(i.skip).take(i.take) for i in instructions],
    )
    batches = records.batch(_BATCH).map(
        lambda batch: tf.io.parse_example(batch, specs), num_parallel_calls=tf.data.AUTOTUNE
    )
    columns = {key: [] for key in specs}
    # Each batch is decoded while tf.data reads and parses the next ones.
    for parsed in batches.prefetch(2).as_numpy_iterator():
        for key, values in parsed.items():
            columns[key].append(decode_gray_pngs(values) if key == "image" else values)
    return {
        key: np.concatenate(parts).astype(features[key].np_dtype, copy=False)
        for key, parts in columns.items()
    }
