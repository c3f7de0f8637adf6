"""The builder's own shard writer produces what TFDS's per-example writer produces."""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import subprocess
import sys
import tracemalloc
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from array_record.python import array_record_data_source
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow_datasets.core import example_serializer, naming, writer
from tensorflow_datasets.core.utils import shard_utils

from qmnist_tfds import downloads, examples, fail_fast, records, shards, tfds_internals, verify
from qmnist_tfds.qmnist import qmnist_dataset_builder
from tests.conftest import DUMMY_DATA, REPO_ROOT, build, tfrecords

FORMATS = ("tfrecord", "array_record")


def _build(data_dir, config, file_format, tfds_path=False, builder_kwargs=None,
           **download_options):
    """Builds a config from the dummy data; with `tfds_path`, through TFDS's own writer.

    That path is forced the way a TFDS lacking one of the fast writer's
    internals forces it.
    """
    generic = mock.patch.object(tfds_internals, "missing", lambda: (
        "tensorflow_datasets.core.dataset_builder.GeneratorBasedBuilder._example_writer",))
    with generic if tfds_path else contextlib.nullcontext():
        return build(config, data_dir, DUMMY_DATA, DUMMY_DATA / "checksums.tsv",
                     file_format=file_format, builder_kwargs=builder_kwargs,
                     **download_options)


def _records(builder, split: str) -> list[tf.train.Example]:
    """The split's stored examples, undecoded, in file order."""
    paths = [os.fspath(builder.data_path / name) for name in builder.info.splits[split].filenames]
    if builder.info.file_format == tfds.core.FileFormat.ARRAY_RECORD:
        source = array_record_data_source.ArrayRecordDataSource(paths)
        raw = source.__getitems__(range(len(source)))
    else:
        raw = tfrecords(paths)
    return [tf.train.Example.FromString(record) for record in raw]


def _same_splits(ours, theirs) -> None:
    assert ours.info.splits.keys() == theirs.info.splits.keys()
    for split, info in theirs.info.splits.items():
        mine = ours.info.splits[split]
        assert mine.shard_lengths == info.shard_lengths, split
        assert mine.num_bytes == info.num_bytes, split
        assert mine.filenames == info.filenames, split
        got, expected = _records(ours, split), _records(theirs, split)
        assert len(got) == len(expected) == info.num_examples
        mismatched = [i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
        assert not mismatched, f"{split}: {len(mismatched)} examples differ, first {mismatched[0]}"


@pytest.mark.parametrize("file_format", FORMATS)
@pytest.mark.parametrize("config", ["qmnist", "nist"])
def test_same_shards_as_tfds_writer(tmp_path, config, file_format):
    ours = _build(tmp_path / "ours", config, file_format)
    theirs = _build(tmp_path / "tfds", config, file_format, tfds_path=True)
    _same_splits(ours, theirs)
    assert ours.info.features.to_json() == theirs.info.features.to_json()
    digest_files = sorted(f"qmnist-{split}.sha256" for split in ours.info.splits)
    assert sorted(os.listdir(ours.data_path)) == sorted(
        os.listdir(theirs.data_path) + digest_files)
    names = [name for info in ours.info.splits.values() for name in info.filenames]
    if file_format == "tfrecord":  # and the array_record copy of each shard
        copies = [name.replace(".tfrecord-", ".array_record-") for name in names]
        for name in copies:
            assert _copy_records(ours, name) == _copy_records(theirs, name), name
        names += copies
    assert sorted(shards.check_digests(ours.data_path)) == sorted(f"{n}: OK" for n in names)


def _copy_records(builder, name: str) -> list[tf.train.Example]:
    source = array_record_data_source.ArrayRecordDataSource([os.fspath(builder.data_path / name)])
    return [tf.train.Example.FromString(r) for r in source.__getitems__(range(len(source)))]


def test_digests_name_a_changed_or_missing_shard(tmp_path, capsys):
    builder = _build(tmp_path, "nist", "tfrecord", num_shards=3,
                     builder_kwargs={"array_record_copy": False})
    names = builder.info.splits["nist"].filenames
    command = [sys.executable, "-m", "qmnist_tfds.verify", os.fspath(builder.data_path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [f"{name}: OK" for name in names]
    shard = builder.data_path / names[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 1
    shard.write_bytes(bytes(data))
    (builder.data_path / names[2]).unlink()
    assert shards.check_digests(builder.data_path) == [
        f"{names[0]}: OK", f"{names[1]}: FAILED", f"{names[2]}: MISSING"]
    capsys.readouterr()
    assert verify.main([os.fspath(builder.data_path)]) == 1
    assert f"{names[1]}: FAILED" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no \\*.sha256 digest file"):
        shards.check_digests(tmp_path)
    assert verify.main([os.fspath(tmp_path)]) == 2
    assert "no *.sha256 digest file" in capsys.readouterr().err


def test_a_changed_tfds_internal_takes_tfds_writer_path(tmp_path, monkeypatch):
    """A TFDS whose `get_shard_boundaries` takes other parameter names: same dataset, slower."""
    ours = _build(tmp_path / "ours", "nist", "tfrecord")
    original = shard_utils.get_shard_boundaries

    def renamed(count, shards):  # TFDS's writer passes them by position
        return original(count, shards)

    monkeypatch.setattr(shard_utils, "get_shard_boundaries", renamed)
    tfds_internals.missing.cache_clear()
    try:
        assert tfds_internals.missing() == (
            "tensorflow_datasets.core.utils.shard_utils.get_shard_boundaries",)
        with mock.patch.object(shards, "write_split", side_effect=AssertionError("fast path")):
            theirs = _build(tmp_path / "tfds", "nist", "tfrecord")
    finally:
        monkeypatch.undo()
        tfds_internals.missing.cache_clear()
    assert tfds_internals.missing() == ()
    _same_splits(ours, theirs)


def test_shard_count_follows_download_config(tmp_path):
    """On the 30 dummy nist rows, which a default build writes as 30 shards."""
    ours = _build(tmp_path / "ours", "nist", "tfrecord", num_shards=3)
    theirs = _build(tmp_path / "tfds", "nist", "tfrecord", tfds_path=True, num_shards=3)
    assert ours.info.splits["nist"].shard_lengths == [10, 10, 10]
    _same_splits(ours, theirs)
    labels = examples.read_checked_labels(DUMMY_DATA / downloads.FILES["nist_labels"])
    loaded = tfds.as_numpy(ours.as_dataset(split="nist", batch_size=-1))
    np.testing.assert_array_equal(loaded["nist_index"], labels[:, 5])


def _write_tfrecords(folder, split, chunks, shard_config=None):
    """`shards.write_split` of `chunks` as TFRecord shards into `folder`."""
    template = naming.ShardedFileTemplate(data_dir=folder, dataset_name="d", split=split,
                                          filetype_suffix="tfrecord")
    return shards.write_split(split, chunks, filename_template=template,
                              example_writer=writer.ExampleWriter(tfds.core.FileFormat.TFRECORD),
                              shard_config=shard_config or shard_utils.ShardConfig())


class _TinyShards(shard_utils.ShardConfig):
    # TFDS 4.9.10 reads the sizes from the class (`calculate_number_shards` is a classmethod).
    min_shard_size = 100
    max_shard_size = 400


def test_shard_count_follows_tfds_size_rule(tmp_path):
    records = [[bytes([i % 256]) * (1 + i % 7) for i in range(j, j + 40)] for j in (0, 40, 80)]
    config = _TinyShards()
    info = _write_tfrecords(tmp_path, "train", iter(records), config)
    flat = [r for chunk in records for r in chunk]
    expected_shards = config.get_number_shards(sum(map(len, flat)), len(flat))
    assert expected_shards > 1
    assert len(info.shard_lengths) == expected_shards
    assert np.cumsum(info.shard_lengths).tolist() == shard_utils.get_shard_boundaries(
        len(flat), expected_shards)
    assert info.num_bytes == sum(map(len, flat))
    paths = [tmp_path / name for name in info.filenames]
    read = tfrecords(paths)
    assert read == flat


def test_failing_records_leave_no_shard(tmp_path):
    def chunks():
        yield [b"one", b"two"]
        raise OSError("source file vanished")

    with pytest.raises(OSError, match="vanished"):
        _write_tfrecords(tmp_path, "train", chunks())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="'train': no examples"):
        _write_tfrecords(tmp_path, "train", iter([]))


def test_memory_does_not_grow_with_the_split(tmp_path):
    record = bytes(500)
    chunks = ([record[:-1] + bytes([i % 256]) for i in range(1000)] for _ in range(200))
    tracemalloc.start()
    try:
        info = _write_tfrecords(tmp_path, "nist", chunks)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.num_bytes == 200_000 * 500 and info.shard_lengths == [200_000]
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MiB held while writing 95 MiB of records"
    # No spool file left behind; the shard's digest beside it.
    assert sorted(os.listdir(tmp_path)) == ["d-nist.sha256", *info.filenames]


def test_max_examples_per_split_takes_tfds_path(tmp_path):
    """TFDS's writer path, on files downloaded and verified once."""
    with mock.patch.object(fail_fast, "download", side_effect=fail_fast.download) as download:
        builder = _build(tmp_path, "qmnist", "tfrecord", max_examples_per_split=5)
    assert download.call_count == 1
    assert {split: info.num_examples for split, info in builder.info.splits.items()} == {
        "train": 5, "test": 5, "test10k": 5, "test50k": 5}


_FEATURES = qmnist_dataset_builder.Builder(data_dir="/nonexistent").info.features
_INT32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
# Other scalar kinds the serializer accepts: int64 (negative ones are 10-byte
# varints), bool, several strings (payloads of every size class of varint).
_OTHER_FEATURES = tfds.features.FeaturesDict({
    "big": tfds.features.Scalar(dtype=np.int64),
    "flag": tfds.features.Scalar(dtype=np.bool_),
    "a_text": tfds.features.Scalar(dtype=np.str_),
    "z_blob": tfds.features.Scalar(dtype=np.object_),
})


def _assert_matches_tfds(features, columns, records) -> None:
    """Each record parses to TFDS's serialization of the row, and its bytes are
    protobuf's deterministic serialization of that proto."""
    reference = example_serializer.ExampleSerializer(features.get_serialized_info())
    assert len(records) == len(next(iter(columns.values())))
    for row, record in enumerate(records):
        example = {name: values[row] for name, values in columns.items()}
        expected = tf.train.Example.FromString(
            reference.serialize_example(features.encode_example(example)))
        assert tf.train.Example.FromString(record) == expected
        assert record == expected.SerializeToString(deterministic=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=64), st.integers(0, 9),
                          st.lists(_INT32, min_size=6, max_size=6)), min_size=1, max_size=5))
def test_serializer_matches_tfds_serializer(rows):
    names = list(examples.METADATA_COLUMNS)
    columns = {"image": [r[0] for r in rows], "label": [r[1] for r in rows]}
    for i, name in enumerate(names):
        columns[name] = [r[2][i] for r in rows]
    ours = records.ScalarExampleSerializer(_FEATURES).serialize(columns)
    _assert_matches_tfds(_FEATURES, columns, ours)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-(2**63), 2**63 - 1), st.booleans(),
                          st.text(max_size=40), st.binary(max_size=20_000)),
                min_size=1, max_size=4))
def test_serializer_matches_tfds_serializer_on_other_scalars(rows):
    columns = {name: [r[i] for r in rows]
               for i, name in enumerate(("big", "flag", "a_text", "z_blob"))}
    encoded = {name: [_OTHER_FEATURES[name].encode_example(v) for v in values]
               for name, values in columns.items()}
    ours = records.ScalarExampleSerializer(_OTHER_FEATURES).serialize(encoded)
    _assert_matches_tfds(_OTHER_FEATURES, columns, ours)


def fixed_columns() -> dict[str, list]:
    rng = np.random.default_rng(0)
    columns = {name: rng.integers(0, 2**31, 300).tolist() for name in examples.METADATA_COLUMNS}
    columns["label"] = rng.integers(0, 10, 300).tolist()
    columns["image"] = [rng.bytes(int(n)) for n in rng.integers(0, 3000, 300)]
    return columns


# The child defines fixed_columns from its source here rather than importing this
# module, which would import TensorFlow; the serializer itself needs none.
_SERIALIZE_IN_A_PROCESS = f"""
import hashlib, sys
import numpy as np
from qmnist_tfds import examples, records
from qmnist_tfds.qmnist import qmnist_dataset_builder
{inspect.getsource(fixed_columns)}
features = qmnist_dataset_builder.Builder(data_dir="/nonexistent").info.features
print(hashlib.sha256(b"".join(
    records.ScalarExampleSerializer(features).serialize(fixed_columns()))).hexdigest())
print("tensorflow" in sys.modules)
"""


def test_serialized_bytes_are_the_same_in_every_process():
    """Protobuf writes map entries in an order that varies per process; the serializer
    does not."""
    here = hashlib.sha256(b"".join(
        records.ScalarExampleSerializer(_FEATURES).serialize(fixed_columns()))).hexdigest()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for seed in ("1", "2", "3"):
        env["PYTHONHASHSEED"] = seed
        out = subprocess.run([sys.executable, "-c", _SERIALIZE_IN_A_PROCESS], env=env,
                             cwd=os.fspath(REPO_ROOT), capture_output=True,
                             text=True, check=True).stdout
        assert out.split()[-2:] == [here, "False"]


def test_serializer_refuses_what_it_cannot_write():
    serializer = records.ScalarExampleSerializer(_FEATURES)
    with pytest.raises(ValueError, match="do not match the features"):
        serializer.serialize({"image": [b""], "label": [1]})
    columns = {name: [0] for name in _FEATURES}
    columns["label"] = [1, 2]
    with pytest.raises(ValueError, match="different lengths"):
        serializer.serialize(columns)
    with pytest.raises(ValueError, match="'v' is not a scalar"):
        records.ScalarExampleSerializer(tfds.features.FeaturesDict(
            {"v": tfds.features.Tensor(shape=(2,), dtype=np.int32)}))
    for dtype in (np.float32, np.uint64):
        with pytest.raises(ValueError, match="'v' has unsupported dtype"):
            records.ScalarExampleSerializer(tfds.features.FeaturesDict(
                {"v": tfds.features.Scalar(dtype=dtype)}))
