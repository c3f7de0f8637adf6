"""Two builds of the same files, in two processes, write the same shards byte for byte:
`tfds build` in this process, and the `tfds` command in a process of its own."""

from __future__ import annotations

import os
import subprocess

import pytest

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


@pytest.mark.parametrize("file_format", ["tfrecord", "array_record"])
def test_two_builds_write_the_same_shards(tmp_path, file_format):
    def args(data_dir):  # a bare `qmnist` builds both configs
        return ("qmnist", "--manual_dir", os.fspath(DUMMY_DATA), "--data_dir",
                os.fspath(data_dir), "--file_format", file_format)

    _tfds_build(*args(tmp_path / "first"), checksums=DUMMY_DATA / "checksums.tsv")
    command, env = _tfds_command(*args(tmp_path / "second"),
                                 checksums=DUMMY_DATA / "checksums.tsv")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    built = [_shard_bytes(tmp_path / run) for run in ("first", "second")]
    first, second = built
    suffix = f".{file_format}-"
    # 4 qmnist splits of one shard each, 30 nist rows in 30 shards (one per row at most).
    assert sum(suffix in name for name in first) == 4 + 30
    # A TFRecord build writes an array_record copy of each shard, compared below
    # too; an array_record build writes that format alone.
    other = ".array_record-" if file_format == "tfrecord" else ".tfrecord-"
    assert sum(other in name for name in first) == (4 + 30 if file_format == "tfrecord" else 0)
    assert sum(name.endswith(shards.DIGESTS_SUFFIX) for name in first) == 5
    assert first.keys() == second.keys()
    differing = [name for name in first if first[name] != second[name]]
    assert not differing, f"{len(differing)} files differ, first {differing[0]}"
    for folder in {os.path.dirname(name) for name in first}:
        report = shards.check_digests(tmp_path / "second" / folder)
        assert report and all(line.endswith(": OK") for line in report)
