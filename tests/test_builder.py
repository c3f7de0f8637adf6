"""The TFDS builder, on the dummy data in dummy_data/ (synthetic files, upstream layout)."""

from __future__ import annotations

import hashlib
import os
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

from qmnist_tfds import QMNIST, downloads, examples, idx
from tests.conftest import DUMMY_DATA, build


class QmnistConfigTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = QMNIST
    BUILDER_CONFIG_NAMES_TO_TEST = ["qmnist"]
    DL_DOWNLOAD_RESULT = downloads.FILES
    EXAMPLE_DIR = os.fspath(DUMMY_DATA)  # not beside an installed builder: wheels lack it
    SPLITS = {"train": 20, "test": 10_010, "test10k": 10_000, "test50k": 10}
    OVERLAPPING_SPLITS = ["test", "test10k", "test50k"]


class NistConfigTest(tfds.testing.DatasetBuilderTestCase):
    DATASET_CLASS = QMNIST
    BUILDER_CONFIG_NAMES_TO_TEST = ["nist"]
    DL_DOWNLOAD_RESULT = downloads.FILES
    EXAMPLE_DIR = os.fspath(DUMMY_DATA)
    SPLITS = {"nist": 30}


# Builds through download_and_prepare, with the dummy files as a manual dir.
def _load_all(data_dir, split, config="qmnist"):
    return tfds.as_numpy(tfds.load(f"qmnist/{config}", split=split, data_dir=os.fspath(data_dir),
                                   batch_size=-1))


def test_splits_keep_upstream_order_and_every_column(dummy_build):
    cases = [("qmnist", "train", "qmnist-train"), ("qmnist", "test", "qmnist-test"),
             ("nist", "nist", "xnist")]
    for config, split, stem in cases:
        data = _load_all(dummy_build, split, config)
        images = idx.read_idx(next(DUMMY_DATA.glob(f"{stem}-images-*")))
        labels = idx.read_idx(next(DUMMY_DATA.glob(f"{stem}-labels-*")))
        np.testing.assert_array_equal(data["image"][..., 0], images)
        np.testing.assert_array_equal(data["label"], labels[:, 0])
        for name, (column, _) in examples.METADATA_COLUMNS.items():
            assert data[name].dtype == np.int32
            np.testing.assert_array_equal(data[name], labels[:, column], err_msg=name)


def test_test10k_and_test50k_are_slices_of_test(dummy_build):
    test = _load_all(dummy_build, "test")
    for split, part in [("test10k", slice(0, 10_000)), ("test50k", slice(10_000, None))]:
        data = _load_all(dummy_build, split)
        assert data.keys() == test.keys()
        for name in test:
            np.testing.assert_array_equal(data[name], test[name][part], err_msg=name)
        sliced = _load_all(dummy_build, f"test[{part.start}:{part.stop or ''}]")
        for name in test:
            np.testing.assert_array_equal(sliced[name], data[name], err_msg=name)


def test_as_supervised_gives_image_and_label(dummy_build):
    ds = tfds.load("qmnist", split="train", data_dir=os.fspath(dummy_build), as_supervised=True)
    image, label = next(iter(tfds.as_numpy(ds)))
    assert image.shape == (28, 28, 1) and image.dtype == np.uint8
    assert label == idx.read_idx(DUMMY_DATA / downloads.FILES["train_labels"])[0, 0]


def test_info_documents_every_feature(dummy_build):
    builder = tfds.builder("qmnist", data_dir=os.fspath(dummy_build))
    features = builder.info.features
    assert set(features) == {"image", "label", *examples.METADATA_COLUMNS}
    for name, (_, doc) in examples.METADATA_COLUMNS.items():
        assert features[name].doc.desc == doc
    assert features["label"].names == [str(d) for d in range(10)]
    assert builder.info.disable_shuffling
    assert "Cold Case" in builder.info.citation
    assert builder.info.splits["test10k"].num_examples == 10_000


def _split_files(data_dir):
    return [p for p in data_dir.rglob("*") if p.is_file() and "incomplete." not in str(p)
            and re.search(r"\.(tfrecord|array_record)", p.name)]


@pytest.mark.parametrize("config", ["qmnist", "nist"])
def test_files_failing_the_real_checksums_are_rejected(tmp_path, config):
    """Synthetic files under the real names: the real checksums reject them, naming the file."""
    with pytest.raises(download_manager.NonMatchingChecksumError) as error:
        build(config, tmp_path / "data", DUMMY_DATA)
    message = str(error.value)
    names = [downloads.FILES[key] for key in downloads.CONFIG_FILES[config]]
    name = next(n for n in names if f"{n} " in message or f"{n}'" in message)
    real = QMNIST.url_infos[downloads.BASE_URL + name]
    actual = hashlib.sha256((DUMMY_DATA / name).read_bytes()).hexdigest()
    assert f"Expected: UrlInfo(size={real.size}, checksum='{real.checksum}'" in message
    assert f"checksum='{actual}'" in message
    builder = tfds.builder("qmnist", config=config, data_dir=os.fspath(tmp_path / "data"))
    assert not builder.is_prepared()
    assert not _split_files(tmp_path / "data")
