"""Shared fixtures: paths, the real upstream label files, builds on dummy data."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import pathlib
import shutil
import sys
from unittest import mock

import filelock
import numpy as np
import pytest
import tensorflow_datasets as tfds
from etils import epath

from qmnist_tfds import downloads, idx, synthetic
from qmnist_tfds.qmnist import qmnist_dataset_builder
from qmnist_tfds.qmnist.qmnist_dataset_builder import TEST10K_SIZE

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTS_DIR = REPO_ROOT / "tests"
# The checkout's copy: the wheel does not ship the dummy data.
DUMMY_DATA = REPO_ROOT / "qmnist_tfds" / "qmnist" / "dummy_data"
# The real upstream label files live beside the checkout, never inside it.
UPSTREAM_DIR = pathlib.Path(
    os.environ.get("QMNIST_UPSTREAM_DIR", REPO_ROOT.parent / "shared" / "qmnist-upstream")
)
FASHION_MNIST_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
BENCHMARKS_DIR = REPO_ROOT / "benchmarks"


def load_benchmark(name: str):
    """`benchmarks/<name>.py` as a module, imported as the scripts import each other:
    with their folder (not a package) first on `sys.path`, as when one runs."""
    if os.fspath(BENCHMARKS_DIR) not in sys.path:
        sys.path.insert(0, os.fspath(BENCHMARKS_DIR))
    return importlib.import_module(name)


def run_benchmark_child(name: str, *args, timeout: float = 600) -> dict:
    """`benchmarks/<name>.py --child ARGS` in a process of its own; the JSON it prints last."""
    harness = load_benchmark("harness")
    return harness.run_child(BENCHMARKS_DIR / f"{name}.py", *args, timeout=timeout)


def tfrecords(paths) -> list[bytes]:
    """Every record of the TFRecord files `paths`, in order, as TensorFlow reads them
    (in batches: one eager tensor per record costs more than the reading)."""
    import tensorflow as tf

    dataset = tf.data.TFRecordDataset([os.fspath(p) for p in paths]).batch(4096)
    return [record for batch in dataset.as_numpy_iterator() for record in batch.tolist()]


def pytest_sessionstart(session):
    """With QMNIST_TFDS_TEST_INSTALLED=1 (`.ci/stack`), the package must come from an install."""
    imported = pathlib.Path(qmnist_dataset_builder.__file__).resolve()
    if os.environ.get("QMNIST_TFDS_TEST_INSTALLED") == "1" and REPO_ROOT in imported.parents:
        raise pytest.UsageError(f"qmnist_tfds is imported from {imported}, inside the "
                                "repository, not from the installed package")


def pytest_collection_modifyitems(config, items):
    """Drops TensorFlow's deprecated `TestCase.test_session`, which is not a test."""
    kept = [item for item in items if item.name != "test_session"]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i.name == "test_session"])
        items[:] = kept


@pytest.fixture(scope="session")
def upstream_dir() -> pathlib.Path:
    if not (UPSTREAM_DIR / "qmnist-train-labels-idx2-int.gz").exists():
        pytest.skip(
            f"the real QMNIST label files are not at {UPSTREAM_DIR} (set "
            "QMNIST_UPSTREAM_DIR to a folder holding the upstream label files)"
        )
    return UPSTREAM_DIR


def config_files(config: str, folder: pathlib.Path) -> pathlib.Path:
    """Copies the dummy files that `config` downloads (and only those) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for key in downloads.CONFIG_FILES[config]:
        shutil.copy(DUMMY_DATA / downloads.FILES[key], folder)
    return folder


@contextlib.contextmanager
def registered_checksums(path: os.PathLike | str):
    """Makes the builder verify downloads against the checksums file `path`.

    For builds on synthetic files only; the real checksums file is untouched.
    """
    with mock.patch.object(downloads, "checksums_file", lambda: epath.Path(path)):
        yield


def build(config: str, data_dir: os.PathLike | str, files_dir: os.PathLike | str,
          checksums: os.PathLike | str | None = None, *, file_format: str = "tfrecord",
          builder_kwargs: dict | None = None, **download_options) -> tfds.core.DatasetBuilder:
    """Builds `config` into `data_dir` from the files in `files_dir` (as a manual dir).

    `download_options` go to TFDS's `DownloadConfig` (`num_shards=3`, ...).
    """
    builder = tfds.builder("qmnist", config=config, data_dir=os.fspath(data_dir),
                           file_format=file_format, **(builder_kwargs or {}))
    download_config = tfds.download.DownloadConfig(manual_dir=os.fspath(files_dir),
                                                   **download_options)
    if checksums is None:
        builder.download_and_prepare(download_config=download_config)
    else:
        with registered_checksums(checksums):
            builder.download_and_prepare(download_config=download_config)
    return builder


def shared_build(tmp_path_factory, name: str, make) -> pathlib.Path:
    """A data_dir that `make(data_dir)` fills once per test run, for tests that only read it.

    Under pytest-xdist every worker runs the session fixtures; the first one to
    get here builds into the run's own temporary folder (shared by its workers,
    new for each run) while the others wait on a file lock, then all read the
    same build. Without xdist it is an ordinary session-scoped folder.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        data_dir = tmp_path_factory.mktemp(name)
        make(data_dir)
        return data_dir
    run_dir = tmp_path_factory.getbasetemp().parent
    data_dir, done = run_dir / name, run_dir / f"{name}.done"
    with filelock.FileLock(run_dir / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(data_dir, ignore_errors=True)  # a worker's failed attempt
            data_dir.mkdir()
            make(data_dir)
            done.touch()
    return data_dir


@pytest.fixture(scope="session")
def dummy_build(tmp_path_factory) -> pathlib.Path:
    """A data_dir holding both configs built from the dummy data."""
    def make(data_dir):
        for config in ("qmnist", "nist"):
            build(config, data_dir, DUMMY_DATA, DUMMY_DATA / "checksums.tsv")

    return shared_build(tmp_path_factory, "dummy_build", make)


@pytest.fixture(scope="session")
def array_record_build(tmp_path_factory) -> pathlib.Path:
    """A data_dir holding the `qmnist` config built from the dummy data as array_record."""
    def make(data_dir):
        build("qmnist", data_dir, DUMMY_DATA, DUMMY_DATA / "checksums.tsv",
              file_format="array_record")

    return shared_build(tmp_path_factory, "array_record", make)


@pytest.fixture(scope="session")
def tfrecord_only_build(tmp_path_factory) -> pathlib.Path:
    """A data_dir holding the `qmnist` config built from the dummy data without the
    array_record copy."""
    def make(data_dir):
        build("qmnist", data_dir, DUMMY_DATA, DUMMY_DATA / "checksums.tsv",
              builder_kwargs={"array_record_copy": False})

    return shared_build(tmp_path_factory, "tfrecord_only", make)


def full_size_files(folder: pathlib.Path, upstream_dir: pathlib.Path,
                    splits: list[str]) -> pathlib.Path:
    """The real label files of `splits` and, beside them, blank images of the same counts
    (the real image files are not reachable here), under the upstream names; returns
    their checksums file."""
    folder.mkdir(parents=True)
    names = []
    for split in splits:
        labels, images = downloads.FILES[f"{split}_labels"], downloads.FILES[f"{split}_images"]
        shutil.copy(upstream_dir / labels, folder)
        count = len(idx.read_extended_labels(folder / labels))
        blank = np.zeros((16_384, 28, 28), dtype=np.uint8)
        chunks = (blank[:min(len(blank), count - start)] for start in range(0, count, len(blank)))
        # gzip under the upstream name: the reader goes by the bytes, not the suffix.
        idx.write_idx(folder / "images.gz", chunks, count=count)
        (folder / "images.gz").rename(folder / images)
        names += [labels, images]
    checksums = folder / "checksums.tsv"
    checksums.write_text(synthetic.checksums_tsv(folder, names))
    return checksums


# The tests that read `full_size_nist_build` run on one pytest-xdist worker: the
# other worker goes on with its tests rather than wait for that build.
FULL_SIZE_NIST = pytest.mark.xdist_group("full_size_nist")


@pytest.fixture(scope="session")
def full_size_nist_build(upstream_dir, tmp_path_factory) -> pathlib.Path:
    """A data_dir holding the nist config built at full size from the real label file and
    blank images: the real NIST order, row count and shards. TFRecord files alone: the
    tests read it through tf.data, and the array_record copy would double the build."""
    def make(data_dir):
        checksums = full_size_files(data_dir / "files", upstream_dir, ["nist"])
        build("nist", data_dir, checksums.parent, checksums,
              builder_kwargs={"array_record_copy": False})

    return shared_build(tmp_path_factory, "full_size_nist", make)


def build_tfds_mnist(dataset: str, files_dir: pathlib.Path, data_dir: pathlib.Path) -> None:
    """Builds TFDS's own `dataset` ("mnist" or "fashion_mnist") from the IDX files in
    `files_dir`, with TFDS's own builder and writer, for tests of record order.

    The labels are read from the files by TFDS's code; the images are not: every
    record holds one blank PNG (TFDS stores encoded bytes untouched), which saves
    encoding 70,000 images and changes neither the records' keys nor their order.
    """
    from tensorflow_datasets.core.download import checksums
    from tensorflow_datasets.image_classification import mnist

    from qmnist_tfds import png

    builder_class = {"mnist": mnist.MNIST, "fashion_mnist": mnist.FashionMNIST}[dataset]
    infos = {}
    for path in sorted(files_dir.glob("*-ubyte.gz")):
        data = path.read_bytes()
        infos[builder_class.URL + path.name] = checksums.UrlInfo(
            size=len(data), checksum=hashlib.sha256(data).hexdigest(), filename=path.name)
    blank = png.encode_gray_pngs(np.zeros((1, 28, 28), np.uint8))[0]
    with mock.patch.object(builder_class, "url_infos", infos), \
            mock.patch.object(mnist, "_extract_mnist_images", lambda _, count: [blank] * count):
        tfds.builder(dataset, data_dir=os.fspath(data_dir)).download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(files_dir)))


@pytest.fixture(scope="session")
def fashion_mnist_build(tmp_path_factory) -> pathlib.Path:
    """A data_dir holding TFDS's `fashion_mnist`, built by TFDS from Debian's files."""
    if not (FASHION_MNIST_DIR / "train-labels-idx1-ubyte.gz").exists():
        pytest.skip(f"{FASHION_MNIST_DIR} absent: apt-get install -y dataset-fashion-mnist")
    return shared_build(tmp_path_factory, "fashion_mnist",
                        lambda data_dir: build_tfds_mnist("fashion_mnist", FASHION_MNIST_DIR,
                                                          data_dir))


@pytest.fixture(scope="session")
def mnist_standin(tmp_path_factory, upstream_dir) -> pathlib.Path:
    """A data_dir holding TFDS's `mnist`, built by TFDS from MNIST's labels (those of
    QMNIST's train file and of its first 10,000 test rows) and blank images;
    `<data_dir>/files/` holds the IDX files it was built from."""
    def make(data_dir):
        files = data_dir / "files"
        files.mkdir()
        for split, key, count in (("train", "train_labels", None),
                                  ("t10k", "test_labels", TEST10K_SIZE)):
            labels = idx.read_extended_labels(upstream_dir / downloads.FILES[key])[:count, 0]
            idx.write_idx(files / f"{split}-labels-idx1-ubyte.gz", labels.astype(np.uint8))
            idx.write_idx(files / f"{split}-images-idx3-ubyte.gz",
                          np.zeros((len(labels), 28, 28), np.uint8))
        build_tfds_mnist("mnist", files, data_dir)

    return shared_build(tmp_path_factory, "mnist_standin", make)
