"""MNIST code with the name changed: the reading patterns of TFDS's tutorial and of
big_vision- and Flax-style input pipelines, shuffled reads of every split, a
prepared dataset on a read-only folder, and an import that leaves TensorFlow out.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from qmnist_tfds import downloads, idx, synthetic
from tests.conftest import DUMMY_DATA, FULL_SIZE_NIST, REPO_ROOT, build

SPLITS = {"qmnist": ["train", "test", "test10k", "test50k"], "nist": ["nist"]}
CASES = [(config, split) for config, names in SPLITS.items() for split in names]


def _nist_index(ds) -> list[int]:
    """The examples' nist_index in the order `ds` yields them (batched only to cross to numpy
    faster; batching keeps the order)."""
    batches = [batch["nist_index"] for batch in tfds.as_numpy(ds.batch(4096))]
    return np.concatenate(batches).tolist() if batches else []


def _ordered(data_dir, config, split) -> list[int]:
    """The split's nist_index in the default read's order (the other features left unread)."""
    return _nist_index(tfds.load(f"qmnist/{config}", split=split, data_dir=os.fspath(data_dir),
                                 decoders=tfds.decode.PartialDecoding({"nist_index": True})))


def test_keras_tutorial_with_the_name_changed(dummy_build):
    """TFDS's Keras MNIST tutorial: shuffled files, supervised pairs, info, a model fit."""
    (ds_train, ds_test), ds_info = tfds.load(
        "qmnist", split=["train", "test"], shuffle_files=True, as_supervised=True,
        with_info=True, data_dir=os.fspath(dummy_build))

    def normalize_img(image, label):
        return tf.cast(image, tf.float32) / 255.0, label

    ds_train = ds_train.map(normalize_img).cache()
    ds_train = ds_train.shuffle(ds_info.splits["train"].num_examples).batch(128).prefetch(2)
    ds_test = ds_test.map(normalize_img).batch(128).cache().prefetch(2)
    labels = idx.read_idx(DUMMY_DATA / downloads.FILES["train_labels"])[:, 0]
    seen = np.concatenate([batch_labels for _, batch_labels in tfds.as_numpy(ds_train)])
    assert sorted(seen.tolist()) == sorted(labels.tolist())

    model = tf.keras.models.Sequential([
        tf.keras.Input(shape=(28, 28, 1)),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(16, activation="relu"),
        tf.keras.layers.Dense(10),
    ])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.001),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[tf.keras.metrics.SparseCategoricalAccuracy()])
    history = model.fit(ds_train, epochs=1, validation_data=ds_test.take(1), verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize(("config", "split"), CASES)
def test_every_split_reads_shuffled_and_interleaved(dummy_build, config, split):
    """`shuffle_files=True` and interleaving ReadConfigs: every example once, no error.
    Past the first read, which decodes every feature, the reads decode nist_index alone:
    decoders do not change which records come back."""
    ordered = _ordered(dummy_build, config, split)
    builder = tfds.builder(f"qmnist/{config}", data_dir=os.fspath(dummy_build))
    nist_index = tfds.decode.PartialDecoding({"nist_index": True})
    reads = {
        "shuffle_files": builder.as_dataset(split=split, shuffle_files=True),
        # big_vision-style: shuffled files, its own ReadConfig.
        "shuffled, cycle 16": builder.as_dataset(
            split=split, shuffle_files=True, decoders=nist_index,
            read_config=tfds.ReadConfig(interleave_cycle_length=16, skip_prefetch=True,
                                        try_autocache=False, add_tfds_id=True,
                                        shuffle_seed=0)),
        "cycle 16, files in order": builder.as_dataset(
            split=split, decoders=nist_index,
            read_config=tfds.ReadConfig(interleave_cycle_length=16)),
        # Flax-style: an absolute ReadInstruction for this process's part of the split.
        "ReadInstruction": builder.as_dataset(
            split=tfds.core.ReadInstruction(split, from_=0, to=len(ordered), unit="abs"),
            shuffle_files=True, decoders=nist_index),
    }
    for name, ds in reads.items():
        assert sorted(_nist_index(ds)) == sorted(ordered), name
    # The default read stays in upstream order.
    key = {"nist": "nist_labels", "train": "train_labels"}.get(split, "test_labels")
    labels = idx.read_idx(DUMMY_DATA / downloads.FILES[key])
    start = 10_000 if split == "test50k" else 0
    assert ordered == labels[start:start + len(ordered), 5].tolist()


def test_shuffled_files_are_interleaved(dummy_build):
    """nist is written as many shards; a shuffled read opens them all at once."""
    builder = tfds.builder("qmnist/nist", data_dir=os.fspath(dummy_build))
    shards = builder.info.splits["nist"].shard_lengths
    assert shards == [1] * 30  # the 30 dummy rows, one shard each (at most 128)
    orders = {
        tuple(_nist_index(builder.as_dataset(
            split="nist", shuffle_files=True, read_config=tfds.ReadConfig(shuffle_seed=seed))))
        for seed in range(3)
    }
    ordered = tuple(_ordered(dummy_build, "nist", "nist"))
    assert len(orders) == 3 and ordered not in orders
    assert all(sorted(order) == sorted(ordered) for order in orders)


def test_tfds_writer_path_writes_nist_shards_too(tmp_path):
    """`--max_examples_per_split` takes TFDS's writer, with the same shard count."""
    builder = build("nist", tmp_path, DUMMY_DATA, DUMMY_DATA / "checksums.tsv",
                    max_examples_per_split=12)
    assert builder.info.splits["nist"].shard_lengths == [1] * 12
    ds = builder.as_dataset(split="nist", shuffle_files=True)
    assert sorted(_nist_index(ds)) == list(range(12))


def test_download_and_prepare_on_a_prepared_dataset_writes_nothing(dummy_build):
    """Flax's pattern on a prepared folder: no lock file, no other file, no change."""
    def snapshot():
        return {p: p.stat().st_mtime_ns for p in dummy_build.rglob("*")}

    for lock in dummy_build.rglob(".*.lock"):  # left by the build: a new one would show
        lock.unlink()
    before = snapshot()
    for config in SPLITS:
        builder = tfds.builder(f"qmnist/{config}", data_dir=os.fspath(dummy_build))
        builder.download_and_prepare()
        assert builder.is_prepared()
    assert snapshot() == before
    assert not list(dummy_build.rglob("*.lock"))


_READ_ONLY_READS = """
import sys
import numpy as np
import tensorflow_datasets as tfds
import qmnist_tfds

data_dir, array_record_dir = sys.argv[1:]
for config, split in [("qmnist", "train"), ("nist", "nist")]:
    builder = tfds.builder(f"qmnist/{config}", data_dir=data_dir)
    builder.download_and_prepare()  # Flax's pattern: reuses the prepared dataset
    a = sum(1 for _ in builder.as_dataset(split=split, shuffle_files=True))
    b = sum(1 for _ in tfds.load(f"qmnist/{config}", split=split, data_dir=data_dir))
    c = len(qmnist_tfds.load_arrays(split, name=f"qmnist/{config}", data_dir=data_dir)["label"])
    print(config, a, b, c)
source = tfds.data_source("qmnist", split="test50k", data_dir=array_record_dir)
print("data_source", len(source), source[0]["image"].shape)
"""


def test_a_read_only_data_dir_serves_every_reading_path(dummy_build, array_record_build,
                                                         tmp_path):
    """Both folders mounted read-only, as a shared cluster folder is to its users."""
    if not (shutil.which("unshare") and os.geteuid() == 0):
        pytest.skip("needs root and unshare(1) to mount a folder read-only")
    script = tmp_path / "reads.py"
    script.write_text(_READ_ONLY_READS)
    mounts = " && ".join(f"mount --bind {d} {d} && mount -o remount,bind,ro {d} {d}"
                         for d in (dummy_build, array_record_build))
    command = f'{mounts} && touch {dummy_build}/probe; exec "$@"'
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", command, "sh",
         sys.executable, os.fspath(script), os.fspath(dummy_build), os.fspath(array_record_build)],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert "Read-only file system" in result.stderr  # the probe proves the mount
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == ["qmnist 20 20 20", "nist 30 30 30",
                                          "data_source 10 (28, 28, 1)"]


_HIDE_MODULE = """
import importlib.abc, sys

class _Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {name!r} or name.startswith({name!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, _Hidden())
"""


def _python(code: str, *args: str, hide: str | None = None) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter; with `hide`, as if that module were not installed."""
    prelude = _HIDE_MODULE.format(name=hide) if hide else ""
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args],
                          capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)


def test_without_tfds_or_with_an_unsupported_one_the_error_names_the_install_command():
    """The package requires no TFDS distribution, so that a stack keeps its own."""
    missing = _python("import qmnist_tfds", hide="tensorflow_datasets")
    assert missing.returncode != 0
    assert ('ImportError: qmnist_tfds needs TensorFlow Datasets, and none is installed. '
            'Install the release with: pip install "qmnist-tfds[tfds]"') in missing.stderr
    old = _python("""
        import tensorflow_datasets as tfds
        tfds.__version__ = "4.9.6"
        import qmnist_tfds
    """)
    assert old.returncode != 0
    assert ("ImportError: qmnist_tfds needs TensorFlow Datasets 4.9.7 or newer; 4.9.6 is "
            'installed. Upgrade with: pip install "qmnist-tfds[tfds]"') in old.stderr
    # What TFDS leaves when its own import fails: it logs the error, and its module is empty.
    broken = _python("""
        import sys, types
        sys.modules["tensorflow_datasets"] = types.ModuleType("tensorflow_datasets")
        import qmnist_tfds
    """)
    assert broken.returncode != 0
    assert "ImportError: TensorFlow Datasets failed to import, so qmnist_tfds cannot." \
        in broken.stderr


@pytest.mark.parametrize(("installed", "expected"), [
    ({"tensorflow-metadata": "1.21.0", "protobuf": "5.29.6"},
     'tensorflow-metadata 1.21.0 fails to import under protobuf 5.29.6 (its generated code '
     'needs protobuf 6.31 or newer; TensorFlow 2.18 and 2.19 need protobuf 5). Mend it with: '
     'pip install "tensorflow-metadata<1.21"'),
    ({"tensorflow-metadata": "1.21.0", "protobuf": "6.33.6"}, "Its error is logged above."),
    ({"tensorflow-metadata": "1.17.3", "protobuf": "5.29.6"}, "Its error is logged above."),
    ({"protobuf": "5.29.6"}, "Its error is logged above."),
])
def test_a_failed_tfds_import_names_the_known_mend(installed, expected):
    from qmnist_tfds import _requirements

    with mock.patch.object(_requirements, "_installed", installed.get):
        assert _requirements.broken_tfds_help() == expected


def test_import_registers_the_builder_without_tensorflow(array_record_build):
    """A JAX process reading through `tfds.data_source` never loads TensorFlow."""
    result = _python("""
        import sys
        import tensorflow_datasets as tfds
        import qmnist_tfds
        assert "qmnist" in tfds.list_builders(with_community_datasets=False)
        builder = tfds.builder("qmnist/nist", data_dir=sys.argv[1])
        print(sorted(builder.info.features))
        source = tfds.data_source("qmnist", split="train", data_dir=sys.argv[1])
        print(len(source), source[0]["image"].shape)
        print(sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.")))
    """, os.fspath(array_record_build))
    assert result.returncode == 0, result.stderr[-3000:]
    features, source, tf_modules = result.stdout.splitlines()
    assert "writer_id" in features
    assert source == "20 (28, 28, 1)"
    assert tf_modules == "[]"


_TENSORFLOW_DISTRIBUTIONS = re.compile(
    r"(tensorflow|tensorflow_cpu|tensorflow_intel|tf_nightly|tf_nightly_cpu)-[^-]+\.dist-info")


def _site_packages_without_tensorflow(folder: pathlib.Path) -> pathlib.Path:
    """A copy of this interpreter's site-packages, as links, without TensorFlow itself."""
    site_packages = pathlib.Path(tf.__file__).parent.parent
    folder.mkdir()
    for entry in site_packages.iterdir():
        if entry.name != "tensorflow" and not _TENSORFLOW_DISTRIBUTIONS.fullmatch(entry.name):
            (folder / entry.name).symlink_to(entry)
    return folder


def test_without_tensorflow_the_error_names_the_install_command(dummy_build,
                                                                tfrecord_only_build, tmp_path):
    """In an environment where TensorFlow is not installed at all: `load_arrays` reads the
    array_record copy of a default build and the TFRecord files of a build without it, and
    what needs TensorFlow (a TFRecord build) says how to install it."""
    tfrecord_only = tfrecord_only_build
    site_packages = _site_packages_without_tensorflow(tmp_path / "site-packages")
    code = textwrap.dedent("""
        import importlib.util, site, sys
        site.addsitedir(sys.argv[1])
        assert importlib.util.find_spec("tensorflow") is None
        import numpy as np
        import tensorflow_datasets as tfds
        import qmnist_tfds
        print(tfds.builder("qmnist", data_dir=sys.argv[3]).info.features["label"].num_classes)
        np.savez(sys.argv[5], **qmnist_tfds.load_arrays("test", data_dir=sys.argv[2]))
        np.savez(sys.argv[6], **qmnist_tfds.load_arrays("test", data_dir=sys.argv[4]))
        try:
            tfds.builder("qmnist", data_dir=sys.argv[3]).download_and_prepare()
        except ImportError as error:
            print(error)
        print("tensorflow" in sys.modules)
    """)
    # -S: no site-packages but the copy above; the checkout is on the path as the cwd.
    loaded = {"array_record": tmp_path / "array_record.npz",
              "tfrecord": tmp_path / "tfrecord.npz"}
    result = subprocess.run([sys.executable, "-S", "-c", code, os.fspath(site_packages),
                             os.fspath(dummy_build), os.fspath(tmp_path / "new"),
                             os.fspath(tfrecord_only), *map(os.fspath, loaded.values())],
                            capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "10"
    assert len(lines) == 3
    assert 'pip install "qmnist-tfds[tensorflow]"' in lines[1]
    assert lines[2] == "False"
    assert not list((tmp_path / "new").rglob("*.lock"))
    assert not list(tfrecord_only.rglob("*.array_record*"))
    reference = tfds.as_numpy(tfds.load("qmnist", split="test", data_dir=os.fspath(dummy_build),
                                        batch_size=-1))
    for path in loaded.values():
        with np.load(path) as found:
            assert sorted(found) == sorted(reference)
            for key, values in reference.items():
                assert found[key].dtype == values.dtype, key
                np.testing.assert_array_equal(found[key], values, err_msg=f"{path.name} {key}")


def test_an_array_record_build_without_tensorflow(array_record_build, tmp_path):
    """Where TensorFlow is not installed, a JAX user builds array_record files and reads
    them: the same bytes as a build beside TensorFlow, the pixels and labels of the files."""
    site_packages = _site_packages_without_tensorflow(tmp_path / "site-packages")
    code = textwrap.dedent("""
        import importlib.util, site, sys
        site.addsitedir(sys.argv[1])
        assert importlib.util.find_spec("tensorflow") is None
        import numpy as np
        import tensorflow_datasets as tfds
        import qmnist_tfds
        from tests.conftest import DUMMY_DATA, registered_checksums
        with registered_checksums(DUMMY_DATA / "checksums.tsv"):
            source = tfds.data_source(
                "qmnist", split="train", data_dir=sys.argv[2],
                builder_kwargs={"file_format": "array_record"},
                download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
                    manual_dir=DUMMY_DATA)})
        np.save(sys.argv[3], np.stack([source[i]["image"] for i in range(len(source))]))
        print([int(source[i]["label"]) for i in range(len(source))])
    """)
    data_dir, images = tmp_path / "data", tmp_path / "images.npy"
    result = subprocess.run([sys.executable, "-S", "-c", code, os.fspath(site_packages),
                             os.fspath(data_dir), os.fspath(images)],
                            capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    # IDX by hand: 16 header bytes before the pixels, 12 before big-endian int32 rows of 8.
    with gzip.open(DUMMY_DATA / downloads.FILES["train_images"]) as f:
        pixels = np.frombuffer(f.read()[16:], np.uint8).reshape(-1, 28, 28, 1)
    with gzip.open(DUMMY_DATA / downloads.FILES["train_labels"]) as f:
        classes = np.frombuffer(f.read()[12:], ">i4").reshape(-1, 8)[:, 0]
    assert result.stdout.splitlines()[-1] == str(classes.tolist())
    np.testing.assert_array_equal(np.load(images), pixels)
    ours = data_dir / "qmnist" / "qmnist" / "1.0.0"
    beside_tf = array_record_build / "qmnist" / "qmnist" / "1.0.0"
    shards = sorted(path.name for path in beside_tf.glob("qmnist-*"))
    assert any(name.endswith(".sha256") for name in shards)
    assert sorted(path.name for path in ours.glob("qmnist-*")) == shards
    for name in shards:
        assert (ours / name).read_bytes() == (beside_tf / name).read_bytes(), name


def test_a_build_without_fcntl(tmp_path):
    """Where fcntl does not exist (Windows), the package imports and builds, under the same
    build lock in every format: here array_record files, which need no TensorFlow."""
    result = _python("""
        import sys
        import tensorflow_datasets as tfds
        import qmnist_tfds
        from tests.conftest import DUMMY_DATA, build
        builder = build("nist", sys.argv[1], DUMMY_DATA, DUMMY_DATA / "checksums.tsv",
                        file_format="array_record")
        print(builder.info.splits["nist"].num_examples, "fcntl" in sys.modules)
    """, os.fspath(tmp_path / "data"), hide="fcntl")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == "30 False"
    builder = tfds.builder("qmnist/nist", data_dir=os.fspath(tmp_path / "data"))
    assert builder.is_prepared() and builder.info.file_format.value == "array_record"


def _series_gap(ds, series: np.ndarray) -> float:
    """Largest gap, in percentage points, between the HSF-series mix of `ds` and `series`'s."""
    seen = np.concatenate([batch["hsf_series"] for batch in tfds.as_numpy(ds.batch(4096))])
    return max(abs(np.mean(seen == s) - np.mean(series == s)) * 100 for s in np.unique(series))


@FULL_SIZE_NIST
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nist_shuffled_read_mixes_the_hsf_series(full_size_nist_build, upstream_dir, seed):
    """The README's pipeline: its first 10,000 examples hold every series in its share.
    Both reads decode `hsf_series` alone, which leaves their order as it is."""
    series = idx.read_extended_labels(upstream_dir / downloads.FILES["nist_labels"])[:, 1]
    data_dir = os.fspath(full_size_nist_build)
    hsf_series = tfds.decode.PartialDecoding({"hsf_series": True})
    shuffled = tfds.load("qmnist/nist", split="nist", data_dir=data_dir, shuffle_files=True,
                         read_config=tfds.ReadConfig(shuffle_seed=seed), decoders=hsf_series)
    assert _series_gap(shuffled.shuffle(10_000, seed=seed).take(10_000), series) <= 2.0
    # The same buffer on the default, ordered read sees one series only.
    ordered = tfds.load("qmnist/nist", split="nist", data_dir=data_dir, decoders=hsf_series)
    assert _series_gap(ordered.shuffle(10_000, seed=seed).take(10_000), series) > 50


@FULL_SIZE_NIST
def test_nist_default_read_keeps_nist_order(full_size_nist_build, upstream_dir, tmp_path):
    """Index i of `nist` is row i of the upstream file, which is in NIST order; TFDS's
    default read takes the 128 shards of a full-size build in order, shown on a build of
    128 shards of 40 rows (more than the 16 records TFDS would take from each file were it
    interleaving them) rather than by decoding all 402,953 examples."""
    labels = idx.read_extended_labels(upstream_dir / downloads.FILES["nist_labels"])
    np.testing.assert_array_equal(labels[:, 5], np.arange(402_953))
    full_size = tfds.builder("qmnist/nist", data_dir=os.fspath(full_size_nist_build))
    assert len(full_size.info.splits["nist"].shard_lengths) == 128
    files = tmp_path / "files"
    checksums = synthetic.write_all(files, {"nist": 128 * 40})
    builder = build("nist", tmp_path / "data", files, checksums, num_shards=128)
    assert builder.info.splits["nist"].shard_lengths == [40] * 128
    ds = builder.as_dataset(split="nist", batch_size=-1,
                            decoders=tfds.decode.PartialDecoding({"nist_index": True}))
    np.testing.assert_array_equal(
        tfds.as_numpy(ds)["nist_index"],
        idx.read_extended_labels(files / downloads.FILES["nist_labels"])[:, 5])
