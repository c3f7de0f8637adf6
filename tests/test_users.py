"""What users run into: manual folders laid out by torchvision, names, multi-host reading."""

from __future__ import annotations

import gzip
import lzma
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from qmnist_tfds import downloads
from tests.conftest import DUMMY_DATA
from tests.test_cli import _tfds_build


def test_manual_dir_laid_out_by_torchvision(tmp_path):
    """torchvision's QMNIST/raw keeps each .gz/.xz beside its decompressed copy."""
    raw = tmp_path / "QMNIST" / "raw"
    raw.mkdir(parents=True)
    for name in downloads.FILES.values():
        shutil.copy(DUMMY_DATA / name, raw)
        opener = lzma.open if name.endswith(".xz") else gzip.open
        with opener(raw / name) as f:
            (raw / name.rsplit(".", 1)[0]).write_bytes(f.read())
    for config in ("qmnist", "nist"):  # the README's offline command, on that folder
        _tfds_build(f"qmnist/{config}", "--manual_dir", os.fspath(raw), "--data_dir",
                    os.fspath(tmp_path / "data"), checksums=DUMMY_DATA / "checksums.tsv")
        assert tfds.builder(f"qmnist/{config}", data_dir=os.fspath(tmp_path / "data")).is_prepared()


def test_show_examples_one_liner(dummy_build, monkeypatch):
    """The README's `tfds.show_examples` line, as written, with TFDS's default data dir."""
    matplotlib = pytest.importorskip("matplotlib", reason="needs matplotlib")
    matplotlib.use("Agg")
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", os.fspath(dummy_build))
    figure = tfds.show_examples(*tfds.load("qmnist", split="train", with_info=True))
    assert len(figure.axes) == 9


@pytest.mark.parametrize(("name", "split", "listed"), [
    ("qmnist", "test10K", "Should be one of ['train', 'test', 'test10k', 'test50k']"),
    ("qmnist/nist", "train", "['nist']"),
])
def test_wrong_split_names_list_ours(dummy_build, name, split, listed):
    with pytest.raises(ValueError, match=r"Unknown split") as error:
        tfds.load(name, split=split, data_dir=os.fspath(dummy_build))
    assert listed in str(error.value)


def test_wrong_config_name_lists_ours(dummy_build):
    with pytest.raises(ValueError, match="nist_v2") as error:
        tfds.builder("qmnist/nist_v2", data_dir=os.fspath(dummy_build))
    assert "The configs of qmnist are: qmnist, nist." in str(error.value)
    assert "closely match" not in str(error.value)


@pytest.mark.parametrize("split", ["train", "test", "test50k"])
@pytest.mark.parametrize("processes", [1, 3, 8])
def test_split_for_jax_process_covers_each_example_once(dummy_build, split, processes):
    def nist_index(split):  # the reads decode nist_index alone: which rows, not their pixels
        return tfds.as_numpy(tfds.load(
            "qmnist", split=split, data_dir=os.fspath(dummy_build), batch_size=-1,
            decoders=tfds.decode.PartialDecoding({"nist_index": True})))["nist_index"]

    seen = [nist_index(tfds.split_for_jax_process(split, process_index=index,
                                                  process_count=processes))
            for index in range(processes)]
    everything = nist_index(split)
    np.testing.assert_array_equal(np.concatenate(seen), everything)
    assert len(set(np.concatenate(seen).tolist())) == len(everything)
