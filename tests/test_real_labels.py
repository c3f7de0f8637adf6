"""The real upstream label files, decoded by the project's own code path.

They sit beside the checkout (never inside it); the facts asserted here were
measured on them and are listed in that folder's README.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma

import numpy as np
import pytest

from qmnist_tfds import downloads, examples, idx
from qmnist_tfds.qmnist import qmnist_dataset_builder as qmnist

FILES = {
    "train": "qmnist-train-labels-idx2-int.gz",
    "test": "qmnist-test-labels-idx2-int.gz",
    "nist": "xnist-labels-idx2-int.xz",
}
TSV = {
    "train": "qmnist-train-labels.tsv.gz",
    "test": "qmnist-test-labels.tsv.gz",
    "nist": "xnist-labels.tsv.xz",
}


@pytest.fixture(scope="module")
def labels(upstream_dir) -> dict[str, np.ndarray]:
    return {split: examples.read_checked_labels(upstream_dir / name)
            for split, name in FILES.items()}


def _column(labels, name):
    return labels[:, examples.METADATA_COLUMNS[name][0]]


def test_first_rows_are_known_values(labels):
    """Catches a byte-order slip: these are the real first rows, column by column."""
    assert labels["train"][0].tolist() == [5, 4, 2154, 59, 35, 229421, 0, 0]
    assert labels["train"][1].tolist() == [0, 0, 0, 0, 30, 0, 0, 0]
    assert labels["test"][0].tolist() == [7, 4, 2578, 69, 37, 279260, 0, 0]
    assert labels["nist"][1].tolist() == [1, 0, 0, 1, 31, 1, 0, 0]
    assert all(a.dtype == np.int32 and a.dtype.isnative for a in labels.values())


def test_row_counts_and_class_counts(labels):
    assert {s: len(a) for s, a in labels.items()} == {"train": 60000, "test": 60000,
                                                     "nist": 402953}
    assert np.bincount(labels["train"][:, 0]).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(labels["test"][:, 0]).tolist() == [
        5952, 6791, 6026, 6084, 5780, 5454, 5957, 6231, 5890, 5835]


def test_hsf_series_and_writers(labels):
    series = {s: sorted(set(_column(a, "hsf_series").tolist())) for s, a in labels.items()}
    assert series == {"train": [0, 4], "test": [0, 1, 4], "nist": [0, 1, 2, 3, 4, 6, 7]}
    train_writers = set(_column(labels["train"], "writer_id").tolist())
    test_writers = set(_column(labels["test"], "writer_id").tolist())
    assert not train_writers & test_writers
    assert _column(labels["nist"], "writer_id").max() == 4099
    test = labels["test"]
    hsf = _column(test, "hsf_series")
    assert np.bincount(hsf[:qmnist.TEST10K_SIZE], minlength=5)[[0, 1, 4]].tolist() == [
        4999, 0, 5001]
    assert np.bincount(hsf[qmnist.TEST10K_SIZE:], minlength=5)[[0, 1, 4]].tolist() == [
        13450, 11956, 24594]


def test_class_codes_and_nist_indices(labels):
    for split, a in labels.items():
        assert (_column(a, "nist_class_code") == 30 + a[:, 0]).all(), split
        assert (a[:, 7] == 0).all(), split
    nist_index = {s: _column(a, "nist_index") for s, a in labels.items()}
    assert (nist_index["nist"] == np.arange(402953)).all()
    assert len(np.unique(nist_index["train"])) == 60000
    assert len(np.unique(nist_index["test"])) == 60000
    assert (nist_index["train"].min(), nist_index["train"].max()) == (0, 252174)
    assert (nist_index["test"].min(), nist_index["test"].max()) == (35000, 281769)
    # Each QMNIST digit is the NIST digit its index names: same class, same writer.
    for split in ("train", "test"):
        source = labels["nist"][nist_index[split]]
        np.testing.assert_array_equal(source[:, :5], labels[split][:, :5])


def test_the_three_nist_duplicates(labels):
    duplicate = _column(labels["nist"], "duplicate_of_nist_index")
    rows = np.flatnonzero(duplicate)
    assert dict(zip(rows.tolist(), duplicate[rows].tolist(), strict=True)) == {
        95988: 95890, 158235: 158226, 223125: 223124}
    assert not _column(labels["train"], "duplicate_of_nist_index").any()
    assert not _column(labels["test"], "duplicate_of_nist_index").any()


@pytest.mark.parametrize("split", FILES)
def test_idx2_equals_the_tsv_files(upstream_dir, labels, split):
    opener = lzma.open if TSV[split].endswith(".xz") else gzip.open
    with opener(upstream_dir / TSV[split], "rb") as f:
        tsv = np.loadtxt(f, dtype=np.int64, delimiter="\t")
    np.testing.assert_array_equal(labels[split], tsv)


def test_idx2_equals_a_plain_numpy_decode(upstream_dir, labels):
    raw = gzip.decompress((upstream_dir / FILES["train"]).read_bytes())
    independent = np.frombuffer(raw, dtype=">i4", offset=12).reshape(-1, 8)
    np.testing.assert_array_equal(labels["train"], independent)


def test_idx1_test_labels_equal_column_0(upstream_dir, labels):
    classes = idx.read_idx(upstream_dir / "qmnist-test-labels-idx1-ubyte.gz", magic=0x00000801)
    np.testing.assert_array_equal(classes, labels["test"][:, 0])


def test_real_files_match_the_checksums_files(upstream_dir):
    """Size and SHA-256 in checksums/qmnist.tsv, MD5 in checksums/qmnist.md5."""
    builder_infos = qmnist.Builder.url_infos
    md5s = dict(
        reversed(line.split("  ")) for line in
        (downloads.checksums_file().parent / "qmnist.md5").read_text().splitlines())
    for name in FILES.values():
        data = (upstream_dir / name).read_bytes()
        info = builder_infos[downloads.BASE_URL + name]
        assert (info.size, info.checksum, info.filename) == (
            len(data), hashlib.sha256(data).hexdigest(), name)
        assert md5s[name] == hashlib.md5(data).hexdigest()


def test_order_facts_the_readme_states(labels):
    """train and test are mixed by population; nist runs through its series in blocks."""
    for split in ("train", "test"):
        students = _column(labels[split], "hsf_series") == 4
        shares = [students[i:i + 10_000].mean() for i in range(0, 60_000, 10_000)]
        assert all(40 <= round(share * 100) <= 50 for share in shares), (split, shares)
    series = _column(labels["nist"], "hsf_series")
    assert np.all(np.diff(series) >= 0)  # sorted by series: one block each
    values, sizes = np.unique(series, return_counts=True)
    assert values.tolist() == [0, 1, 2, 3, 4, 6, 7]
    assert sizes.min() >= 52_000 and sizes.max() <= 64_000
