"""Writer-disjoint validation splits, on the real labels and through tf.data."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from qmnist_tfds import downloads, examples, idx, writers
from tests.conftest import DUMMY_DATA, REPO_ROOT

WRITER = examples.METADATA_COLUMNS["writer_id"][0]
HSF = examples.METADATA_COLUMNS["hsf_series"][0]


def test_validation_writers_on_the_real_train_labels(upstream_dir):
    labels = examples.read_checked_labels(upstream_dir / "qmnist-train-labels-idx2-int.gz")
    chosen = writers.validation_writers(labels[:, WRITER], fraction=0.1, seed=0)
    in_validation = np.isin(labels[:, WRITER], chosen)
    validation_writers = set(labels[in_validation, WRITER].tolist())
    train_writers = set(labels[~in_validation, WRITER].tolist())
    assert not validation_writers & train_writers
    assert validation_writers == set(chosen.tolist())
    # The figures the README quotes: whole writers, a little under 10% of 60,000 digits.
    assert (int(in_validation.sum()), len(chosen)) == (5941, 53)
    # Deterministic, and independent of row order.
    np.testing.assert_array_equal(
        chosen, writers.validation_writers(labels[::-1, WRITER], fraction=0.1, seed=0))
    assert not np.array_equal(
        chosen, writers.validation_writers(labels[:, WRITER], fraction=0.1, seed=1))


def test_hsf4_population_of_test50k(upstream_dir):
    labels = examples.read_checked_labels(upstream_dir / "qmnist-test-labels-idx2-int.gz")
    test50k = labels[10_000:]
    assert int((test50k[:, HSF] == 4).sum()) == 24594
    assert int((test50k[:, HSF] == 0).sum()) == 13450
    assert int((test50k[:, HSF] == 1).sum()) == 11956


def test_has_writer_filters_a_tfds_split(dummy_build):
    labels = idx.read_idx(DUMMY_DATA / downloads.FILES["test_labels"])
    chosen = writers.validation_writers(labels[:, WRITER], fraction=0.2)
    ds = tfds.load("qmnist", split="test", data_dir=os.fspath(dummy_build))

    def writer_ids(filtered) -> list[int]:  # batched only to cross to numpy faster
        return [int(w) for batch in tfds.as_numpy(filtered.batch(4096))
                for w in batch["writer_id"]]

    kept = writer_ids(ds.filter(writers.has_writer(chosen)))
    rest = writer_ids(ds.filter(writers.has_writer(chosen, negate=True)))
    assert set(kept) == set(chosen.tolist())
    assert not set(kept) & set(rest)
    assert len(kept) + len(rest) == len(labels)


def test_fraction_is_checked():
    with pytest.raises(ValueError, match="fraction"):
        writers.validation_writers(np.arange(5), fraction=1.5)


def test_card_figures_are_drawn_from_the_real_labels(upstream_dir, tmp_path):
    pytest.importorskip("matplotlib", reason="needs matplotlib: pip install '.[plots]'")
    result = subprocess.run([sys.executable, os.fspath(REPO_ROOT / "docs" / "figures.py"),
                             os.fspath(upstream_dir), "--out", os.fspath(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("class_distribution.png", "hsf_composition.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        assert (REPO_ROOT / "docs" / name).exists()  # the committed copies the README shows
