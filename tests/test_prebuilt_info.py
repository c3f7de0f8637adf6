"""What `tfds.builder("qmnist").info` says before the first build, offline, and after it."""

from __future__ import annotations

import csv
import gzip
import json
import lzma
import os
import socket
import struct

import pytest
import tensorflow_datasets as tfds

from tests.conftest import DUMMY_DATA, FULL_SIZE_NIST, REPO_ROOT, build, full_size_files

CHECKSUMS = REPO_ROOT / "checksums" / "qmnist.tsv"
# The upstream files each config reads, by file name prefix.
PREFIXES = {"qmnist": "qmnist-", "nist": "xnist-"}
LABEL_FILES = {"train": "qmnist-train-labels-idx2-int.gz",
               "test": "qmnist-test-labels-idx2-int.gz",
               "nist": "xnist-labels-idx2-int.xz"}
IMAGE_FILES = {"train": "qmnist-train-images-idx3-ubyte.gz",
               "test": "qmnist-test-images-idx3-ubyte.gz",
               "nist": "xnist-images-idx3-ubyte.xz"}


def _rows(path) -> int:
    """The row count in an IDX file's header (bytes 4-7 of the decompressed file)."""
    opener = gzip.open if path.name.endswith(".gz") else lzma.open
    with opener(path, "rb") as f:
        header = f.read(8)
    return struct.unpack(">I", header[4:8])[0]


def _registered_sizes(path, config) -> dict[str, int]:
    """File name -> size, from a checksums file, for the files of `config`."""
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f, delimiter="\t") if row and not row[0].startswith("#")]
    return {row[3]: int(row[1]) for row in rows if row[3].startswith(PREFIXES[config])}


def _expected_counts(rows: dict[str, int]) -> dict[str, dict[str, int]]:
    """Each config's split sizes, from the row counts of its label files (README's table:
    test10k is the first 10,000 test rows, test50k the rest)."""
    return {"qmnist": {"train": rows["train"], "test": rows["test"], "test10k": 10_000,
                       "test50k": rows["test"] - 10_000},
            "nist": {"nist": rows["nist"]}}


def _counts(info) -> dict[str, int]:
    return {name: split.num_examples for name, split in info.splits.items()}


@pytest.fixture()
def no_network(monkeypatch):
    """Any name lookup or connection attempt fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access: {args}")
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.mark.parametrize("config", ["qmnist", "nist"])
def test_info_before_a_build_matches_the_real_label_files_and_checksums(
        tmp_path, no_network, upstream_dir, config):
    builder = tfds.builder(f"qmnist/{config}", data_dir=os.fspath(tmp_path))
    rows = {split: _rows(upstream_dir / name) for split, name in LABEL_FILES.items()}
    assert _counts(builder.info) == _expected_counts(rows)[config]
    assert builder.info.download_size == sum(_registered_sizes(CHECKSUMS, config).values())
    assert builder.info.dataset_size == 0  # printed "Unknown size": known after a build
    assert not builder.is_prepared()
    assert not list(tmp_path.rglob("*"))  # asking wrote nothing


def test_info_before_a_build_offline_in_a_fresh_data_dir(tmp_path, no_network):
    """Without the real label files too (a fresh clone): the README's figures."""
    infos = {c: tfds.builder(f"qmnist/{c}", data_dir=os.fspath(tmp_path)).info
             for c in PREFIXES}
    assert _counts(infos["qmnist"]) == {"train": 60_000, "test": 60_000, "test10k": 10_000,
                                        "test50k": 50_000}
    assert _counts(infos["nist"]) == {"nist": 402_953}
    # README: "downloads: 20.4 MB (`qmnist`), 52.3 MB (`nist`)".
    assert round(infos["qmnist"].download_size / 1e6, 1) == 20.4
    assert round(infos["nist"].download_size / 1e6, 1) == 52.3
    assert tfds.builder("qmnist", data_dir=os.fspath(tmp_path)).info.splits.keys() == {
        "train", "test", "test10k", "test50k"}


def test_mirror_info_has_the_same_download_size(tmp_path, no_network):
    builder = tfds.builder("qmnist/nist", data_dir=os.fspath(tmp_path),
                           mirror_url="http://127.0.0.1:1/qmnist")
    assert builder.info.download_size == sum(_registered_sizes(CHECKSUMS, "nist").values())


def test_build_banner_shows_the_download_size(tmp_path, capsys):
    # The builder is made before the dummy checksums are swapped in: it announces
    # the real files' size, then builds from the dummy files.
    build("nist", tmp_path / "data", DUMMY_DATA, DUMMY_DATA / "checksums.tsv")
    size = sum(_registered_sizes(CHECKSUMS, "nist").values())
    banner = next(line for line in capsys.readouterr().out.splitlines()
                  if line.startswith("Downloading and preparing dataset"))
    shown = f"{tfds.core.units.Size(size)}"
    assert banner.startswith(f"Downloading and preparing dataset {shown} (download: {shown}, "
                             "generated: Unknown size, total: "), banner


def test_after_a_build_info_is_the_builds(dummy_build):
    """The dummy files' counts, shards and sizes, read back and in dataset_info.json:
    nothing of the info shown before the build is left."""
    rows = {split: _rows(DUMMY_DATA / name) for split, name in LABEL_FILES.items()}
    for config, expected in _expected_counts(rows).items():
        builder = tfds.builder(f"qmnist/{config}", data_dir=os.fspath(dummy_build))
        assert builder.is_prepared()
        assert _counts(builder.info) == expected
        assert builder.info.download_size == sum(
            _registered_sizes(DUMMY_DATA / "checksums.tsv", config).values())
        written = json.loads((builder.data_path / "dataset_info.json").read_text())
        assert {s["name"]: sum(map(int, s["shardLengths"])) for s in written["splits"]} == expected
        assert int(written["downloadSize"]) == builder.info.download_size
        assert all(int(s["numBytes"]) > 0 for s in written["splits"])
    nist = tfds.builder("qmnist/nist", data_dir=os.fspath(dummy_build)).info.splits["nist"]
    assert nist.shard_lengths == [1] * 30  # the build's shards, not the 128 shown before


@pytest.mark.parametrize("config", ["qmnist", pytest.param("nist", marks=FULL_SIZE_NIST)])
def test_info_before_a_build_is_what_a_full_size_build_writes(request, tmp_path, upstream_dir,
                                                              config):
    before = tfds.builder(f"qmnist/{config}", data_dir=os.fspath(tmp_path / "data")).info
    expected = {name: split.shard_lengths for name, split in before.splits.items()}
    if config == "nist":  # the suite's full-size nist build
        data_dir = request.getfixturevalue("full_size_nist_build")
        built = tfds.builder("qmnist/nist", data_dir=os.fspath(data_dir)).info
    else:
        checksums = full_size_files(tmp_path / "files", upstream_dir, ["train", "test"])
        built = build(config, tmp_path / "data", tmp_path / "files", checksums).info
    assert _counts(built) == _counts(before)
    assert {name: split.shard_lengths for name, split in built.splits.items()} == expected
