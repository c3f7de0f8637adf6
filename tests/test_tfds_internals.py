"""TFDS's private names: all in `qmnist_tfds.tfds_internals`, all present, each fallback forced.

CI runs this file in every stack, so the list is checked against each TFDS
release the package supports. A fallback is forced by reporting its names
missing; `_resolve` then fails the test if the fallback looks them up anyway.
"""

from __future__ import annotations

import ast
import logging
import os
import pathlib
import re
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds

from qmnist_tfds import data_source, downloads, fail_fast, shards, tfds_internals
from qmnist_tfds.qmnist import qmnist_dataset_builder
from tests.conftest import DUMMY_DATA, build

PACKAGE = pathlib.Path(tfds_internals.__file__).parent  # as installed, in CI's stacks
# The underscored parts of the listed names (`_Downloader`, `_example_writer`, ...).
PRIVATE_ATTRIBUTES = {part for i in tfds_internals.INTERNALS for part in i.name.split(".")
                      if part.startswith("_")}


@pytest.fixture
def without(monkeypatch):
    """`without(*suffixes)`: the internals whose names end so are reported missing,
    and looking one of them up fails the test."""
    def force(*suffixes: str) -> None:
        names = tuple(i.name for i in tfds_internals.INTERNALS if i.name.endswith(suffixes))
        assert len(names) == len(suffixes), suffixes
        resolve = tfds_internals._resolve

        def guarded(dotted, static=False):
            assert dotted not in names, f"the fallback looked up {dotted}"
            return resolve(dotted, static)

        monkeypatch.setattr(tfds_internals, "missing", lambda: names)
        monkeypatch.setattr(tfds_internals, "_resolve", guarded)
    return force


def test_the_installed_tfds_has_every_internal_as_the_package_uses_it():
    tfds_internals.missing.cache_clear()
    assert tfds_internals.missing() == (), f"TFDS {tfds.__version__}"
    names = [i.name for i in tfds_internals.INTERNALS]
    assert len(set(names)) == len(names)
    for internal in tfds_internals.INTERNALS:
        assert internal.why and internal.fallback, internal.name


def test_a_changed_signature_counts_as_missing(monkeypatch):
    from tensorflow_datasets.core.utils import shard_utils

    monkeypatch.setattr(shard_utils, "get_shard_boundaries", lambda count, shards: [count])
    tfds_internals.missing.cache_clear()
    try:
        assert tfds_internals.missing() == (
            "tensorflow_datasets.core.utils.shard_utils.get_shard_boundaries",)
    finally:
        monkeypatch.undo()
        tfds_internals.missing.cache_clear()


def _violations(source: str) -> list[str]:
    """Private TFDS names that `source` uses: `tensorflow_datasets.<...>` imports and
    strings, `tfds.core.<module>` and `tfds._x` names, and the listed underscored
    attributes on anything."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "tensorflow_datasets"):
            found.append(f"from {node.module} import {node.names[0].name}")
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("tensorflow_datasets.")]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                "tensorflow_datasets.core" in node.value):
            found.append(repr(node.value))
        elif isinstance(node, ast.Attribute):
            if node.attr in PRIVATE_ATTRIBUTES:
                found.append(f".{node.attr}")
            inner = node.value
            if (isinstance(inner, ast.Name) and inner.id == "tfds"
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                found.append(f"tfds.{node.attr}")
            if (isinstance(inner, ast.Attribute) and inner.attr == "core"
                    and isinstance(inner.value, ast.Name) and inner.value.id == "tfds"
                    and not node.attr[0].isupper()):
                found.append(f"tfds.core.{node.attr}")
    return found


def test_the_scan_finds_private_names():
    source = ("from tensorflow_datasets.core import writer\n"
              "import tensorflow_datasets.core.utils\n"
              "x = tfds.core.utils.tqdm\ny = builder._example_writer()\n"
              "z = 'tensorflow_datasets.core.naming'\nw = tfds._private\n"
              "ok = tfds.core.SplitInfo, tfds.decode.DeserializeMethod\n")
    assert sorted(_violations(source)) == sorted([
        "from tensorflow_datasets.core import writer", "tensorflow_datasets.core.utils",
        "tfds.core.utils", "._example_writer", "'tensorflow_datasets.core.naming'",
        "tfds._private"])


def test_no_module_but_the_seam_uses_a_private_tfds_name():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "tfds_internals.py" in modules
    found = {os.fspath(path.relative_to(PACKAGE)): _violations(path.read_text())
             for path in modules if path.name != "tfds_internals.py"}
    assert {path: names for path, names in found.items() if names} == {}


# --- each fallback, forced ------------------------------------------------------------

FAST_WRITER = ("_example_writer", "_get_filename_template", "get_shard_boundaries",
               "ShardConfig.get_number_shards")


def _records(builder) -> dict[str, list]:
    return {split: [{k: np.asarray(v).tolist() for k, v in example.items()}
                    for example in tfds.as_numpy(builder.as_dataset(split))]
            for split in builder.info.splits}


@pytest.fixture(scope="module")
def nist_fast(tmp_path_factory):
    return _records(build("nist", tmp_path_factory.mktemp("fast"), DUMMY_DATA,
                          DUMMY_DATA / "checksums.tsv"))


@pytest.mark.parametrize("suffix", FAST_WRITER)
def test_without_an_internal_of_the_fast_writer_tfds_writes_the_same_dataset(
        suffix, without, nist_fast, tmp_path, caplog):
    without(suffix)
    with mock.patch.object(shards, "write_split", side_effect=AssertionError("fast writer")):
        builder = build("nist", tmp_path, DUMMY_DATA, DUMMY_DATA / "checksums.tsv")
    assert _records(builder) == nist_fast
    assert "writing with TFDS's own writer" in caplog.text
    assert tfds.core.FileFormat.ARRAY_RECORD in builder.info.alternative_file_formats
    assert len(builder.as_data_source("nist")) == len(nist_fast["nist"])


def test_without_the_generate_splits_step_tfds_builds_tfrecord_only(without, nist_fast,
                                                                     tmp_path):
    without("GeneratorBasedBuilder._generate_splits")
    with mock.patch.object(shards, "generate_splits", side_effect=AssertionError("ours")):
        builder = build("nist", tmp_path, DUMMY_DATA, DUMMY_DATA / "checksums.tsv")
    assert _records(builder) == nist_fast
    assert builder.info.alternative_file_formats == []
    assert not list(builder.data_path.glob("*.array_record*"))
    with pytest.raises(NotImplementedError, match="tfds convert_format"):
        builder.as_data_source("nist")


def test_without_tqdm_there_is_no_progress_bar(without):
    without("utils.tqdm")
    with (mock.patch.object(tfds.core.utils, "tqdm", side_effect=AssertionError("tqdm")),
          tfds_internals.progress(desc="x", unit=" examples") as progress):
        progress.update(3)


def test_without_the_reader_override_shuffled_files_are_refused(without, dummy_build):
    builder = tfds.builder("qmnist/nist", data_dir=os.fspath(dummy_build))
    shuffled = sorted(int(e["nist_index"]) for e in
                      tfds.as_numpy(builder.as_dataset("nist", shuffle_files=True)))
    assert shuffled == sorted(int(e["nist_index"]) for e in
                              tfds.as_numpy(builder.as_dataset("nist")))
    without("_as_dataset")
    with pytest.raises(ValueError, match="shuffle_files=True"):
        builder.as_dataset("nist", shuffle_files=True)


def test_without_create_builder_config_tfds_names_the_unknown_config(without):
    with pytest.raises(ValueError, match="The configs of qmnist are: qmnist, nist"):
        tfds.builder("qmnist/nope", data_dir="/nonexistent")
    without("_create_builder_config")
    with pytest.raises(ValueError) as raised:
        tfds.builder("qmnist/nope", data_dir="/nonexistent")
    assert "nope" in str(raised.value) and "The configs of" not in str(raised.value)


def test_without_checksums_path_downloads_are_still_verified_against_the_file(without):
    """`url_infos`, which verifies downloads, reads the checksums file itself."""
    without("_checksums_path")
    expected = {}
    for line in downloads.checksums_file().read_text().splitlines():
        url, size, sha256, _ = line.split("\t")
        expected[url] = (int(size), sha256)
    records = qmnist_dataset_builder.Builder(data_dir="/nonexistent").url_infos
    assert {url: (int(r.size), r.checksum) for url, r in records.items()} == expected


def test_without_classproperty_the_checksums_path_is_the_same(without):
    expected = qmnist_dataset_builder.Builder._checksums_path
    without("utils.classproperty")

    class Probe:
        path = tfds_internals._class_property(lambda cls: (cls, downloads.checksums_file()))

    assert Probe.path == (Probe, expected) and Probe().path == (Probe, expected)


def test_without_load_url_infos_a_download_is_refused_naming_tfds(without):
    without("load_url_infos")
    with pytest.raises(RuntimeError, match=f"TFDS {re.escape(tfds.__version__)} .* cannot verify"):
        tfds_internals.registered_url_infos()


def test_without_the_gcs_switch_tfds_lookups_are_left_alone(without):
    from tensorflow_datasets.core.utils import gcs_utils

    with mock.patch.object(gcs_utils, "_is_gcs_disabled", False):
        with tfds_internals.no_bucket_lookups():
            assert gcs_utils._is_gcs_disabled is True
        assert gcs_utils._is_gcs_disabled is False
        without("gcs_utils._is_gcs_disabled")
        with tfds_internals.no_bucket_lookups():
            assert gcs_utils._is_gcs_disabled is False


@pytest.mark.parametrize("suffix", ["_open_url", "_Downloader.download",
                                    "_Downloader._sync_download"])
def test_without_a_downloader_hook_downloads_are_tfds_own_with_a_warning(
        suffix, without, monkeypatch, caplog):
    from tensorflow_datasets.core.download import downloader

    before = (downloader._open_url, downloader._Downloader.download,
              downloader._Downloader._sync_download)
    monkeypatch.setattr(fail_fast, "_installed", False)
    without(suffix)
    manager = mock.Mock(download=lambda urls: {key: "path" for key in urls})
    with caplog.at_level(logging.WARNING):
        assert fail_fast.download(manager, "qmnist", {"k": "https://example.org/f"}) == {
            "k": "path"}
    assert "retried as TFDS retries it" in caplog.text
    assert (downloader._open_url, downloader._Downloader.download,
            downloader._Downloader._sync_download) == before


def test_without_max_retries_fail_fast_retries_ten_times(without):
    from tensorflow_datasets.core.download import downloader

    assert fail_fast.retry_policy().total == downloader.MAX_RETRIES == 10
    without("downloader.MAX_RETRIES")
    assert fail_fast.retry_policy().total == 10


def test_without_tfds_array_record_source_tfds_sources_and_load_arrays_serve(
        without, dummy_build):
    import qmnist_tfds

    builder = tfds.builder("qmnist", data_dir=os.fspath(dummy_build))
    served = builder.as_data_source("test")
    assert isinstance(served, data_source.InMemoryDataSource)
    without("array_record.ArrayRecordDataSource")
    sources = builder.as_data_source("test")
    assert type(sources).__name__ == "ArrayRecordDataSource"
    assert not isinstance(sources, data_source.InMemoryDataSource)
    expected = tfds.as_numpy(tfds.load("qmnist", split="test", data_dir=os.fspath(dummy_build),
                                       batch_size=-1))
    found = qmnist_tfds.load_arrays("test", data_dir=dummy_build)
    assert found.keys() == expected.keys()
    for key, values in expected.items():
        assert found[key].dtype == values.dtype
        np.testing.assert_array_equal(found[key], values)


def test_default_data_dir_is_tfds_own_and_without_it_the_documented_one(without,
                                                                         monkeypatch):
    # Where TFDS puts a dataset that is given no data_dir and is prepared nowhere.
    unprepared = tfds.testing.DummyMnist()
    assert tfds_internals.default_data_dir() == os.fspath(
        pathlib.Path(unprepared.data_dir).parents[1])
    without("constants.DATA_DIR")
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    home = os.path.join(os.path.expanduser("~"), "tensorflow_datasets")
    assert tfds_internals.default_data_dir() == home
    monkeypatch.setenv("TFDS_DATA_DIR", "/data/tfds")
    assert tfds_internals.default_data_dir() == "/data/tfds"


def test_every_internal_has_a_forced_fallback_here():
    source = pathlib.Path(__file__).read_text()
    tested = set(FAST_WRITER) | {"_open_url", "_Downloader.download",
                                 "_Downloader._sync_download"}
    tested |= {node.args[0].value for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "without"
               and node.args and isinstance(node.args[0], ast.Constant)}
    for internal in tfds_internals.INTERNALS:
        assert any(internal.name.endswith(suffix) for suffix in tested), internal.name
