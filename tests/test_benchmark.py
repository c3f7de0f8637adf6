"""The speed benchmark's steps run and report what they measured (no timing asserted)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from tensorflow_datasets.image_classification import mnist

from qmnist_tfds import idx
from tests.conftest import (
    DUMMY_DATA,
    FASHION_MNIST_DIR,
    REPO_ROOT,
    load_benchmark,
    run_benchmark_child,
)

SCRIPT = REPO_ROOT / "benchmarks" / "speed.py"


# The steps run on the first rows of Debian's Fashion-MNIST files; the benchmark
# itself builds from all 70,000.
FASHION_TRAIN, FASHION_TEST = 2_000, 500


def _child(*args) -> dict:
    return run_benchmark_child("speed", *args)


def _first_rows_of_fashion_mnist(folder):
    """Debian's Fashion-MNIST files cut to their first rows, same names and layout."""
    folder.mkdir()
    for prefix, rows in (("train", FASHION_TRAIN), ("t10k", FASHION_TEST)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte.gz"
            idx.write_idx(folder / name, idx.read_idx(FASHION_MNIST_DIR / name)[:rows])
    return folder


@pytest.fixture
def fashion_files(tmp_path):
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Debian's Fashion-MNIST files are not in {FASHION_MNIST_DIR} "
                    "(apt-get install -y dataset-fashion-mnist)")
    return _first_rows_of_fashion_mnist(tmp_path / "fashion_files")


def test_build_and_read_steps(tmp_path, fashion_files):
    # 2 GiB resident here: a child's peak RSS must be its own, not its parent's.
    parent_memory = bytearray(2 * 2**30)
    parent_memory[:: 2**12] = bytes(len(parent_memory[:: 2**12]))
    qmnist = _child("build", "qmnist/qmnist", DUMMY_DATA, tmp_path / "q", "tfrecord")
    assert qmnist["examples"] == 20 + 10_010 + 10_000 + 10
    assert all(qmnist[key] > 0 for key in ("seconds", "cpu_seconds", "import_seconds",
                                           "peak_rss_mib"))
    assert qmnist["imported_tensorflow"]
    imports = _child("imports")["peak_rss_mib"]
    assert 0 < imports <= qmnist["peak_rss_mib"] < 2 * 1024
    del parent_memory
    # The fashion_mnist build and the read step in this process, which has imported
    # TensorFlow already: the qmnist build above ran the step in a process of its own.
    speed = _speed_module()
    fashion = speed.child_build("fashion_mnist", fashion_files, tmp_path / "f", "tfrecord")
    assert fashion["examples"] == FASHION_TRAIN + FASHION_TEST
    # ... and leaves TFDS's fashion_mnist as it was.
    assert (mnist._TRAIN_EXAMPLES, mnist._TEST_EXAMPLES) == (60_000, 10_000)
    assert "url_infos" not in vars(mnist.FashionMNIST)
    read = speed.child_read(tmp_path / "q", tmp_path / "f", 1, 32)
    assert set(read["seconds"]) == {
        "to_numpy_tfds", "to_numpy_fast", "stream_qmnist", "stream_qmnist_image_label",
        "stream_fashion_mnist", "stream_qmnist_png_undecoded",
        "stream_fashion_mnist_png_undecoded"}
    assert all(len(rounds) == 1 and min(rounds) > 0 for rounds in read["seconds"].values())
    assert 100 < read["mean_png_bytes"]["fashion_mnist"] < 1000
    assert read["mean_png_bytes"]["qmnist"] > 0


def test_array_record_build_and_random_access_steps(tmp_path, fashion_files):
    python_build = _child("build", "qmnist/qmnist", DUMMY_DATA, tmp_path / "a", "array_record",
                          "without-tensorflow-first")
    assert not python_build["imported_tensorflow"]
    assert python_build["examples"] == 20 + 10_010 + 10_000 + 10
    fashion_python = _child("build", "fashion_mnist", fashion_files, tmp_path / "fa",
                            "array_record", "without-tensorflow-first")
    assert fashion_python["imported_tensorflow"]
    assert fashion_python["examples"] == FASHION_TRAIN + FASHION_TEST
    assert _child("random", tmp_path / "a", 10)["reads_per_second"] > 0


def test_same_pixel_files_hold_fashion_mnists_images():
    if not (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Debian's Fashion-MNIST files are not in {FASHION_MNIST_DIR}")
    speed = _speed_module()
    fashion_test = idx.read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    test = speed.same_pixel_images("test", 60_000)
    assert test.shape == (60_000, 28, 28)
    np.testing.assert_array_equal(test[:10_000], fashion_test)
    # The other copies: each rotation or mirror image of the test set, once.
    copies = test.reshape(6, 10_000, 28, 28)
    for k in range(6):
        np.testing.assert_array_equal(copies[k], speed._dihedral(fashion_test, k))
    assert len({copy.tobytes() for copy in copies[:, :50]}) == 6


def _speed_module():
    return load_benchmark("speed")


def test_micro_benchmark_runs(monkeypatch, capsys):
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Debian's Fashion-MNIST files are not in {FASHION_MNIST_DIR}")
    # Its `main` in this process, which has imported TensorFlow already: the script
    # measures CPU time of steps, not a fresh process.
    monkeypatch.setattr(sys, "argv", ["micro.py", "--rounds", "1", "--images", "3000"])
    load_benchmark("micro").main()
    lines = capsys.readouterr().out.splitlines()
    assert sum("serialize 3,000 records" in line and "us/record" in line for line in lines) == 2
    assert sum("PNG-encode 3,000 images" in line and "us/image" in line for line in lines) == 3
    assert sum("s CPU per 60,000 images" in line for line in lines) == 3


def test_load_arrays_benchmark_reads_both_builds_with_and_without_tensorflow(
        dummy_build, array_record_build):
    load_arrays = load_benchmark("load_arrays")
    # With TensorFlow: in this process, which has imported it; without: a process that
    # must not import it.
    with_tf = load_arrays.child_read(dummy_build, array_record_build, True)
    without_tf = run_benchmark_child("load_arrays", "read", dummy_build, array_record_build, 0)
    assert not without_tf["imported_tensorflow"]
    seconds = {}
    for read in (with_tf, without_tf):
        assert read["examples"] == [20]  # the dummy train split's rows
        assert not seconds.keys() & read["seconds"].keys()
        seconds |= read["seconds"]
    assert sorted(seconds) == sorted(load_arrays.TASKS)
    assert all(value > 0 for value in seconds.values())
