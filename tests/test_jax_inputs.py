"""Every input path of the JAX benchmark delivers the whole split once (no timing asserted)."""

from __future__ import annotations

import numpy as np
import pytest

from qmnist_tfds import arrays
from tests.conftest import load_benchmark, run_benchmark_child

BATCH = 8  # the dummy train split's 20 examples: batches of 8, 8 and 4


jax_inputs = load_benchmark("jax_inputs")


def _child(*args) -> dict:
    return run_benchmark_child("jax_inputs", *args, timeout=300)


def test_digest_is_of_the_multiset():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (50, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, 50)
    digest = jax_inputs.multiset_digest(images, labels)
    order = rng.permutation(50)
    assert jax_inputs.multiset_digest(images[order], labels[order]) == digest
    twice = np.r_[0, 0, 2:50]  # example 0 twice, example 1 missing
    assert jax_inputs.multiset_digest(images[twice], labels[twice]) != digest
    relabelled = labels.copy()
    relabelled[3] = (relabelled[3] + 1) % 10
    assert jax_inputs.multiset_digest(images, relabelled) != digest


@pytest.mark.parametrize("path", list(jax_inputs.PATHS))
def test_path_delivers_the_whole_split_once(path, dummy_build, array_record_build):
    if jax_inputs.PATHS[path][1]:
        pytest.importorskip("grain")
    train = arrays.load_arrays("train", data_dir=dummy_build)
    if path == "grain_loader_2_workers":  # worker processes: run as the benchmark runs it
        result = _child("feed", path, dummy_build, array_record_build, BATCH)
    else:  # in this process, which has imported TensorFlow once for every path
        result = jax_inputs.child_feed(path, dummy_build, array_record_build, BATCH)
    assert result["examples"] == len(train["label"]) == 20
    assert result["digest"] == jax_inputs.multiset_digest(train["image"], train["label"])
    sizes = result["batch_sizes"]
    if path == "grain_loader_2_workers":
        # Each worker batches its own share of the records: one short batch each.
        assert sum(sizes) == 20 and max(sizes) == 8
        assert sum(size < 8 for size in sizes) <= 2
    else:
        assert sizes == [8, 8, 4]
    assert (result["image_shape"], result["image_dtype"]) == ([28, 28, 1], "uint8")
    assert result["label_dtype"] == "int64"
    assert all(result[key] > 0 for key in ("seconds", "first_batch_seconds",
                                           "examples_per_second", "import_seconds"))
    assert result["first_batch_seconds"] <= result["seconds"]
    assert ("load_arrays_seconds" in result) == (path in ("numpy_permuted", "grain_arrays_records",
                                                          "grain_arrays_index_batches"))


def test_report_lists_every_row_and_the_load():
    spread = {"median": 2.0, "min": 1.0, "max": 3.0, "all": [1.0, 2.0, 3.0]}
    rows = {path: {"what": what, "examples_per_second": spread, "first_batch_seconds": spread,
                   "after_first_batch_per_second": spread, "whole_split_once": True}
            for path, (what, _) in jax_inputs.PATHS.items()}
    rows["numpy_permuted"]["load_arrays_seconds"] = spread
    report = jax_inputs.format_report({
        "machine": {"cpu": "CPU", "cores": 2, "load_average_before": [0.5, 0, 0],
                    "load_average_after": [1.5, 0, 0], "jax_device": "cpu"},
        "repeats": 3, "rows": rows, "no_jax": None, "skipped": {}})
    assert "load average (1 min) 0.50 before, 1.50 after" in report
    assert all(what in report for what, _ in jax_inputs.PATHS.values())
    assert "load_arrays('train')" in report
