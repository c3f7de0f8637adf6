"""Whole splits of a prepared dataset as numpy arrays, fast, without TensorFlow.

`tfds.as_numpy(tfds.load(..., batch_size=-1))` parses and PNG-decodes one
example at a time through a tf.data pipeline. `load_arrays` returns the same
arrays several times faster: it reads the records of the dataset's main
format (TFRecord or array_record files) itself and decodes them with the
package's whole-split decoder (`qmnist_tfds.split_decoder`), the one the
in-memory data source uses. Only a dataset in another format, or whose
features that decoder does not take, is read through TFDS, with TensorFlow.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from qmnist_tfds import lazy_tf, split_decoder

# The file formats whose records are read here; any other is read through TFDS.
_READABLE = (tfds.core.FileFormat.TFRECORD, tfds.core.FileFormat.ARRAY_RECORD)


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
    (`"test[:1000]"`). The dataset must have been prepared.
    """
    builder = tfds.builder(name, data_dir=None if data_dir is None else os.fspath(data_dir))
    config = builder.builder_config
    full_name = builder.name + (f"/{config.name}" if config else "")
    if not builder.is_prepared():
        raise FileNotFoundError(f"{full_name} is not prepared in {builder.data_dir}: build "
                                f"it first (tfds build --imports qmnist_tfds {full_name})")
    info = builder.info
    features = info.features
    if info.file_format in _READABLE and split_decoder.decodes(features):
        instructions = info.splits[split].file_instructions
        count = sum(i.take for i in instructions)
        if not count:
            return split_decoder.empty_arrays(features)
        blocks = split_decoder.record_blocks(split_decoder.file_ranges(instructions),
                                             info.file_format)
        int_keys = [key for key in features if key != "image"]
        where = f"{full_name} split {split!r}"
        return split_decoder.as_arrays(
            split_decoder.decode(blocks, count, features, int_keys, where), features)
    lazy_tf.tensorflow()  # TFDS reads it with TensorFlow: without it, say how to install
    return tfds.as_numpy(builder.as_dataset(split, batch_size=-1))
