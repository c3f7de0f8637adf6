"""Whole splits of a prepared `qmnist` dataset as numpy arrays, fast.

`tfds.as_numpy(tfds.load(..., batch_size=-1))` parses and PNG-decodes one
example at a time through a tf.data pipeline. `load_arrays` returns the same
arrays several times faster: it parses the TFRecord shards in large batches
with `tf.io.parse_example` and decodes the PNGs that this package's builder
writes (one IDAT, filter type 0: a zlib stream of the raw rows) with zlib and
numpy, falling back to a full PNG decoder for any other PNG.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from qmnist_tfds import png

_BATCH = 16_384
_HEIGHT = _WIDTH = 28


def decode_gray_pngs(encoded: Sequence[bytes]) -> np.ndarray:
    """Decodes 28x28 grayscale PNGs into an (N, 28, 28, 1) uint8 array.

    PNGs laid out as `png.encode_gray_pngs` writes them are decompressed with
    zlib and unfiltered in one numpy step; any other PNG is decoded by TensorFlow.
    """
    images = np.empty((len(encoded), _HEIGHT, _WIDTH, 1), dtype=np.uint8)
    raw = [png.own_scanlines(data, _HEIGHT, _WIDTH) for data in encoded]
    own = np.array([r is not None for r in raw], dtype=bool)
    others = np.flatnonzero(~own)
    if own.any():
        rows = np.frombuffer(b"".join(r for r in raw if r is not None), dtype=np.uint8)
        rows = rows.reshape(-1, _HEIGHT, _WIDTH + 1)
        unfiltered = ~rows[:, :, 0].any(axis=1)  # filter type 0 on every row
        own_rows = np.flatnonzero(own)
        images[own_rows[unfiltered], ..., 0] = rows[unfiltered, :, 1:]
        others = np.concatenate([others, own_rows[~unfiltered]])
    for i in others:
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
    (`"test[:1000]"`). The dataset must have been built in TFRecord format.
    """
    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
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
    for parsed in batches.prefetch(2).as_numpy_iterator():
        for key, values in parsed.items():
            columns[key].append(values)
    arrays = {}
    for key, parts in columns.items():
        values = np.concatenate(parts)
        if key == "image":
            arrays[key] = decode_gray_pngs(values)
        else:
            arrays[key] = values.astype(features[key].np_dtype)
    return arrays
