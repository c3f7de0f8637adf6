"""Example generation from image/label file pairs, without TFDS."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tensorflow as tf

from qmnist_tfds import examples, idx, synthetic


@pytest.fixture()
def pair(tmp_path):
    rng = np.random.default_rng(3)
    images = synthetic.synthetic_images(50, rng)
    labels = synthetic.synthetic_labels("test", 50, rng)
    images_path, labels_path = tmp_path / "images.gz", tmp_path / "labels.gz"
    idx.write_idx(images_path, images)
    idx.write_idx(labels_path, labels)
    return images_path, labels_path, images, labels


@pytest.mark.parametrize(("start", "stop"), [(0, None), (0, 17), (17, None), (5, 6)])
def test_examples_in_file_order_with_every_column(pair, start, stop):
    images_path, labels_path, images, labels = pair
    got = list(examples.iter_examples(images_path, labels_path, start=start, stop=stop,
                                      rows_per_chunk=7))
    rows = range(50)[start:stop]
    assert [key for key, _ in got] == list(rows)
    for (_, example), row in zip(got, rows, strict=True):
        decoded = tf.io.decode_png(example["image"]).numpy()[..., 0]
        np.testing.assert_array_equal(decoded, images[row])
        assert example["label"] == labels[row, 0]
        for name, (column, _) in examples.METADATA_COLUMNS.items():
            assert example[name] == labels[row, column]
            assert type(example[name]) is int


def test_image_and_label_counts_must_agree(pair, tmp_path):
    images_path, labels_path, _, labels = pair
    short = tmp_path / "short-labels.gz"
    idx.write_idx(short, labels[:49])
    message = f"{images_path}: 50 images, but {short} has 49 label rows"
    with pytest.raises(idx.IdxFormatError, match=re.escape(message)):
        next(examples.iter_examples(images_path, short))


def test_trailing_bytes_fail_the_split(pair, tmp_path):
    images_path, labels_path, images, _ = pair
    padded = tmp_path / "padded-images"
    padded.write_bytes(idx.encode_idx(images) + b"\0\0")
    assert len(list(examples.iter_examples(padded, labels_path, stop=50 - 1))) == 49
    with pytest.raises(idx.IdxFormatError, match="2 trailing bytes"):
        list(examples.iter_examples(padded, labels_path))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        (0, 10, "row 3 has class 10, expected 0-9"),
        (0, -1, "row 3 has class -1, expected 0-9"),
        (2, -5, "row 3 has writer_id (column 2) -5, expected a non-negative value"),
    ],
)
def test_label_values_the_features_cannot_hold(tmp_path, column, value, message):
    labels = synthetic.synthetic_labels("train", 10, np.random.default_rng(0))
    labels[3, column] = value
    path = tmp_path / "qmnist-train-labels-idx2-int.gz"
    idx.write_idx(path, labels)
    with pytest.raises(idx.IdxFormatError, match=re.escape(message)) as error:
        examples.read_checked_labels(path)
    assert str(path) in str(error.value)


def test_png_cache_serves_slices_of_a_whole_pass(pair):
    images_path, labels_path, _, _ = pair
    cache = {}
    partial = list(examples.iter_examples(images_path, labels_path, stop=10, png_cache=cache))
    assert cache == {}  # only a pass over the whole file fills the cache
    whole = list(examples.iter_examples(images_path, labels_path, rows_per_chunk=7,
                                        png_cache=cache))
    assert len(cache[str(images_path)]) == 50
    images_path.write_bytes(b"gone")  # later slices must come from the cache
    for start, stop in [(0, 10), (10, None), (3, 4)]:
        cached = list(examples.iter_examples(images_path, labels_path, start=start, stop=stop,
                                             png_cache=cache))
        assert cached == whole[start:stop]
    assert partial == whole[:10]
