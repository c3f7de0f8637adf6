"""The fast whole-split loader returns exactly what TFDS's batch_size=-1 returns."""

from __future__ import annotations

import io
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from qmnist_tfds import arrays, png, records, split_decoder, synthetic, tfrecord
from qmnist_tfds.qmnist import qmnist_dataset_builder
from tests.conftest import tfrecords


@pytest.mark.parametrize(("name", "split"), [
    ("qmnist", "train"), ("qmnist", "test"), ("qmnist", "test10k"), ("qmnist", "test50k"),
    ("qmnist", "test[9995:10003]"), ("qmnist", "train[:25%]"), ("qmnist/nist", "nist"),
])
def test_identical_to_tfds_batch_size_minus_one(dummy_build, name, split):
    fast = arrays.load_arrays(split, name=name, data_dir=dummy_build)
    reference = tfds.as_numpy(tfds.load(name, split=split, data_dir=os.fspath(dummy_build),
                                        batch_size=-1))
    assert fast.keys() == reference.keys()
    for key, values in reference.items():
        assert fast[key].dtype == values.dtype, key
        np.testing.assert_array_equal(fast[key], values, err_msg=key)


def _examples(pngs: list[bytes]) -> list[bytes]:
    """Examples of the qmnist features holding `pngs`, in the layout the package
    writes; integer feature k of row i is 1000 * k + i."""
    features = qmnist_dataset_builder.Builder(data_dir="/nonexistent").info.features
    names = [name for name in features if name != "image"]
    columns = {name: [1000 * k + i for i in range(len(pngs))] for k, name in enumerate(names)}
    return records.ScalarExampleSerializer(features).serialize({"image": pngs, **columns})


def test_other_encoders_pngs_decode_through_tfds(tmp_path):
    images = synthetic.synthetic_images(20, np.random.default_rng(5))
    ours = png.encode_gray_pngs(images)
    by_tf = [tf.io.encode_png(image[..., None]).numpy() for image in images[:5]]
    by_pillow = []
    for image in images[5:10]:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", optimize=True)  # adaptive filters
        by_pillow.append(buffer.getvalue())
    records = _examples(by_tf + by_pillow + ours[10:])
    features = qmnist_dataset_builder.Builder(data_dir="/nonexistent").info.features
    int_keys = [name for name in features if name != "image"]
    split = split_decoder.decode([records[:7], records[7:]], len(records), features, int_keys,
                                 "records")
    assert sorted(split.undecoded) == list(range(10))
    found = split_decoder.as_arrays(split, features)
    np.testing.assert_array_equal(found["image"][..., 0], images)
    for k, name in enumerate(int_keys):
        np.testing.assert_array_equal(found[name], 1000 * k + np.arange(20))
    with pytest.raises(ValueError, match="records: read 20 records, expected 21"):
        split_decoder.decode([records], 21, features, int_keys, "records")
    with pytest.raises(ValueError, match="records: more than the 19 records expected"):
        split_decoder.decode([records], 19, features, int_keys, "records")


def _write_tfrecord(path, records) -> None:
    with tf.io.TFRecordWriter(os.fspath(path)) as writer:
        for record in records:
            writer.write(record)


def test_tfrecord_reader_gives_what_tensorflow_reads(tmp_path):
    rng = np.random.default_rng(3)
    records = [rng.bytes(int(size)) for size in rng.integers(0, 300, 50)] + [b""]
    path = tmp_path / "records.tfrecord"
    _write_tfrecord(path, records)
    by_tf = tfrecords([path])
    assert by_tf == records
    blocks = list(tfrecord.read_blocks(path, 0, len(records), 8))
    assert [len(block) for block in blocks] == [8] * 6 + [3]
    assert sum(blocks, []) == by_tf
    assert sum(tfrecord.read_blocks(path, 17, 40, 5), []) == by_tf[17:40]
    named = re.escape(str(path))
    with pytest.raises(ValueError, match=f"{named}: 51 records, expected at least 52"):
        list(tfrecord.read_blocks(path, 0, 52, 8))


@pytest.mark.parametrize(("where", "message"), [
    (3, "record 0: corrupt length"), (14, "record 0: corrupt data"),
    (-2, "record 2: corrupt data"), (None, "the last one truncated"),
])
def test_a_corrupt_tfrecord_file_names_the_file_and_record(tmp_path, where, message):
    path = tmp_path / "records.tfrecord"
    _write_tfrecord(path, [b"first record", b"second", b"third"])
    data = bytearray(path.read_bytes())
    if where is None:
        data = data[:-(4 + 5 + 4 + 2)]  # into the third record's length
    else:
        data[where] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: .*{message}"):
        list(tfrecord.read_blocks(path, 0, 3, 2))


def test_a_tfrecord_only_build_loads_as_tfds_reads_it(tfrecord_only_build):
    data_dir = tfrecord_only_build
    assert not list(data_dir.rglob("*.array_record*"))
    for split in ("train", "test[5:25]", "test50k"):
        fast = arrays.load_arrays(split, data_dir=data_dir)
        reference = tfds.as_numpy(tfds.load("qmnist", split=split, data_dir=os.fspath(data_dir),
                                            batch_size=-1))
        assert fast.keys() == reference.keys()
        for key, values in reference.items():
            assert fast[key].dtype == values.dtype, key
            np.testing.assert_array_equal(fast[key], values, err_msg=key)


def test_an_unprepared_dataset_says_to_build_it(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match="qmnist/nist is not prepared in .*tfds build --imports qmnist_tfds"):
        arrays.load_arrays("nist", name="qmnist/nist", data_dir=tmp_path)


def test_tfds_own_fashion_mnist_build_loads_as_tfds_reads_it(fashion_mnist_build):
    """TFRecord files that TFDS's own builder and writer wrote (no config, its PNGs)."""
    for split in ("test", "train[:100]"):
        fast = arrays.load_arrays(split, name="fashion_mnist", data_dir=fashion_mnist_build)
        reference = tfds.as_numpy(tfds.load("fashion_mnist", split=split, batch_size=-1,
                                            data_dir=os.fspath(fashion_mnist_build)))
        assert fast.keys() == reference.keys()
        for key, values in reference.items():
            assert fast[key].dtype == values.dtype, key
            np.testing.assert_array_equal(fast[key], values, err_msg=key)
    with pytest.raises(FileNotFoundError, match="^mnist is not prepared in "):
        arrays.load_arrays("test", name="mnist", data_dir=fashion_mnist_build)
