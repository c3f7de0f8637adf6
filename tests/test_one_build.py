"""One default build serves every reader: TFRecord shards for tf.data and an array_record
copy of each, recorded as an alternative file format, for `tfds.data_source`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds
from array_record.python import array_record_module

import qmnist_tfds
from qmnist_tfds import shards
from tests.conftest import DUMMY_DATA, TESTS_DIR, build, tfrecords
from tests.test_cli import tfds_in_process


def _version_dir(data_dir, config="qmnist"):
    return data_dir / "qmnist" / config / "1.0.0"


def _records(paths, file_format: str) -> list[bytes]:
    if file_format == "tfrecord":
        return tfrecords(paths)
    readers = [array_record_module.ArrayRecordReader(os.fspath(p)) for p in paths]
    return [record for reader in readers for record in reader.read_all()]


@pytest.mark.parametrize("config", ["qmnist", "nist"])
def test_every_split_is_written_in_both_formats_with_the_same_records(dummy_build, config):
    folder = _version_dir(dummy_build, config)
    info = json.loads((folder / "dataset_info.json").read_text())
    assert (info["fileFormat"], info["alternativeFileFormats"]) == ("tfrecord", ["array_record"])
    builder = tfds.builder(f"qmnist/{config}", data_dir=os.fspath(dummy_build))
    for split, split_info in builder.info.splits.items():
        tfrecords = [folder / name for name in split_info.filenames]
        copies = [folder / name.replace(".tfrecord-", ".array_record-")
                  for name in split_info.filenames]
        assert all(".tfrecord-" in p.name for p in tfrecords) and all(p.exists() for p in copies)
        expected = _records(tfrecords, "tfrecord")
        assert len(expected) == split_info.num_examples
        assert _records(copies, "array_record") == expected, split
    # The digests cover both formats, and check out.
    report = shards.check_digests(folder)
    named = {line.split(":")[0] for line in report}
    assert all(line.endswith(": OK") for line in report)
    assert {n.split(".")[1].split("-")[0] for n in named} == {"tfrecord", "array_record"}
    assert len(named) == 2 * sum(len(s.filenames) for s in builder.info.splits.values())


def test_every_reader_on_the_same_data_dir(dummy_build):
    data_dir = os.fspath(dummy_build)
    streamed = tfds.as_numpy(tfds.load("qmnist", split="test50k", data_dir=data_dir,
                                       batch_size=-1))
    arrays = qmnist_tfds.load_arrays("test50k", data_dir=data_dir)
    source = tfds.data_source("qmnist", split="test50k", data_dir=data_dir)
    builder = tfds.builder("qmnist", data_dir=data_dir)
    from_builder = builder.as_data_source(split="test50k")
    for key, column in streamed.items():
        np.testing.assert_array_equal(arrays[key], column)
        np.testing.assert_array_equal(np.stack([source[i][key] for i in range(10)]), column)
        np.testing.assert_array_equal(
            np.stack([from_builder[i][key] for i in range(10)]), column)
    # The same builder still streams its main format after serving a data source.
    assert len(list(builder.as_dataset(split="test50k"))) == 10


def test_every_reader_without_the_import(dummy_build):
    """TFDS alone (no `import qmnist_tfds`) reads both formats of the same build, in a
    process of its own."""
    done = subprocess.run([sys.executable, os.fspath(TESTS_DIR / "tfds_alone_reads.py"),
                           os.fspath(dummy_build)], cwd=dummy_build, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["10", "10", "True", "ArrayRecordDataSource"]


def test_tfds_writer_path_writes_the_copy_too(tmp_path):
    builder = build("qmnist", tmp_path, DUMMY_DATA, DUMMY_DATA / "checksums.tsv",
                    max_examples_per_split=5)
    folder = builder.data_path
    for split_info in builder.info.splits.values():
        tfrecords = [folder / name for name in split_info.filenames]
        copies = [folder / n.replace(".tfrecord-", ".array_record-") for n in split_info.filenames]
        assert _records(copies, "array_record") == _records(tfrecords, "tfrecord")
    source = tfds.data_source("qmnist", split="train", data_dir=os.fspath(tmp_path))
    assert len(source) == 5 and source[4]["image"].shape == (28, 28, 1)


def test_one_format_on_request(tmp_path):
    only = build("qmnist", tmp_path / "tfrecord", DUMMY_DATA, DUMMY_DATA / "checksums.tsv",
                 builder_kwargs={"array_record_copy": False})
    assert not list(only.data_path.glob("*.array_record-*"))
    array_record = build("qmnist", tmp_path / "ar", DUMMY_DATA, DUMMY_DATA / "checksums.tsv",
                         file_format="array_record")
    assert not list(array_record.data_path.glob("*.tfrecord-*"))
    info = json.loads((array_record.data_path / "dataset_info.json").read_text())
    assert info["fileFormat"] == "array_record" and not info.get("alternativeFileFormats")
    source = tfds.data_source("qmnist", split="test", data_dir=os.fspath(tmp_path / "ar"))
    assert len(source) == 10_010


def test_a_dataset_without_the_copy_says_how_to_add_it(tfrecord_only_build, tmp_path):
    """As one prepared by an earlier version: TFDS's `convert_format`, as the message says,
    adds the copy in place (here in a copy of the suite's TFRecord-only build), and the
    data source then reads it."""
    data_dir = tmp_path / "data"
    shutil.copytree(tfrecord_only_build / "qmnist", data_dir / "qmnist")
    folder = _version_dir(data_dir)
    with pytest.raises(NotImplementedError) as raised:
        tfds.data_source("qmnist", split="test", data_dir=os.fspath(data_dir))
    message = str(raised.value)
    assert f"qmnist/qmnist at {folder} holds no random-access copy (tfrecord only)" in message
    command = message.split("\n")[1].split()
    assert command[:2] == ["tfds", "convert_format"]
    assert "tfds build --imports qmnist_tfds qmnist/qmnist" in message
    tfds_in_process(*command[1:], "--num_workers=1")  # the command, in this process
    source = tfds.data_source("qmnist", split="test", data_dir=os.fspath(data_dir))
    stream = tfds.as_numpy(tfds.load("qmnist", split="test", data_dir=os.fspath(data_dir),
                                     batch_size=-1))
    assert len(source) == 10_010
    for i in (0, 5_000, 10_009):
        np.testing.assert_array_equal(source[i]["image"], stream["image"][i])
        assert source[i]["nist_index"] == stream["nist_index"][i]


def test_data_source_without_a_data_dir_reads_the_copy(dummy_build, monkeypatch):
    """`tfds.data_source` asks for array_record files where no data_dir is given, as
    Grain's documentation calls it: the default build serves it from its copy."""
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", os.fspath(dummy_build))
    source = tfds.data_source("qmnist", split="test50k")
    assert len(source) == 10 and source[9]["image"].shape == (28, 28, 1)
    builder = tfds.builder("qmnist", file_format="array_record")
    assert builder.info.file_format == tfds.core.FileFormat.TFRECORD  # tfds.load still works
    assert len(list(builder.as_dataset(split="test50k"))) == 10
    # A format the prepared dataset does not hold is refused, as TFDS refuses it.
    with pytest.raises(ValueError, match="File format is already set"):
        tfds.builder("qmnist", file_format="parquet")
    # Where nothing is prepared, the format asked for is the one built.
    fresh = tfds.builder("qmnist", data_dir=os.fspath(dummy_build / "none"),
                         file_format="array_record")
    assert fresh.info.file_format == tfds.core.FileFormat.ARRAY_RECORD
