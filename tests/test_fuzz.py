"""Fuzzing the IDX decoder: whatever the bytes, only IdxFormatError may escape.

The default run tries 10,000 inputs; set QMNIST_FUZZ_EXAMPLES for a longer one
(for instance `QMNIST_FUZZ_EXAMPLES=200000 pytest tests/test_fuzz.py`).
"""

from __future__ import annotations

import gzip
import lzma
import os
import tempfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmnist_tfds import idx

EXAMPLES = int(os.environ.get("QMNIST_FUZZ_EXAMPLES", "10000"))
_DIR = tempfile.mkdtemp(prefix="qmnist_fuzz_")
_PATH = os.path.join(_DIR, "input")

_SEEDS = [
    idx.encode_idx(np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)),
    idx.encode_idx(np.arange(-8, 16, dtype=np.int32).reshape(3, 8)),
    idx.encode_idx(np.arange(5, dtype=np.uint8)),
]


@st.composite
def mutated_idx(draw) -> bytes:
    """A valid IDX file, optionally compressed, with a few bytes changed, cut or added."""
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "header"]))
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif len(data) >= 4:  # rewrite one header word with a boundary value
            word = draw(st.sampled_from([0, 1, 28, 2**31 - 1, 2**32 - 1]))
            offset = 4 * draw(st.integers(0, min(3, len(data) // 4 - 1)))
            data[offset:offset + 4] = word.to_bytes(4, "big")
    compress = draw(st.sampled_from([bytes, gzip.compress, lzma.compress]))
    data = compress(bytes(data))
    if compress is not bytes and draw(st.booleans()):  # spoil the compressed stream too
        data = data[: draw(st.integers(0, len(data)))]
    return data


def _decode_every_way(data: bytes) -> None:
    with open(_PATH, "wb") as f:
        f.write(data)
    for kwargs in ({}, {"magic": idx.IMAGES_MAGIC, "row_shape": idx.IMAGE_SHAPE},
                   {"magic": idx.EXTENDED_LABELS_MAGIC, "row_shape": (8,)}):
        try:
            array = idx.read_idx(_PATH, **kwargs)
            assert array.dtype.isnative
        except idx.IdxFormatError as e:
            assert _PATH in str(e)
    try:
        with idx.open_images(_PATH) as reader:
            for _ in reader.iter_chunks(2):
                pass
            reader.check_end()
    except idx.IdxFormatError:
        pass


# Inputs go in lists of INPUTS_PER_EXAMPLE: Hypothesis's own work per example costs
# more than decoding one input, and a failing list shrinks to the one input at fault.
INPUTS_PER_EXAMPLE = 10
_SETTINGS = settings(max_examples=max(1, EXAMPLES // 2 // INPUTS_PER_EXAMPLE), deadline=None,
                     database=None, suppress_health_check=list(HealthCheck))


def _inputs(strategy):
    return st.lists(strategy, min_size=INPUTS_PER_EXAMPLE, max_size=INPUTS_PER_EXAMPLE)


@_SETTINGS
@given(_inputs(mutated_idx()))
def test_mutated_files(inputs):
    for data in inputs:
        _decode_every_way(data)


@_SETTINGS
@given(_inputs(st.binary(max_size=2048)))
def test_random_bytes(inputs):
    for data in inputs:
        _decode_every_way(data)
        _decode_every_way(gzip.compress(data))


def test_seeds_decode():
    for seed in _SEEDS:
        with open(_PATH, "wb") as f:
            f.write(seed)
        assert idx.read_idx(_PATH).size > 0
