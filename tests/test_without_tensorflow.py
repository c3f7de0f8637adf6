"""An install without TensorFlow, as JAX users have it (`.ci/stacks/jax.txt`).

The package builds array_record files from the dummy data, and `tfds.data_source`,
Grain and `load_arrays` read them; `mnist_metadata` and `evaluation.report` read
the real label files; nothing imports TensorFlow, and what needs it says how to
install it. Where TensorFlow is installed, tests/test_dropin.py checks the same
paths with TensorFlow hidden from the interpreter.
"""

from __future__ import annotations

import gzip
import importlib.util
import sys

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is not None:
    pytest.skip("TensorFlow is installed: this file checks an install without it "
                "(bash .ci/stack jax)", allow_module_level=True)

import grain  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

import qmnist_tfds  # noqa: E402
from qmnist_tfds import downloads, evaluation  # noqa: E402
from tests.conftest import DUMMY_DATA, registered_checksums  # noqa: E402


def _upstream_train() -> tuple[np.ndarray, np.ndarray]:
    """The dummy train files decoded by hand: 16 header bytes before the pixels, 12
    before big-endian int32 rows of 8 columns."""
    with gzip.open(DUMMY_DATA / downloads.FILES["train_images"]) as f:
        pixels = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28, 1)
    with gzip.open(DUMMY_DATA / downloads.FILES["train_labels"]) as f:
        columns = np.frombuffer(f.read()[12:], ">i4").reshape(-1, 8)
    return pixels, columns


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def train_source(data_dir):
    with registered_checksums(DUMMY_DATA / "checksums.tsv"):
        return tfds.data_source(
            "qmnist", split="train", data_dir=data_dir,
            builder_kwargs={"file_format": "array_record"},
            download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                manual_dir=DUMMY_DATA)})


def test_none_of_tensorflow_beam_or_croissant_is_installed():
    for name in ("tensorflow", "apache_beam", "mlcroissant"):
        assert importlib.util.find_spec(name) is None, name


def test_data_source_serves_the_files_pixels_and_metadata(train_source):
    pixels, columns = _upstream_train()
    assert len(train_source) == len(pixels)
    for i in range(len(train_source)):
        example = train_source[i]
        np.testing.assert_array_equal(example["image"], pixels[i])
        assert example["label"] == columns[i, 0]
        assert example["writer_id"] == columns[i, 2]
        assert example["nist_index"] == columns[i, 5]
    assert "tensorflow" not in sys.modules


def test_grain_reads_every_example_once_per_epoch(train_source):
    pixels, columns = _upstream_train()
    dataset = (grain.MapDataset.source(train_source).seed(7).shuffle()
               .map(lambda x: (x["image"], x["nist_index"])).batch(4))
    seen = [index for _, indices in dataset for index in indices.tolist()]
    assert sorted(seen) == sorted(columns[:, 5].tolist())
    assert seen != columns[:, 5].tolist()  # shuffled
    assert "tensorflow" not in sys.modules


def test_load_arrays_decodes_the_array_record_build(train_source, data_dir):
    pixels, columns = _upstream_train()
    train = qmnist_tfds.load_arrays("train", data_dir=data_dir)
    np.testing.assert_array_equal(train["image"], pixels)
    np.testing.assert_array_equal(train["label"], columns[:, 0])
    np.testing.assert_array_equal(train["writer_id"], columns[:, 2])
    assert (train["image"].dtype, train["label"].dtype, train["writer_id"].dtype) == \
        (np.uint8, np.int64, np.int32)
    assert "tensorflow" not in sys.modules


def test_what_needs_tensorflow_names_the_install_command(train_source, tmp_path):
    with pytest.raises(FileNotFoundError, match="qmnist/qmnist is not prepared in .*tfds build"):
        qmnist_tfds.load_arrays("train", data_dir=tmp_path)
    with pytest.raises(ImportError, match=r'pip install "qmnist-tfds\[tensorflow\]"'):
        tfds.builder("qmnist", data_dir=tmp_path).download_and_prepare()
    assert "tensorflow" not in sys.modules


def test_mnist_metadata_and_report_from_the_real_label_files(upstream_dir):
    """MNIST's known class counts, and a report of a classifier that always says 1."""
    train = qmnist_tfds.mnist_metadata("train", manual_dir=upstream_dir)
    assert np.bincount(train["label"]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421,
                                                     5918, 6265, 5851, 5949]
    test = qmnist_tfds.mnist_metadata("test", order="tfds", manual_dir=upstream_dir)
    assert np.bincount(test["label"]).tolist() == [980, 1135, 1032, 1010, 982, 892, 958,
                                                    1028, 974, 1009]
    assert sorted(test["mnist_index"].tolist()) == list(range(10_000))
    ones = evaluation.report(np.ones(10_000, dtype=np.int64), "test10k",
                             manual_dir=upstream_dir)
    first = ones.rows[0]
    assert (first.name, first.error.n, first.error.errors) == ("test10k", 10_000, 10_000 - 1135)
    assert "tensorflow" not in sys.modules
