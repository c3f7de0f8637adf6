"""The speed benchmark's steps run and report what they measured (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import DUMMY_DATA, FASHION_MNIST_DIR, REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "speed.py"


def _child(*args) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, os.fspath(SCRIPT), "--child", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_build_read_and_random_access_steps(tmp_path):
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"Debian's Fashion-MNIST files are not in {FASHION_MNIST_DIR} "
                    "(apt-get install -y dataset-fashion-mnist)")
    qmnist = _child("build", "qmnist/qmnist", DUMMY_DATA, tmp_path / "q", "tfrecord")
    assert qmnist["examples"] == 20 + 10_010 + 10_000 + 10
    assert qmnist["seconds"] > 0 and qmnist["peak_rss_mib"] > 0
    fashion = _child("build", "fashion_mnist", FASHION_MNIST_DIR, tmp_path / "f", "tfrecord")
    assert fashion["examples"] == 70_000
    read = _child("read", tmp_path / "q", tmp_path / "f", 1, 32)
    assert set(read) == {"to_numpy_tfds", "to_numpy_fast", "stream_qmnist",
                         "stream_qmnist_image_label", "stream_fashion_mnist",
                         "stream_qmnist_png_undecoded", "stream_fashion_mnist_png_undecoded"}
    assert all(seconds > 0 for seconds in read.values())
    _child("build", "qmnist/qmnist", DUMMY_DATA, tmp_path / "a", "array_record")
    assert _child("random", tmp_path / "a", 10)["reads_per_second"] > 0
    assert 0 < _child("imports")["peak_rss_mib"] <= qmnist["peak_rss_mib"]


def test_peak_rss_is_the_childs_own():
    parent_memory = bytearray(2 * 2**30)
    parent_memory[:: 2**12] = bytes(len(parent_memory[:: 2**12]))  # make it resident
    assert _child("imports")["peak_rss_mib"] < 2 * 1024  # not the parent's 2 GiB
