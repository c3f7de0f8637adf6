"""Build time, throughput and peak memory of both configs on full-size synthetic files.

    python benchmarks/build_qmnist.py [--work-dir DIR] [--repeats N] [--json FILE]

Writes synthetic files of the real sizes (60,000 train, 60,000 test and
402,953 NIST rows; see `qmnist_tfds.synthetic`) once into the work dir, then
builds each config in a fresh subprocess per run, so that each peak RSS is
that of one whole build process (TensorFlow included). Prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG_EXAMPLES = {"qmnist": 60_000 + 60_000 + 10_000 + 50_000, "nist": 402_953}


def child(config: str, files: Path, data_dir: Path) -> None:
    """Builds one config and prints its wall time and peak RSS as JSON."""
    import tensorflow_datasets as tfds
    from etils import epath
    from tensorflow_datasets.core.download import checksums

    from qmnist_tfds import QMNIST

    # The synthetic files carry their own checksums; the real ones would reject them.
    QMNIST.url_infos = checksums.load_url_infos(epath.Path(files / "checksums.tsv"))
    builder = tfds.builder("qmnist", config=config, data_dir=os.fspath(data_dir))
    start = time.perf_counter()
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(files)))
    seconds = time.perf_counter() - start
    examples = sum(s.num_examples for s in builder.info.splits.values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "examples": examples, "peak_rss_mib": peak_mib}))


def measure(config: str, files: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as data_dir:
            out = subprocess.run(
                [sys.executable, __file__, "--child", config, "--work-dir", os.fspath(files),
                 "--data-dir", data_dir], check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    seconds = statistics.median(r["seconds"] for r in runs)
    examples = runs[0]["examples"]
    assert examples == CONFIG_EXAMPLES[config], runs
    return {
        "config": config,
        "examples_written": examples,
        "build_seconds": round(seconds, 2),
        "examples_per_second": round(examples / seconds),
        "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs)),
        "runs": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "qmnist_tfds_bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.work_dir, args.data_dir)
        return
    if not (args.work_dir / "checksums.tsv").exists():
        from qmnist_tfds import synthetic

        print(f"writing full-size synthetic files into {args.work_dir} ...", flush=True)
        synthetic.write_all(args.work_dir, synthetic.FULL_SIZES)
    results = [measure(config, args.work_dir, args.repeats) for config in CONFIG_EXAMPLES]
    print(f"{'config':8} {'examples':>9} {'seconds':>8} {'examples/s':>10} {'peak RSS MiB':>12}")
    for r in results:
        print(f"{r['config']:8} {r['examples_written']:9} {r['build_seconds']:8} "
              f"{r['examples_per_second']:10} {r['peak_rss_mib']:12}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
