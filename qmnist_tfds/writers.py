"""Writer-aware splits: QMNIST traces every digit to its NIST writer.

A validation set carved from `train` by rows shares writers with what is left
for training, which flatters the model. `validation_writers` picks whole
writers instead, deterministically, so that no writer is on both sides;
`has_writer` turns a writer set into a `tf.data` predicate.
"""

from __future__ import annotations

import numpy as np

from qmnist_tfds import lazy_tf


def validation_writers(writer_ids: np.ndarray, fraction: float = 0.1, seed: int = 0) -> np.ndarray:
    """Sorted writer ids whose digits make up about `fraction` of the rows given.

    Writers are taken in an order fixed by `seed` until their digits reach
    `fraction` of all rows, so the result depends only on the writer ids, the
    fraction and the seed, never on row order.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    writers, counts = np.unique(np.asarray(writer_ids), return_counts=True)
    order = np.random.default_rng(seed).permutation(len(writers))
    taken = np.cumsum(counts[order]) <= fraction * counts.sum()
    return np.sort(writers[order][taken])


def has_writer(writers: np.ndarray, *, negate: bool = False):
    """A `tf.data` filter keeping examples whose `writer_id` is in `writers` (or not, negated)."""
    tf = lazy_tf.tensorflow()
    table = tf.constant(np.asarray(writers, dtype=np.int32))

    def predicate(example):
        found = tf.reduce_any(tf.equal(table, example["writer_id"]))
        return tf.logical_not(found) if negate else found

    return predicate
