"""Writer metadata for MNIST's own digits, from QMNIST's extended-label files alone.

QMNIST's 60,000 training digits and its first 10,000 test digits are MNIST's,
one for one and in order, so the extended labels (about 1 MB) describe every
digit of MNIST without QMNIST's images.

The label files are fetched with TFDS's `DownloadManager` into
`<data_dir>/downloads/`, where the builder's own downloads land: a `qmnist`
dataset prepared there from a download already holds them, and nothing is
fetched again. They are verified against the builder's registered checksums,
from upstream, from a mirror ($QMNIST_TFDS_MIRROR) or from `manual_dir`, and an
unreachable source fails fast, as in a build. No TensorFlow is imported, except
by `join_tfds_id`, which returns a tf.data function.

TFDS's `mnist` builder yields each digit with its upstream index as key, and
TFDS's writer stores a split's examples sorted by the MD5 of the split name
followed by the key's decimal digits, in one file per split: `tfds_order`
recomputes that permutation.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from qmnist_tfds import downloads, examples, fail_fast, lazy_tf, tfds_internals
from qmnist_tfds.qmnist import qmnist_dataset_builder

PathLike = str | os.PathLike
# MNIST split -> (label file key, rows of that file).
MNIST_SPLITS = {
    "train": ("train_labels", slice(None)),
    "test": ("test_labels", slice(0, qmnist_dataset_builder.TEST10K_SIZE)),
}
ORDERS = ("upstream", "tfds")
LABEL_DTYPE = np.dtype(np.int64)  # the dtype of a ClassLabel in TFDS's numpy output
METADATA_DTYPE = np.dtype(np.int32)  # the builder's Scalar metadata features


def label_files(
    keys: Iterable[str],
    *,
    data_dir: PathLike | None = None,
    manual_dir: PathLike | None = None,
) -> dict[str, epath.Path]:
    """Local, verified copies of the label files `keys` (keys of `downloads.FILES`).

    Files already in `<data_dir>/downloads/` (TFDS's default data dir where
    None) are used without a download; files in `manual_dir` are used in place.
    """
    base_url = downloads.mirror_base_url() or downloads.BASE_URL
    registered = tfds_internals.registered_url_infos(base_url) or {}
    root = epath.Path(tfds_internals.default_data_dir() if data_dir is None else data_dir)
    manager = tfds.download.DownloadManager(
        download_dir=root / "downloads",
        manual_dir=None if manual_dir is None else epath.Path(manual_dir),
        url_infos=registered,
        dataset_name="qmnist",
    )
    urls = {key: base_url + downloads.FILES[key] for key in keys}
    return fail_fast.download(manager, "qmnist", urls,
                              caller="qmnist_tfds.mnist_metadata or evaluation.report")


def metadata_columns(labels: np.ndarray) -> dict[str, np.ndarray]:
    """The builder's `label` and metadata features, as arrays, from extended-label rows."""
    columns = {"label": labels[:, examples.CLASS_COLUMN].astype(LABEL_DTYPE)}
    for name, (column, _) in examples.METADATA_COLUMNS.items():
        columns[name] = labels[:, column].astype(METADATA_DTYPE)
    return columns


def check_choice(argument: str, value: Any, choices: Iterable[str]) -> None:
    """Raises ValueError naming `argument` unless `value` is one of `choices`."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{argument} must be one of {', '.join(map(repr, choices))}; "
                         f"got {value!r}")


def tfds_order(split: str, count: int) -> np.ndarray:
    """The upstream index of each record of TFDS's prepared `mnist` split, in file order.

    Record p of the split's file is the index of rank p when the indices
    0..count-1 are sorted by `int(md5(split + str(index)).hexdigest(), 16)`.
    This holds for every dataset of TFDS's `mnist` module (`mnist`,
    `fashion_mnist`, `kmnist`) and TFDS 4.x.
    """
    salted = hashlib.md5(split.encode())

    def digest(index: int) -> bytes:
        md5 = salted.copy()
        md5.update(str(index).encode())
        return md5.digest()

    words = np.frombuffer(b"".join(map(digest, range(count))), dtype=">u8").reshape(count, 2)
    return np.lexsort((words[:, 1], words[:, 0]))  # by the high word, then the low


def mnist_metadata(
    split: str,
    *,
    order: str = "upstream",
    data_dir: PathLike | None = None,
    manual_dir: PathLike | None = None,
) -> dict[str, np.ndarray]:
    """QMNIST's metadata of every digit of MNIST's `split` ("train" or "test").

    Returns the builder's `label` and metadata features under their names and
    dtypes, and `mnist_index`, the digit's position in MNIST's IDX files. With
    `order="upstream"`, row i is MNIST digit i (the IDX files, keras,
    torchvision, Hugging Face); with `order="tfds"`, row p is record p of
    `tfds.load("mnist", split=split, shuffle_files=False)`.
    """
    check_choice("split", split, MNIST_SPLITS)
    check_choice("order", order, ORDERS)
    key, rows = MNIST_SPLITS[split]
    path = label_files([key], data_dir=data_dir, manual_dir=manual_dir)[key]
    columns = metadata_columns(examples.read_checked_labels(path)[rows])
    count = len(columns["label"])
    columns["mnist_index"] = np.arange(count, dtype=np.int64)
    if order == "tfds":
        records = tfds_order(split, count)
        columns = {name: values[records] for name, values in columns.items()}
    return columns


def join_tfds_id(
    split: str,
    metadata: Mapping[str, np.ndarray] | None = None,
    *,
    dataset: str = "mnist",
    data_dir: PathLike | None = None,
    manual_dir: PathLike | None = None,
) -> Callable[[dict], dict]:
    """A tf.data map function that adds QMNIST's metadata to each record of `dataset`.

    For `tfds.load(dataset, split=..., read_config=tfds.ReadConfig(add_tfds_id=True))`,
    sliced or with `shuffle_files=True`: each record is found by its `tfds_id`
    (`<dataset>-<split>.tfrecord-00000-of-00001__<position>`), and gets every
    column of `metadata` but `label` (by default `mnist_metadata(split)`, in
    upstream order). A record whose `label` differs from the metadata's, or
    whose `tfds_id` names another file, stops the pipeline with an
    `InvalidArgumentError` that prints the record's `tfds_id` and both labels.
    """
    check_choice("split", split, MNIST_SPLITS)
    tf = lazy_tf.tensorflow()
    if metadata is None:
        metadata = mnist_metadata(split, data_dir=data_dir, manual_dir=manual_dir)
    count = len(metadata["label"])
    records = tfds_order(split, count)
    columns = {name: tf.constant(np.asarray(values)[records]) for name, values in metadata.items()}
    upstream = tf.constant(records)
    prefix = f"{dataset}-{split}.tfrecord-00000-of-00001__"

    def join(example: dict) -> dict:
        tfds_id = example["tfds_id"]
        ours = tf.strings.regex_full_match(tfds_id, re.escape(prefix) + "[0-9]{1,9}")
        digits = tf.strings.substr(tfds_id, len(prefix), -1)
        position = tf.where(ours, tf.strings.to_number(
            tf.where(ours, digits, "0"), out_type=tf.int64), tf.constant(-1, tf.int64))
        found = (position >= 0) & (position < count)
        index = tf.clip_by_value(position, 0, count - 1)
        row = {name: tf.gather(values, index) for name, values in columns.items()}
        checks = [
            tf.debugging.Assert(found, [
                f"The record is not one of the {count} records of {prefix[:-2]}: tfds_id",
                tfds_id]),
            tf.debugging.Assert(tf.equal(tf.cast(example["label"], tf.int64), row["label"]), [
                "The record with tfds_id", tfds_id, "has label", example["label"],
                f"but QMNIST's metadata of that {dataset} {split} digit (mnist_index",
                tf.gather(upstream, index),
                ") has label", row["label"], "(another MNIST, or a TFDS that orders the "
                "records differently)"], summarize=1),
        ]
        with tf.control_dependencies(checks):
            added = {name: tf.identity(value) for name, value in row.items() if name != "label"}
        return {**example, **added}

    return join
