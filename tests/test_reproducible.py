"""Two builds of the same files, in two processes, write the same shards byte for byte."""

from __future__ import annotations

import os

import pytest

from qmnist_tfds import shards
from tests.conftest import DUMMY_DATA
from tests.test_cli import _tfds_build


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
    built = []
    for run in ("first", "second"):
        data_dir = tmp_path / run
        # A bare `qmnist` builds both configs.
        result = _tfds_build("qmnist", "--manual_dir", os.fspath(DUMMY_DATA),
                             "--data_dir", os.fspath(data_dir), "--file_format", file_format,
                             checksums=DUMMY_DATA / "checksums.tsv")
        assert result.returncode == 0, result.stderr[-3000:]
        built.append(_shard_bytes(data_dir))
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
