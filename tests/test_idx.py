"""The IDX decoder on generated files, malformed files and Debian's Fashion-MNIST files."""

from __future__ import annotations

import gzip
import lzma
import tracemalloc

import numpy as np
import pytest

from qmnist_tfds import idx
from tests.conftest import FASHION_MNIST_DIR

RNG = np.random.default_rng(0)


def _labels(rows: int = 5, columns: int = 8) -> np.ndarray:
    return RNG.integers(-(2**31), 2**31 - 1, size=(rows, columns), dtype=np.int32)


def _images(rows: int = 3, shape=(28, 28)) -> np.ndarray:
    return RNG.integers(0, 256, size=(rows, *shape), dtype=np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz", ".xz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(7, dtype=np.uint8),
        np.arange(-3, 3, dtype=np.int8).reshape(2, 3),
        np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 12,
        _labels(),
        np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2),
        np.linspace(-1, 1, 6, dtype=np.float64),
    ],
    ids=["u8", "i8", "i16", "i32", "f32", "f64"],
)
def test_round_trip(tmp_path, array, suffix):
    path = tmp_path / f"a.idx{suffix}"
    idx.write_idx(path, array)
    decoded = idx.read_idx(path)
    assert decoded.dtype == array.dtype.newbyteorder("=")
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, array)


def test_int32_is_big_endian_on_disk(tmp_path):
    """The byte-order slip that shipped in other loaders: values must be read big-endian."""
    path = tmp_path / "labels.idx"
    path.write_bytes(
        bytes.fromhex("00000C02" "00000001" "00000002") + bytes.fromhex("0000086A" "00038032")
    )
    np.testing.assert_array_equal(idx.read_idx(path), [[2154, 229426]])


def test_compression_is_sniffed_not_guessed_from_name(tmp_path):
    array = _images()
    raw_named_gz = tmp_path / "plain.gz"
    raw_named_gz.write_bytes(idx.encode_idx(array))
    gz_named_plain = tmp_path / "compressed.idx"
    gz_named_plain.write_bytes(gzip.compress(idx.encode_idx(array)))
    xz_named_gz = tmp_path / "xz.gz"
    xz_named_gz.write_bytes(lzma.compress(idx.encode_idx(array)))
    for path in (raw_named_gz, gz_named_plain, xz_named_gz):
        np.testing.assert_array_equal(idx.read_idx(path), array)


def test_streaming_reads_chunks_and_skips(tmp_path):
    images = _images(10)
    path = tmp_path / "images.gz"
    idx.write_idx(path, iter([images[:4], images[4:]]), count=10)
    with idx.open_images(path) as reader:
        assert reader.header.shape == (10, 28, 28)
        assert reader.header.magic == idx.IMAGES_MAGIC
        reader.skip_rows(3)
        chunks = list(reader.iter_chunks(4))
        reader.check_end()
    assert [len(c) for c in chunks] == [4, 3]
    np.testing.assert_array_equal(np.concatenate(chunks), images[3:])


def test_write_idx_rejects_wrong_row_count(tmp_path):
    with pytest.raises(ValueError, match="wrote 3 rows, header says 4"):
        idx.write_idx(tmp_path / "x.idx", iter([_images(3)]), count=4)


# Malformed files: each must raise IdxFormatError naming the file and the defect.
def _header(magic: int, *dims: int) -> bytes:
    return np.array([magic, *dims], dtype=">u4").tobytes()


MALFORMED = {
    "empty": (b"", "too short for an IDX header"),
    "not idx": (b"<html>404</html>", "bad magic number 0x3C68746D: not an IDX file"),
    "unknown type": (_header(0x00000A01, 1) + b"\0", "bad magic number 0x00000A01"),
    "zero dims": (_header(0x00000800), "0 dimensions"),
    "header cut": (_header(0x00000803, 5, 28), "header truncated: 3 dimensions declared, 2"),
    "payload cut": (
        _header(0x00000803, 2, 28, 28) + bytes(784 + 100),
        "payload truncated: header declares 2 rows, the data ends after 1",
    ),
    "trailing": (
        _header(0x00000803, 1, 28, 28) + bytes(784 + 5),
        "5 trailing bytes after the 1 rows the header declares",
    ),
    "huge rows": (
        _header(0x00000804, 0, 2**32 - 1, 2**32 - 1, 2**32 - 1),
        "implausibly large (rows of 79228162458924105385300197375 bytes",
    ),
    "huge but empty": (
        _header(0x00000804, 0, 0, 2**32 - 1, 2**32 - 1),
        "dimensions 0x0x4294967295x4294967295 are implausibly large (rows of 0 bytes",
    ),
    "labels as images": (
        _header(0x00000C02, 1, 8) + bytes(32),
        "magic number 0x00000C02, expected 0x00000803",
    ),
    "32x32 images": (
        _header(0x00000803, 1, 32, 32) + bytes(1024),
        "dimensions 1x32x32, expected Nx28x28",
    ),
}


@pytest.mark.parametrize("compress", [None, gzip.compress, lzma.compress], ids=["raw", "gz", "xz"])
@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_images(tmp_path, case, compress):
    data, message = MALFORMED[case]
    path = tmp_path / "qmnist-train-images-idx3-ubyte.gz"
    path.write_bytes(compress(data) if compress else data)
    with pytest.raises(idx.IdxFormatError) as error:
        idx.read_idx(path, magic=idx.IMAGES_MAGIC, row_shape=idx.IMAGE_SHAPE)
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_seven_column_labels(tmp_path):
    path = tmp_path / "labels.idx"
    idx.write_idx(path, _labels(4, 7))
    with pytest.raises(idx.IdxFormatError, match=r"dimensions 4x7, expected Nx8"):
        idx.read_extended_labels(path)


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gz", "xz"])
def test_compressed_stream_cut_short(tmp_path, compress):
    path = tmp_path / "labels.cut"
    data = compress(idx.encode_idx(_labels(1000)))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(idx.IdxFormatError, match="corrupt or truncated compressed data") as e:
        idx.read_extended_labels(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gz", "xz"])
def test_compressed_stream_corrupt(tmp_path, compress):
    path = tmp_path / "labels.bad"
    data = bytearray(compress(idx.encode_idx(_labels(1000))))
    data[len(data) // 2] ^= 0xFF
    data[len(data) // 2 + 1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(idx.IdxFormatError, match=str(path)):
        idx.read_extended_labels(path)


def test_huge_header_claim_fails_without_allocating_it(tmp_path):
    """A header claiming ~3 TB of images fails on the missing bytes, allocating little."""
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(_header(0x00000803, 2**32 - 1, 28, 28) + bytes(784 * 3)))
    tracemalloc.start()
    try:
        with pytest.raises(idx.IdxFormatError, match="payload truncated: header declares "
                           "4294967295 rows, the data ends after 3"):
            idx.read_idx(path, magic=idx.IMAGES_MAGIC, row_shape=idx.IMAGE_SHAPE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


FASHION_FILES = {
    "train-images-idx3-ubyte.gz": (60000, 28, 28),
    "train-labels-idx1-ubyte.gz": (60000,),
    "t10k-images-idx3-ubyte.gz": (10000, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (10000,),
}


@pytest.mark.parametrize("name", FASHION_FILES)
def test_fashion_mnist_files_written_by_others(name):
    """Real IDX files from Debian's dataset-fashion-mnist, against a plain numpy decode."""
    path = FASHION_MNIST_DIR / name
    if not path.exists():
        pytest.skip(f"{path} absent: apt-get install -y dataset-fashion-mnist")
    shape = FASHION_FILES[name]
    decoded = idx.read_idx(path)
    raw = gzip.decompress(path.read_bytes())
    header_len = 4 + 4 * len(shape)
    independent = np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)
    assert decoded.shape == shape
    np.testing.assert_array_equal(decoded, independent)
    if len(shape) == 3:
        with idx.open_images(path) as reader:
            first = reader.read_rows(1000)
        np.testing.assert_array_equal(first, independent[:1000])
