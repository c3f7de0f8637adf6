"""Faults: a build killed mid-write, and two builds racing for the same data_dir.

The build killed, and the first of the two racing, are `tfds build` commands in
processes of their own; the rerun and the second build go through the command's
code in this process (`tests.test_cli.tfds_in_process`). What a build must hold
is read from the files it was built from.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from qmnist_tfds import downloads, examples, idx, load_arrays, synthetic
from tests.test_cli import _tfds_build, _tfds_command

NIST_ROWS = 60_000  # several seconds of writing: long enough to be killed midway

# Under pytest-xdist both tests run on one worker, which builds the fixtures once.
pytestmark = pytest.mark.xdist_group("faults")


@pytest.fixture(scope="module")
def nist_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nist_files")
    # 4,096 distinct images, repeated: the files are written in half the time, and a
    # build encodes every row all the same.
    synthetic.write_all(folder, {"nist": NIST_ROWS}, distinct_images=4096)
    return folder


@pytest.fixture(scope="module")
def expected(nist_files) -> dict[str, np.ndarray]:
    """Every feature of an uninterrupted build, from the files: pixels and label columns."""
    images = idx.read_idx(nist_files / downloads.FILES["nist_images"])
    labels = idx.read_idx(nist_files / downloads.FILES["nist_labels"])
    return {"image": images[..., None], "label": labels[:, 0],
            **{name: labels[:, column] for name, (column, _) in examples.METADATA_COLUMNS.items()}}


def _args(files, data_dir):
    return ("qmnist/nist", "--manual_dir", os.fspath(files), "--data_dir", os.fspath(data_dir))


def _assert_built(data_dir, expected) -> None:
    """The nist config is prepared in `data_dir` and holds every row of the files, in order."""
    builder = tfds.builder("qmnist/nist", data_dir=os.fspath(data_dir))
    assert builder.is_prepared()
    assert builder.info.splits["nist"].num_examples == NIST_ROWS
    arrays = load_arrays("nist", name="qmnist/nist", data_dir=data_dir)
    assert arrays.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_array_equal(arrays[key], values, err_msg=key)


def _start(files, data_dir, log) -> subprocess.Popen:
    """`tfds build` in a process of its own, its stdout and stderr into the file `log`:
    not a pipe, which a build holding the build lock could fill while the test waits
    for the other one."""
    command, env = _tfds_command(*_args(files, data_dir), checksums=files / "checksums.tsv")
    with open(log, "w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_for_staging(process: subprocess.Popen, config_dir) -> None:
    """Returns once `process` has begun staging its build in `config_dir` (TFDS's
    `incomplete.*` folder, made under the build lock), failing if it ends first."""
    deadline = time.monotonic() + 120
    while not list(config_dir.glob("incomplete.*")):
        assert process.poll() is None, "the build ended before its staging was seen"
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_killed_build_then_rerun_equals_an_uninterrupted_build(nist_files, expected, tmp_path):
    data_dir = tmp_path / "data"
    config_dir = data_dir / "qmnist" / "nist"
    process = _start(nist_files, data_dir, tmp_path / "killed.log")
    try:
        _wait_for_staging(process, config_dir)
        time.sleep(1.0)  # into the writing of examples
        assert process.poll() is None, "the build ended before it could be killed"
    finally:
        process.send_signal(signal.SIGKILL)  # (nothing, if it has ended)
        process.wait()
    assert not tfds.builder("qmnist/nist", data_dir=os.fspath(data_dir)).is_prepared()
    leftovers = list(config_dir.glob("incomplete.*"))
    assert leftovers, "a hard kill leaves TFDS's staging folder behind"

    _tfds_build(*_args(nist_files, data_dir), checksums=nist_files / "checksums.tsv")
    _assert_built(data_dir, expected)
    # The leftover staging folder is ignored: only the version folder is read.
    assert sorted(p.name for p in config_dir.iterdir() if not p.name.startswith(".")) == sorted(
        ["1.0.0", *(p.name for p in leftovers)])


def test_two_builds_at_once_give_one_valid_dataset(nist_files, expected, tmp_path, caplog):
    """A `tfds build` process, and while it writes, the same command in this process:
    the second waits for the first, then reuses what it prepared."""
    # The command's modules, imported now, so that the second build reaches the lock
    # within a moment of the first one's staging, while the first still writes.
    from tensorflow_datasets.scripts.cli import main  # noqa: F401

    data_dir = tmp_path / "data"
    log = tmp_path / "first.log"
    first = _start(nist_files, data_dir, log)
    try:
        _wait_for_staging(first, data_dir / "qmnist" / "nist")
        assert first.poll() is None, "the first build ended before the second began"
        caplog.set_level(logging.INFO)
        _tfds_build(*_args(nist_files, data_dir), checksums=nist_files / "checksums.tsv")
        code = first.wait(timeout=600)
    finally:
        first.kill()
        first.wait()
    output = log.read_text(errors="replace")
    assert code == 0, output[-2000:]
    assert "Reusing dataset qmnist" not in output
    assert "Reusing dataset qmnist" in caplog.text
    _assert_built(data_dir, expected)
    assert not list((data_dir / "qmnist" / "nist").glob("incomplete.*"))
