"""benchmarks/stream_features.py's pieces on the dummy build (no timing asserted)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.conftest import load_benchmark

stream_features = load_benchmark("stream_features")


def test_slope_is_least_squares():
    assert stream_features.slope([0, 1, 2, 3], [1.0, 3.0, 5.0, 7.0]) == pytest.approx(2.0)
    # y = 10 - x/2 with residuals +1, -1, -1, +1 around it: the slope stays -0.5.
    assert stream_features.slope([0, 1, 2, 3], [11.0, 8.5, 8.0, 9.5]) == pytest.approx(-0.5)


def test_each_variant_decodes_the_features_it_names(dummy_build):
    variants = stream_features.stream_variants(dummy_build, dummy_build)
    names = stream_features.metadata_names()
    for k in (0, 3, 6):
        ds = stream_features._load(variants[f"qmnist image+label+{k}"])
        assert set(ds.element_spec) == {"image", "label", *names[:k]}
    everything = stream_features._load(variants["qmnist all (no decoders)"])
    assert set(everything.element_spec) == {"image", "label", *names}
    first = next(iter(tfds.as_numpy(everything)))
    reference = next(iter(tfds.as_numpy(tfds.load("qmnist", split="train",
                                                  data_dir=dummy_build))))
    for key in reference:
        np.testing.assert_array_equal(first[key], reference[key])


def test_parse_tasks_cover_two_and_eight_features(dummy_build):
    tasks = stream_features.parse_tasks(dummy_build, dummy_build)
    batch = next(iter(tfds.as_numpy(tasks["qmnist TFDS parser, 8 features (+reshape, +cast)"]())))
    wider = next(iter(tfds.as_numpy(tasks["qmnist TFDS parser, 8, metadata int64 (+reshape)"]())))
    assert len(batch) == len(wider) == 8
    assert batch["writer_id"].dtype == np.int32 and wider["writer_id"].dtype == np.int64
    np.testing.assert_array_equal(batch["writer_id"], wider["writer_id"])
    two = next(iter(tfds.as_numpy(tasks["qmnist parse_example per batch, 2 features"]())))
    assert set(two) == {"image", "label"}
    np.testing.assert_array_equal(two["label"], batch["label"])
