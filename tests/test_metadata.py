"""`mnist_metadata` and `join_tfds_id` against the real label files, MNIST's known class
counts, and the record order of datasets built by TFDS's own `mnist` module."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import qmnist_tfds
from qmnist_tfds import downloads, idx, metadata
from tests.conftest import DUMMY_DATA, FASHION_MNIST_DIR, config_files, registered_checksums

# MNIST's class counts, as published with MNIST and computed by others from its files.
MNIST_COUNTS = {
    "train": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    "test": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
}


@pytest.fixture(scope="module")
def real(upstream_dir, tmp_path_factory):
    """mnist_metadata of both splits, both orders, on the real label files."""
    data_dir = tmp_path_factory.mktemp("metadata")
    return {(split, order): qmnist_tfds.mnist_metadata(split, order=order, data_dir=data_dir,
                                                       manual_dir=upstream_dir)
            for split in ("train", "test") for order in ("upstream", "tfds")}


def test_metadata_is_mnists_digits_with_the_builders_features(real, upstream_dir, tmp_path):
    features = qmnist_tfds.QMNIST(data_dir=os.fspath(tmp_path)).info.features
    for split, key, count in (("train", "train_labels", 60_000), ("test", "test_labels", 10_000)):
        columns = real[split, "upstream"]
        assert sorted(columns) == sorted([*(k for k in features if k != "image"), "mnist_index"])
        for name in features:
            if name != "image":
                assert columns[name].dtype == features[name].np_dtype, name
                assert columns[name].shape == (count,)
        assert np.bincount(columns["label"]).tolist() == MNIST_COUNTS[split]
        np.testing.assert_array_equal(columns["mnist_index"], np.arange(count))
        rows = idx.read_extended_labels(upstream_dir / downloads.FILES[key])[:count]
        np.testing.assert_array_equal(columns["writer_id"], rows[:, 2])
        np.testing.assert_array_equal(columns["nist_index"], rows[:, 5])
    assert np.bincount(real["test", "upstream"]["hsf_series"]).tolist() == [4999, 0, 0, 0, 5001]


def test_tfds_order_is_a_permutation_of_the_upstream_rows(real):
    for split in ("train", "test"):
        upstream, ordered = real[split, "upstream"], real[split, "tfds"]
        records = ordered["mnist_index"]
        np.testing.assert_array_equal(np.sort(records), upstream["mnist_index"])
        np.testing.assert_array_equal(records, metadata.tfds_order(split, len(records)))
        for name, values in upstream.items():
            np.testing.assert_array_equal(ordered[name], values[records], err_msg=name)
    # What tfds.load("mnist", split="train") gives first, record by record.
    assert real["train", "tfds"]["label"][:10].tolist() == [4, 1, 0, 7, 8, 1, 2, 7, 1, 6]


def _records(data_dir, split: str, dataset: str = "fashion_mnist", **load_kwargs):
    """(tfds_id, label) of every record read by tfds.load, images left encoded."""
    read = tfds.load(dataset, split=split, data_dir=os.fspath(data_dir), batch_size=-1,
                     decoders={"image": tfds.decode.SkipDecoding()},
                     read_config=tfds.ReadConfig(add_tfds_id=True), **load_kwargs)
    ids = [i.decode() for i in read["tfds_id"].numpy()]
    return ids, read["label"].numpy()


def test_tfds_order_is_that_of_tfds_own_writer(fashion_mnist_build):
    """Every record of both splits of TFDS's fashion_mnist (the same builder code as
    mnist), against Debian's IDX labels permuted by `tfds_order`."""
    for split, name in (("train", "train"), ("test", "t10k")):
        labels = idx.read_idx(FASHION_MNIST_DIR / f"{name}-labels-idx1-ubyte.gz")
        ids, stored = _records(fashion_mnist_build, split)
        order = metadata.tfds_order(split, len(labels))
        np.testing.assert_array_equal(stored, labels[order])
        prefix = f"fashion_mnist-{split}.tfrecord-00000-of-00001__"
        assert ids == [f"{prefix}{p}" for p in range(len(labels))]


def _fashion_metadata(split: str, name: str) -> dict[str, np.ndarray]:
    labels = idx.read_idx(FASHION_MNIST_DIR / f"{name}-labels-idx1-ubyte.gz").astype(np.int64)
    return {"label": labels, "mnist_index": np.arange(len(labels)),
            "writer_id": np.arange(len(labels), dtype=np.int32) + 7}


def _joined(data_dir, split, join, **load_kwargs):
    read = tfds.load("fashion_mnist", split=split, data_dir=os.fspath(data_dir),
                     decoders={"image": tfds.decode.SkipDecoding()},
                     read_config=tfds.ReadConfig(add_tfds_id=True), **load_kwargs)
    return list(read.map(join).batch(4096).as_numpy_iterator())


def test_join_by_tfds_id_in_shuffled_and_sliced_reads(fashion_mnist_build):
    columns = _fashion_metadata("test", "t10k")
    join = metadata.join_tfds_id("test", columns, dataset="fashion_mnist")
    order = metadata.tfds_order("test", 10_000)
    for split, shuffle, rows in (("test[25%:50%]", False, slice(2500, 5000)),
                                 ("test", True, slice(None))):
        batches = _joined(fashion_mnist_build, split, join, shuffle_files=shuffle)
        index = np.concatenate([b["mnist_index"] for b in batches])
        positions = [int(i.rsplit(b"__", 1)[1]) for b in batches for i in b["tfds_id"]]
        np.testing.assert_array_equal(index, order[positions])
        assert sorted(index.tolist()) == sorted(order[rows].tolist())
        np.testing.assert_array_equal(np.concatenate([b["writer_id"] for b in batches]),
                                      index + 7)
        np.testing.assert_array_equal(np.concatenate([b["label"] for b in batches]),
                                      columns["label"][index])


def test_join_fails_naming_the_record_whose_label_differs(fashion_mnist_build):
    columns = _fashion_metadata("test", "t10k")
    position = 1234
    digit = metadata.tfds_order("test", 10_000)[position]
    columns["label"][digit] = (columns["label"][digit] + 1) % 10
    join = metadata.join_tfds_id("test", columns, dataset="fashion_mnist")
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"fashion_mnist-test.tfrecord-00000-of-00001__{position}\b"
                             rf"(.|\n)*mnist_index(.|\n)*\b{digit}\b"):
        _joined(fashion_mnist_build, "test", join)
    # Records of another file (here: another dataset's name) are refused as such.
    wrong_name = metadata.join_tfds_id("test", _fashion_metadata("test", "t10k"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not one of the 10000 records"):
        _joined(fashion_mnist_build, "test[:3]", wrong_name)


def test_metadata_downloads_once_verified_then_reads_the_download(upstream_dir, tmp_path,
                                                                  monkeypatch):
    """From a mirror into `<data_dir>/downloads/`, as a build downloads; later calls read
    that copy with the mirror gone; a file that fails its checksum is refused."""
    mirror = tmp_path / "mirror"
    shutil.copytree(upstream_dir, mirror)
    monkeypatch.setenv(downloads.MIRROR_ENV, mirror.as_uri() + "/")
    first = qmnist_tfds.mnist_metadata("test", data_dir=tmp_path / "data")
    copy = metadata.label_files(["test_labels"], data_dir=tmp_path / "data")["test_labels"]
    # Where the builder's downloads land (TFDS's DownloadManager, dataset_name="qmnist").
    assert copy.parent == tmp_path / "data" / "downloads" / "qmnist"
    shutil.rmtree(mirror)
    again = qmnist_tfds.mnist_metadata("test", data_dir=tmp_path / "data")
    np.testing.assert_array_equal(first["writer_id"], again["writer_id"])

    tampered = tmp_path / "tampered"
    tampered.mkdir()
    data = bytearray((upstream_dir / downloads.FILES["train_labels"]).read_bytes())
    data[-20] ^= 1
    (tampered / downloads.FILES["train_labels"]).write_bytes(bytes(data))
    with pytest.raises(Exception, match="wrong checksum"):
        qmnist_tfds.mnist_metadata("train", data_dir=tmp_path / "data", manual_dir=tampered)


def test_metadata_reads_the_downloads_of_a_prepared_dataset(tmp_path, monkeypatch):
    """A `qmnist` build that downloaded (from a mirror that is gone since) leaves
    the label files where `mnist_metadata` looks: no second download."""
    mirror = config_files("qmnist", tmp_path / "mirror")
    monkeypatch.setenv(downloads.MIRROR_ENV, mirror.as_uri() + "/")
    with registered_checksums(DUMMY_DATA / "checksums.tsv"):
        tfds.builder("qmnist", config="qmnist", data_dir=os.fspath(tmp_path / "data"),
                     array_record_copy=False).download_and_prepare()
        shutil.rmtree(mirror)
        columns = qmnist_tfds.mnist_metadata("train", data_dir=tmp_path / "data")
    labels = idx.read_extended_labels(DUMMY_DATA / downloads.FILES["train_labels"])
    np.testing.assert_array_equal(columns["label"], labels[:, 0])
    np.testing.assert_array_equal(columns["writer_digit_index"], labels[:, 3])


def test_metadata_offline_fails_fast_with_help(tmp_path, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(downloads.MIRROR_ENV, f"http://127.0.0.1:{port}/q/")
    with pytest.raises(tfds.download.DownloadError) as raised:
        qmnist_tfds.mnist_metadata("train", data_dir=tmp_path)
    message = str(raised.value)
    assert f"connection refused by 127.0.0.1:{port}" in message
    assert "It needs: qmnist-train-labels-idx2-int.gz." in message
    assert "pass manual_dir=DIR to qmnist_tfds.mnist_metadata" in message
    assert f"set {downloads.MIRROR_ENV}=URL." in message


@pytest.mark.parametrize(("arguments", "named"), [
    (("validation",), "split"), (("test10k",), "split"),
    (("train",), "order"),
])
def test_metadata_arguments_are_checked(arguments, named, tmp_path):
    kwargs = {"order": "shuffled"} if named == "order" else {}
    with pytest.raises(ValueError, match=f"^{named} must be one of"):
        qmnist_tfds.mnist_metadata(*arguments, data_dir=tmp_path, **kwargs)


def test_metadata_and_report_import_no_tensorflow(upstream_dir, tmp_path):
    """In a fresh interpreter: neither imports TensorFlow."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import qmnist_tfds
        from qmnist_tfds import evaluation

        upstream, data_dir = sys.argv[1], sys.argv[2]
        train = qmnist_tfds.mnist_metadata("train", order="tfds", data_dir=data_dir,
                                           manual_dir=upstream)
        print("labels", train["label"][:10].tolist())
        test = qmnist_tfds.mnist_metadata("test", data_dir=data_dir, manual_dir=upstream)
        predictions = np.zeros(60_000, dtype=np.int64)
        print(evaluation.report(predictions, "test", data_dir=data_dir, manual_dir=upstream))
        print("tensorflow imported:", "tensorflow" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script, os.fspath(upstream_dir),
                           os.fspath(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "labels [4, 1, 0, 7, 8, 1, 2, 7, 1, 6]"
    assert lines[-1] == "tensorflow imported: False"
    assert any(line.startswith("test10k hsf4") and "5,001" in line for line in lines)
