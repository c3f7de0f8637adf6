"""Bad input gives one clear error and leaves nothing that looks complete.

Each case builds from a copy of the dummy files with one file spoilt. Cases
that change the bytes after their checksums were taken must be stopped by the
checksum gate; cases whose spoilt files carry their own checksums (as a
changed checksums file would allow) must be stopped by the decoder. Then a
rebuild from good files into the same data_dir must succeed.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

from qmnist_tfds import IdxFormatError, downloads, idx, synthetic
from tests.conftest import DUMMY_DATA, build, config_files
from tests.test_cli import _tfds_build


def _manual_dir(tmp_path, config: str):
    return config_files(config, tmp_path / "manual")


def _register(manual) -> os.PathLike:
    names = sorted(p.name for p in manual.iterdir() if p.name != "checksums.tsv")
    path = manual / "checksums.tsv"
    path.write_text(synthetic.checksums_tsv(manual, names))
    return path


def _compress(name: str, data: bytes) -> bytes:
    return lzma.compress(data) if name.endswith(".xz") else gzip.compress(data)


def _assert_nothing_looks_complete(data_dir, config):
    builder = tfds.builder("qmnist", config=config, data_dir=os.fspath(data_dir))
    assert not builder.is_prepared()
    written = [p for p in data_dir.rglob("*") if p.is_file()
               and re.search(r"\.(tfrecord|array_record)|^dataset_info\.json$|^features\.json$",
                             p.name)]
    assert [p for p in written if not any(d.startswith("incomplete.") for d in p.parts)] == []


def _rebuild_succeeds(tmp_path, data_dir, config):
    good = config_files(config, tmp_path / "good")
    builder = build(config, data_dir, good, DUMMY_DATA / "checksums.tsv")
    assert builder.is_prepared()
    assert all(s.num_examples for s in builder.info.splits.values())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _size(data: bytes) -> str:
    return str(tfds.core.units.Size(len(data)))


# --- The checksum gate: bytes changed after their checksums were registered. ---
def _flip_byte(data: bytes) -> bytes:
    spoilt = bytearray(data)
    spoilt[len(spoilt) // 2] ^= 0x01
    return bytes(spoilt)


TAMPERING = {
    "flipped byte": _flip_byte,
    "truncated": lambda data: data[: len(data) // 2],
    "html error page": lambda data: b"<!DOCTYPE html><html><body>404: Not Found</body></html>\n",
}


@pytest.mark.parametrize("tamper", TAMPERING)
@pytest.mark.parametrize("key", ["train_images", "train_labels", "nist_images", "nist_labels"])
def test_checksum_gate(tmp_path, key, tamper):
    config = "nist" if key.startswith("nist") else "qmnist"
    manual = _manual_dir(tmp_path, config)
    checksums = _register(manual)
    name = downloads.FILES[key]
    good = (manual / name).read_bytes()
    (manual / name).write_bytes(TAMPERING[tamper](good))
    data_dir = tmp_path / "data"
    with pytest.raises(download_manager.NonMatchingChecksumError) as error:
        build(config, data_dir, manual, checksums)
    message = str(error.value)
    assert f"downloaded to {manual / name}, has wrong checksum" in message
    assert f"Expected: UrlInfo(size={_size(good)}, checksum='{_sha256(good)}'" in message
    spoilt = (manual / name).read_bytes()
    assert f"Got: UrlInfo(size={_size(spoilt)}, checksum='{_sha256(spoilt)}'" in message
    _assert_nothing_looks_complete(data_dir, config)
    _rebuild_succeeds(tmp_path, data_dir, config)


# --- The decoder: spoilt files that carry their own checksums. ---
def _rewrite(name: str, transform):
    """A spoiler that decodes the dummy file, changes its IDX bytes, recompresses them."""
    def spoil(data: bytes) -> bytes:
        raw = lzma.decompress(data) if name.endswith(".xz") else gzip.decompress(data)
        return _compress(name, transform(raw))
    return spoil


def _relabel(name: str, column: int, value: int):
    def spoil(data: bytes) -> bytes:
        labels = idx.read_idx(DUMMY_DATA / name)
        labels[3, column] = value
        return _compress(name, idx.encode_idx(labels))
    return spoil


def _count(raw: bytes, count: int) -> bytes:
    return raw[:4] + count.to_bytes(4, "big") + raw[8:]


def _images_32x32(raw: bytes) -> bytes:
    images = np.frombuffer(raw[16:], np.uint8).reshape(-1, 28, 28)
    return idx.encode_idx(np.pad(images, ((0, 0), (2, 2), (2, 2))))


def _labels_7_columns(raw: bytes) -> bytes:
    labels = np.frombuffer(raw[12:], ">i4").reshape(-1, 8)
    return idx.encode_idx(labels[:, :7].astype(np.int32))


TRAIN_IMAGES, TRAIN_LABELS = downloads.FILES["train_images"], downloads.FILES["train_labels"]
NIST_IMAGES, NIST_LABELS = downloads.FILES["nist_images"], downloads.FILES["nist_labels"]
DECODER_CASES = {
    "gzip corrupt": ("qmnist", TRAIN_IMAGES, lambda d: d[:20] + bytes(64) + d[84:],
                     "corrupt or truncated compressed data"),
    "gzip ends early": ("qmnist", TRAIN_IMAGES, lambda d: d[: len(d) - 200],
                        "corrupt or truncated compressed data"),
    "xz corrupt": ("nist", NIST_IMAGES, lambda d: d[:40] + bytes(64) + d[104:],
                   "corrupt or truncated compressed data"),
    "xz ends early": ("nist", NIST_LABELS, lambda d: d[: len(d) - 30],
                      "corrupt or truncated compressed data"),
    "wrong magic": ("qmnist", TRAIN_LABELS,
                    _rewrite(TRAIN_LABELS, lambda r: b"\0\0\x08\x02" + r[4:]),
                    "magic number 0x00000802, expected 0x00000C02"),
    "not IDX at all": ("nist", NIST_LABELS, lambda d: lzma.compress(b"PK\x03\x04 zip file"),
                       "bad magic number 0x504B0304: not an IDX file"),
    "32x32 images": ("qmnist", TRAIN_IMAGES, _rewrite(TRAIN_IMAGES, _images_32x32),
                     "dimensions 20x32x32, expected Nx28x28"),
    "7-column labels": ("nist", NIST_LABELS, _rewrite(NIST_LABELS, _labels_7_columns),
                        "dimensions 30x7, expected Nx8"),
    "count above payload": ("qmnist", TRAIN_LABELS, _rewrite(TRAIN_LABELS, lambda r: _count(r, 21)),
                            "payload truncated: header declares 21 rows, the data ends after 20"),
    "trailing bytes": ("nist", NIST_IMAGES, _rewrite(NIST_IMAGES, lambda r: r + b"\0" * 10),
                       "10 trailing bytes after the 30 rows the header declares"),
    "count below payload": ("qmnist", TRAIN_LABELS, _rewrite(TRAIN_LABELS, lambda r: _count(r, 19)),
                            "32 trailing bytes after the 19 rows the header declares"),
    "fewer images than labels": (
        "qmnist", TRAIN_IMAGES,
        _rewrite(TRAIN_IMAGES, lambda r: _count(r, 19)[: 16 + 19 * 784]),
        f"19 images, but .*{TRAIN_LABELS} has 20 label rows"),
    "class 10": ("qmnist", TRAIN_LABELS, _relabel(TRAIN_LABELS, 0, 10),
                 "row 3 has class 10, expected 0-9"),
    "negative writer id": ("nist", NIST_LABELS, _relabel(NIST_LABELS, 2, -7),
                           r"row 3 has writer_id \(column 2\) -7, expected a non-negative value"),
}


def _spoilt_files(tmp_path, case: str):
    """A manual dir holding the case's spoilt file, with checksums registering it as is."""
    config, name, spoil, message = DECODER_CASES[case]
    manual = _manual_dir(tmp_path, config)
    (manual / name).write_bytes(spoil((manual / name).read_bytes()))
    return config, name, message, manual, _register(manual)


@pytest.mark.parametrize("case", DECODER_CASES)
def test_decoder_errors_through_a_build(tmp_path, case):
    config, name, message, manual, checksums = _spoilt_files(tmp_path, case)
    data_dir = tmp_path / "data"
    with pytest.raises(IdxFormatError, match=message) as error:
        build(config, data_dir, manual, checksums)
    assert name in str(error.value)
    _assert_nothing_looks_complete(data_dir, config)
    _rebuild_succeeds(tmp_path, data_dir, config)


@pytest.mark.parametrize("case", ["class 10", "xz corrupt"])
def test_decoder_errors_through_the_cli(tmp_path, case):
    config, name, message, manual, checksums = _spoilt_files(tmp_path, case)
    data_dir = tmp_path / "data"
    with pytest.raises(IdxFormatError, match=re.escape(name) + ": " + message):
        _tfds_build(f"qmnist/{config}", "--manual_dir", os.fspath(manual), "--data_dir",
                    os.fspath(data_dir), checksums=checksums)
    _assert_nothing_looks_complete(data_dir, config)


def test_cli_checksum_gate_names_the_file(tmp_path):
    manual = _manual_dir(tmp_path, "qmnist")
    checksums = _register(manual)
    (manual / TRAIN_LABELS).write_bytes(_flip_byte((manual / TRAIN_LABELS).read_bytes()))
    with pytest.raises(download_manager.NonMatchingChecksumError) as error:
        _tfds_build("qmnist/qmnist", "--manual_dir", os.fspath(manual), "--data_dir",
                    os.fspath(tmp_path / "data"), checksums=checksums)
    assert f"{manual / TRAIN_LABELS}, has wrong checksum" in str(error.value)
    _assert_nothing_looks_complete(tmp_path / "data", "qmnist")

