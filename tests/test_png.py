"""The PNG encoder: every image decodes back to its exact pixels, by TF and by Pillow."""

from __future__ import annotations

import io
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from qmnist_tfds import png, synthetic


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, size=(300, 28, 28), dtype=np.uint8)
    extremes = np.stack([np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8)])
    return np.concatenate([noise, extremes, synthetic.synthetic_images(700, rng)])


@pytest.mark.parametrize("level", [1, png.COMPRESSION_LEVEL, 9])
def test_decodes_to_exact_pixels(images, level):
    encoded = png.encode_gray_pngs(images, level=level)
    assert len(encoded) == len(images)
    for data, pixels in zip(encoded, images, strict=True):
        assert data.startswith(png.PNG_SIGNATURE)
        decoded_tf = tf.io.decode_png(data, channels=0).numpy()
        assert decoded_tf.shape == (28, 28, 1)
        np.testing.assert_array_equal(decoded_tf[..., 0], pixels)
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # checks every chunk's CRC
        with Image.open(io.BytesIO(data)) as image:
            assert image.mode == "L"
            np.testing.assert_array_equal(np.asarray(image), pixels)


def _own_pixels(encoded, height, width):
    """`png.own_pixels_at` of PNGs given one bytes object each."""
    sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return png.own_pixels_at(b"".join(encoded), np.cumsum(sizes) - sizes, sizes, height, width)


def test_threads_give_the_same_bytes_in_order(images):
    with ThreadPoolExecutor(2) as executor:
        threaded = png.encode_gray_pngs(images, executor=executor)
    assert threaded == png.encode_gray_pngs(images)


def test_accepts_trailing_channel_and_rejects_other_input(images):
    assert png.encode_gray_pngs(images[:3, ..., None]) == png.encode_gray_pngs(images[:3])
    with pytest.raises(ValueError, match="expected"):
        png.encode_gray_pngs(images[:3].astype(np.int32))
    with pytest.raises(ValueError, match="expected"):
        png.encode_gray_pngs(images[0])


def test_own_pixels_decodes_own_layout_and_leaves_out_the_rest(images):
    ours = png.encode_gray_pngs(images[:40])
    by_tf = tf.io.encode_png(images[40][..., None]).numpy()  # same IHDR, another encoder
    buffer = io.BytesIO()
    Image.fromarray(images[41]).save(buffer, format="PNG", optimize=True)
    corrupt = bytearray(ours[2])
    corrupt[len(corrupt) // 2] ^= 0xFF  # inside the zlib stream
    sub_filtered = png._png_prefix(28, 28) + png._chunk(
        b"IDAT", zlib.compress(np.insert(images[3], 0, 1, axis=1).tobytes())) + png._IEND
    bad_crc = bytearray(ours[7])
    bad_crc[-13] ^= 0x01  # the IDAT's CRC, just before the 12-byte IEND chunk
    with pytest.raises(tf.errors.InvalidArgumentError):  # as tfds.load's decoder refuses it
        tf.io.decode_png(bytes(bad_crc))
    mixed = [*ours, by_tf, buffer.getvalue(), bytes(corrupt), sub_filtered, b"", ours[5][:30],
             ours[6][:-1], bytes(bad_crc)]
    pixels, own = _own_pixels(mixed, 28, 28)
    assert own.tolist() == [True] * 40 + [False] * 8
    np.testing.assert_array_equal(pixels[:40], images[:40])
    assert not pixels[40:].any()


@pytest.mark.parametrize("shape", [(10, 20), (20, 10), (1, 300), (300, 1)])
def test_non_square_images_decode_to_their_shape(shape):
    """A header with width and height swapped would pass every 28x28 test; not these."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(5, *shape), dtype=np.uint8)
    images[0] = 0
    encoded = png.encode_gray_pngs(images)
    for data, pixels in zip(encoded, images, strict=True):
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (shape[1], shape[0])  # Pillow: (width, height)
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            np.testing.assert_array_equal(np.asarray(image), pixels)
        np.testing.assert_array_equal(tf.io.decode_png(data).numpy()[..., 0], pixels)
    decoded, own = _own_pixels(encoded, *shape)
    assert own.all()
    np.testing.assert_array_equal(decoded, images)
    _, own_swapped = _own_pixels(encoded, shape[1], shape[0])
    assert not own_swapped.any()
