"""`tfds.data_source("qmnist", ...)`: the default build serves it, from memory, exactly as
TFDS's own `ArrayRecordDataSource` would (TFDS's source is the oracle)."""

from __future__ import annotations

import gzip
import io
import lzma
import os
import pickle
import shutil
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_datasets as tfds
from array_record.python import array_record_module
from tensorflow_datasets.core.data_sources import array_record as tfds_array_record

import qmnist_tfds  # noqa: F401 (registers the builder)
from qmnist_tfds import data_source, downloads, split_decoder
from tests.conftest import DUMMY_DATA

SPLITS = {"qmnist": ["train", "test", "test10k", "test50k"], "nist": ["nist"]}


def read_idx_independently(path) -> np.ndarray:
    """An IDX file decoded from its header with numpy alone (not the package's reader)."""
    data = path.read_bytes()
    data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else lzma.decompress(data)
    kind, ndim = data[2], data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = {0x08: np.uint8, 0x0C: ">i4"}[kind]
    return np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)


def sources(data_dir, config: str, split: str, **kwargs):
    """(ours, TFDS's own) data sources of one split."""
    name = f"qmnist/{config}"
    ours = tfds.data_source(name, split=split, data_dir=os.fspath(data_dir), **kwargs)
    theirs = tfds.data_source(name, split=split, data_dir=os.fspath(data_dir),
                              builder_kwargs={"data_source_in_memory": False}, **kwargs)
    return ours, theirs


def assert_same_example(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs)  # same keys, same order
    for key, value in theirs.items():
        assert type(ours[key]) is type(value), key
        if isinstance(value, np.ndarray):
            assert (ours[key].dtype, ours[key].shape) == (value.dtype, value.shape), key
            flags = ("writeable", "owndata", "c_contiguous")
            assert [getattr(ours[key].flags, f) for f in flags] == \
                [getattr(value.flags, f) for f in flags], key
            np.testing.assert_array_equal(ours[key], value)
        else:
            assert ours[key] == value, key


@pytest.mark.parametrize("config", ["qmnist", "nist"])
def test_every_record_of_every_split_is_what_tfds_gives(dummy_build, config):
    for split in SPLITS[config]:
        ours, theirs = sources(dummy_build, config, split)
        assert type(ours) is data_source.InMemoryDataSource
        assert type(theirs) is tfds_array_record.ArrayRecordDataSource
        assert repr(ours) == repr(theirs)
        assert len(ours) == len(theirs)
        for i in range(len(theirs)):
            assert_same_example(ours[i], theirs[i])
        keys = np.random.default_rng(0).permutation(len(theirs))[:300].tolist()
        for mine, tfds_example in zip(ours.__getitems__(keys), theirs.__getitems__(keys),
                                      strict=True):
            assert_same_example(mine, tfds_example)
        assert ours.__getitems__([]) == theirs.__getitems__([]) == []


def test_pixels_and_metadata_are_those_of_the_upstream_files(dummy_build):
    images = read_idx_independently(DUMMY_DATA / downloads.FILES["test_images"])
    labels = read_idx_independently(DUMMY_DATA / downloads.FILES["test_labels"])
    source = tfds.data_source("qmnist", split="test", data_dir=os.fspath(dummy_build))
    for i in range(len(labels)):
        example = source[i]
        np.testing.assert_array_equal(example["image"][..., 0], images[i])
        assert [example[k] for k in ("label", "hsf_series", "writer_id", "nist_index")] == \
            labels[i, [0, 1, 2, 5]].tolist()


def test_errors_and_sliced_splits_are_tfds_own(dummy_build):
    ours, theirs = sources(dummy_build, "qmnist", "test50k")
    for key in (len(theirs), -1, 2**40):
        with pytest.raises(ValueError, match=r"Record key should be in \[0, num_records\)"):
            theirs[key]
        with pytest.raises(ValueError, match=r"Record key should be in \[0, num_records\)"):
            ours[key]
    with pytest.raises(ValueError, match="num_records"):
        ours.__getitems__([0, len(theirs)])
    for source in (ours, theirs):  # TFDS indexes with `__index__`: no slices, no floats
        with pytest.raises(AttributeError):
            source[0:2]
        with pytest.raises(AttributeError):
            source[1.0]
    assert_same_example(ours[np.int64(3)], theirs[3])
    for split in ("train[:7]", "test[9995:10005]", "test[-3:]", "train[25%:75%]"):
        ours, theirs = sources(dummy_build, "qmnist", split)
        assert len(ours) == len(theirs) and repr(ours) == repr(theirs)
        for i in range(len(theirs)):
            assert_same_example(ours[i], theirs[i])
    # Several splits at once, as TFDS returns them.
    builder = tfds.builder("qmnist", data_dir=os.fspath(dummy_build))
    every = builder.as_data_source()
    assert sorted(every) == ["test", "test10k", "test50k", "train"]
    assert all(type(s) is data_source.InMemoryDataSource for s in every.values())
    pair = builder.as_data_source(split=["train", "test50k"])
    assert [len(s) for s in pair] == [20, 10] and isinstance(pair, list)


def test_decoders_and_deserialize_methods_go_through_tfds(dummy_build):
    skip_image = {"image": tfds.decode.SkipDecoding()}
    ours, theirs = sources(dummy_build, "qmnist", "test", decoders=skip_image)
    assert type(ours) is tfds_array_record.ArrayRecordDataSource
    assert ours[5]["image"] == theirs[5]["image"] and isinstance(ours[5]["image"], bytes)
    raw, _ = sources(dummy_build, "qmnist", "test",
                     deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
    assert type(raw) is tfds_array_record.ArrayRecordDataSource
    assert isinstance(raw[5], bytes)


def test_pickles_without_the_loaded_split(dummy_build):
    source = tfds.data_source("qmnist", split="test", data_dir=os.fspath(dummy_build))
    before = len(pickle.dumps(source))
    expected = source[10_009]  # loads the split in this process
    data = pickle.dumps(source)
    # The decoded split (8 MB here) stays behind: a worker loads its own.
    assert before < 20_000 and len(data) < 20_000
    copy = pickle.loads(data)
    assert repr(copy) == repr(source) and len(copy) == len(source)
    assert_same_example(copy[10_009], expected)


def _rewrite_records(path, replacements: dict[int, bytes]) -> None:
    """Rewrites one array_record shard with some of its records replaced."""
    reader = array_record_module.ArrayRecordReader(os.fspath(path))
    records = reader.read_all()
    reader.close()
    writer = array_record_module.ArrayRecordWriter(os.fspath(path), "group_size:1")
    for i, record in enumerate(records):
        writer.write(replacements.get(i, record))
    writer.close()


def _whole_split(source: data_source.InMemoryDataSource) -> dict[str, np.ndarray]:
    """The source's split decoded at once, as `load_arrays` decodes a split."""
    return split_decoder.as_arrays(source._load(), source.dataset_info.features)


def test_records_in_another_layout_are_decoded_by_tfds(dummy_build, tmp_path):
    """Records another writer laid out (other key order, another PNG encoder) are
    served by TFDS's own path, with the same results."""
    from PIL import Image
    from tensorflow_datasets.proto import tf_example_pb2

    data_dir = tmp_path / "data"
    shutil.copytree(dummy_build / "qmnist" / "qmnist", data_dir / "qmnist" / "qmnist")
    folder = data_dir / "qmnist" / "qmnist" / "1.0.0"
    shard = next(folder.glob("qmnist-test.array_record-*"))
    records = array_record_module.ArrayRecordReader(os.fspath(shard)).read_all()

    def relaid(record: bytes, *, pillow_png: bool) -> bytes:
        example = tf_example_pb2.Example.FromString(record)
        if pillow_png:
            image = example.features.feature["image"].bytes_list.value[0]
            pixels = np.asarray(Image.open(io.BytesIO(image)))
            out = io.BytesIO()
            Image.fromarray(pixels).save(out, format="PNG", optimize=True)
            example.features.feature["image"].bytes_list.value[0] = out.getvalue()
        again = tf_example_pb2.Example()  # keys in reverse order
        for key in sorted(example.features.feature, reverse=True):
            again.features.feature[key].CopyFrom(example.features.feature[key])
        return again.SerializeToString()

    replaced = {3: relaid(records[3], pillow_png=True), 4: relaid(records[4], pillow_png=False)}
    assert replaced[3] != records[3] and replaced[4] != records[4]
    _rewrite_records(shard, replaced)
    ours, theirs = sources(data_dir, "qmnist", "test")
    expected = [theirs[i] for i in range(len(theirs))]  # TFDS's source, read once
    for i, example in enumerate(expected):
        assert_same_example(ours[i], example)
    chunk = ours._split
    assert [chunk.own[i] for i in range(6)] == [1, 1, 1, 0, 0, 1]
    # The whole split at once (as load_arrays decodes it): the same records.
    # keys in the features' order, as batch_size=-1 (test_arrays.py)
    whole = _whole_split(ours)
    assert sorted(whole) == sorted(expected[0])
    for key, values in whole.items():
        assert values.dtype == ours.dataset_info.features[key].np_dtype, key
        np.testing.assert_array_equal(
            values, np.stack([example[key] for example in expected]), err_msg=key)


def test_integers_outside_int32_are_served_by_tfds(dummy_build, tmp_path):
    """An int32 feature stored as a value int32 cannot hold (another writer's record):
    TFDS's own path decides what it gives, value or error, and this source gives the same."""
    from tensorflow_datasets.proto import tf_example_pb2

    data_dir = tmp_path / "data"
    shutil.copytree(dummy_build / "qmnist" / "qmnist", data_dir / "qmnist" / "qmnist")
    shard = next((data_dir / "qmnist" / "qmnist" / "1.0.0").glob("qmnist-train.array_record-*"))
    records = array_record_module.ArrayRecordReader(os.fspath(shard)).read_all()

    def with_writer_id(record: bytes, value: int) -> bytes:
        example = tf_example_pb2.Example.FromString(record)
        example.features.feature["writer_id"].int64_list.value[0] = value
        return example.SerializeToString(deterministic=True)  # the layout the builder writes

    _rewrite_records(shard, {2: with_writer_id(records[2], 2**31),
                             5: with_writer_id(records[5], -(2**31) - 1),
                             7: with_writer_id(records[7], 2**31 - 1)})
    ours, theirs = sources(data_dir, "qmnist", "train")
    expected, errors = [], []  # TFDS's source, read once: its examples, or its errors
    for i in range(len(theirs)):
        try:
            expected.append(theirs[i])
        except Exception as error:  # noqa: BLE001  (whatever TFDS raises, ours raises too)
            errors.append(error)
            with pytest.raises(type(error)) as raised:
                ours[i]
            assert str(raised.value) == str(error)
        else:
            assert_same_example(ours[i], expected[-1])
    assert [ours._split.own[i] for i in range(8)] == [1, 1, 0, 1, 1, 0, 1, 1]
    assert ours[7]["writer_id"] == 2**31 - 1
    # The whole split at once (as load_arrays decodes it): TFDS's values, or its error.
    if errors:
        with pytest.raises(type(errors[0])):
            _whole_split(ours)
    else:
        found = _whole_split(ours)
        for key in found:
            np.testing.assert_array_equal(
                found[key], np.stack([np.asarray(example[key]) for example in expected]))


def test_data_source_imports_no_tensorflow(dummy_build):
    script = textwrap.dedent("""
        import sys
        import tensorflow_datasets as tfds
        import qmnist_tfds
        source = tfds.data_source("qmnist", split="test", data_dir=sys.argv[1])
        assert type(source).__name__ == "InMemoryDataSource", type(source)
        print(len(source), source[10_000]["image"].shape, "tensorflow" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script, os.fspath(dummy_build)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["10010", "(28,", "28,", "1)", "False"]
