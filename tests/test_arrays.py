"""The fast whole-split loader returns exactly what TFDS's batch_size=-1 returns."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from qmnist_tfds import arrays, png, synthetic


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


def test_other_encoders_pngs_decode_through_the_fallback():
    images = synthetic.synthetic_images(20, np.random.default_rng(5))
    ours = png.encode_gray_pngs(images)
    by_tf = [tf.io.encode_png(image[..., None]).numpy() for image in images[:5]]
    by_pillow = []
    for image in images[5:10]:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", optimize=True)  # adaptive filters
        by_pillow.append(buffer.getvalue())
    encoded = np.array(by_tf + by_pillow + ours[10:], dtype=object)
    np.testing.assert_array_equal(arrays.decode_gray_pngs(encoded)[..., 0], images)
