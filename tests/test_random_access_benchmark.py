"""`benchmarks/random_access.py` on the dummy build: each measure reads what it says
(no timing asserted), and its report holds every row."""

from __future__ import annotations

import re

import pytest

from tests.conftest import load_benchmark, run_benchmark_child

pytest.importorskip("grain", reason="needs grain: pip install '.[grain]'")
random_access = load_benchmark("random_access")


def test_in_process_measures_read_the_split(dummy_build):
    assert random_access.child_random("qmnist", dummy_build, 15)["records"] == 15
    assert random_access.child_grain_map("qmnist", dummy_build)["records"] == 20
    assert random_access.child_ceiling(dummy_build)["records"] == 20


def test_memory_measure_holds_at_least_the_pixels(dummy_build):
    # In a process of its own, as the benchmark runs it: in this one, memory
    # that earlier tests freed can serve the load without the RSS growing.
    memory = run_benchmark_child("random_access", "memory", "qmnist", "test", dummy_build,
                                 timeout=300)
    assert memory["rows"] == 10_010
    assert memory["held_mib"] >= 10_010 * 28 * 28 / 2**20  # 7.5 MiB of pixels


@pytest.mark.parametrize(("dataset", "num_threads"), [("qmnist", 0), ("constant", "default")])
def test_data_loader_measure_runs_two_workers(dummy_build, dataset, num_threads):
    result = run_benchmark_child("random_access", "loader", dataset, dummy_build, num_threads,
                                 timeout=300)
    assert result["records"] == 20
    # Each worker batches the indices it reads: 20 records make two batches of 10.
    assert result["first_batch_records"] == 20 // random_access.WORKERS
    assert 0 < result["first_batch_seconds"] <= result["seconds"]
    assert len(result["worker_peak_rss_mib"]) >= random_access.WORKERS


def test_report_has_every_row(dummy_build):
    run = {"seconds": 2.0, "records": 100, "first_batch_seconds": 1.0, "first_batch_records": 20,
           "worker_peak_rss_mib": [300.0, 310.0], "main_peak_rss_mib": 200.0}
    faster = dict(run, seconds=1.0, first_batch_seconds=0.5)
    runs = {f"{kind}_{dataset}": [run, run] for kind in ("random", "grain_map", "loader", "loader0")
            for dataset in ("qmnist", "fashion_mnist")}
    runs.update(ceiling=[faster, faster], loader_ceiling=[faster, faster],
                loader0_ceiling=[faster, faster])
    memory = {"rows": 10, "load_seconds": 0.5, "held_mib": 1.0, "peak_rss_mib": 300.0}
    text = random_access.report({
        "runs": runs, "memory": {"qmnist/train": memory, "nist/nist": memory},
        "disk_mb": random_access.disk_mb(dummy_build)})
    # 100 records in 2 s: 50/s over the epoch; 80 records in the 1 s after the first batch.
    assert len(re.findall(r" 50 +50  1\.00x  1\.00-1\.00x", text)) == 4
    assert len(re.findall(r" 80 +80  1\.00x  1\.00-1\.00x +160 +2\.00x", text)) == 2
    assert len(re.findall(r" 100 +2\.00x", text)) == 3  # the limits, twice as fast
    for phrase in ("src[i] at random indices", "DataLoader, 2 workers", "after its first batch",
                   "ReadOptions(num_threads=0), after 1st batch", "limit/fashion",
                   "first batch, default read options: qmnist 1.00 s, fashion_mnist 1.00 s, "
                   "limit 0.50 s", "first batch, num_threads=0",
                   "nist/nist (10 rows)", "disk, qmnist/nist",
                   "worker peak RSS 300-310 MiB"):
        assert phrase in text, phrase
