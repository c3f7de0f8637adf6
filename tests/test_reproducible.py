"""Builds of the same files write the same shards byte for byte: `tfds build` in this
process, and the `tfds` command in a process of its own."""

from __future__ import annotations

import os
import subprocess

from qmnist_tfds import shards
from tests.conftest import DUMMY_DATA
from tests.test_cli import _tfds_build, _tfds_command


def _shard_bytes(data_dir) -> dict[str, bytes]:
    """Every shard and digest file of every config, by path under `data_dir`."""
    files = {}
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and any(kind in path.name for kind in (
                ".tfrecord-", ".array_record-", shards.DIGESTS_SUFFIX)):
            files[os.fspath(path.relative_to(data_dir))] = path.read_bytes()
    return files


def _args(data_dir, file_format):  # a bare `qmnist` builds both configs
    return ("qmnist", "--manual_dir", os.fspath(DUMMY_DATA), "--data_dir", os.fspath(data_dir),
            "--file_format", file_format)


def test_two_builds_write_the_same_shards(tmp_path):
    """A default (TFRecord) build here and one in a process of its own write the same
    files, array_record copies included; an array_record build writes the same
    array_record files as those copies, so its bytes too are the same in any process."""
    checksums = DUMMY_DATA / "checksums.tsv"
    _tfds_build(*_args(tmp_path / "first", "tfrecord"), checksums=checksums)
    command, env = _tfds_command(*_args(tmp_path / "second", "tfrecord"), checksums=checksums)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    _tfds_build(*_args(tmp_path / "array_record", "array_record"), checksums=checksums)
    first, second, array_record = (_shard_bytes(tmp_path / run)
                                   for run in ("first", "second", "array_record"))
    # 4 qmnist splits of one shard each, 30 nist rows in 30 shards (one per row at most),
    # in each format; one digest file per split.
    for suffix in (".tfrecord-", ".array_record-"):
        assert sum(suffix in name for name in first) == 4 + 30
    assert sum(name.endswith(shards.DIGESTS_SUFFIX) for name in first) == 5
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"{len(differing)} files differ, first {differing[0]}"

    shard_names = {name for name in array_record if not name.endswith(shards.DIGESTS_SUFFIX)}
    assert shard_names == {name for name in first if ".array_record-" in name}
    differing = [name for name in shard_names if array_record[name] != first[name]]
    assert not differing, f"{len(differing)} files differ, first {differing[0]}"
    assert sum(name.endswith(shards.DIGESTS_SUFFIX) for name in array_record) == 5
    for run, files in (("second", second), ("array_record", array_record)):
        for folder in {os.path.dirname(name) for name in files}:
            report = shards.check_digests(tmp_path / run / folder)
            assert report and all(line.endswith(": OK") for line in report)
