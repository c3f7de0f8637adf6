"""Random access and Grain: `tfds.data_source("qmnist")` beside TFDS's `fashion_mnist`.

    python benchmarks/random_access.py [--rounds N] [--reads N] [--json FILE]

Needs Debian's Fashion-MNIST files (`apt-get install -y dataset-fashion-mnist`)
and the packages of `pip install -e ".[tensorflow,test]"`; runs from a checkout.
Both sides read the same pixels: `qmnist` is built (the README's default build,
TFRecord with its array_record copy) from QMNIST-layout files whose train
images are Fashion-MNIST's training images (`speed.write_same_pixel_files`),
and `fashion_mnist` is built by TFDS's own builder from Debian's files into
array_record, the format its data source reads. Every measure runs in a fresh
process that imports TFDS, Grain and `qmnist_tfds` first (both sides alike);
its clock starts before `tfds.data_source(...)`, so qmnist's load of the split
into memory counts. The two datasets alternate within each round, and each
ratio is given as the median and the range over the rounds.

Measures, on `train` (60,000 rows):
- `src[i]` at `--reads` random indices;
- one epoch of `grain.MapDataset.source(src).seed(0).shuffle().batch(128)`;
- one epoch of `grain.DataLoader` with a shuffled `IndexSampler`, 2 worker
  processes, batches of 128, with Grain's default read options and with
  `ReadOptions(num_threads=0)`; over the whole epoch (the workers' start and
  their load of the split included) and after its first batch (the rate a
  training loop that keeps its workers runs at from then on);
- Grain's own limits, the `limit` column: the MapDataset pipeline over a
  plain list of the same examples (decoded beforehand, outside the clock), and
  the DataLoader over a source that returns a copy of one example; `limit/fashion`
  is the highest ratio any source could reach there;
- the memory a qmnist source holds once loaded (RSS after its first read
  minus before), for `train` and for `nist` (402,953 rows), and the peak RSS
  of the DataLoader's worker processes;
- the disk each config's shards take in each format.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from pathlib import Path

import harness
import speed

BATCH = 128
WORKERS = 2


def _import() -> None:
    """What every measure imports before its clock starts, the same on both sides:
    a process's start-up is not the data source's."""
    import grain  # noqa: F401
    import tensorflow_datasets  # noqa: F401

    import qmnist_tfds  # noqa: F401  (registers qmnist; its sources served from memory)


def _open(dataset: str, data_dir: Path, split: str = "train"):
    import tensorflow_datasets as tfds

    return tfds.data_source(dataset, split=split, data_dir=os.fspath(data_dir))


def child_random(dataset: str, data_dir: Path, reads: int) -> dict:
    _import()
    start = time.perf_counter()
    source = _open(dataset, data_dir)
    indices = random.Random(0).sample(range(len(source)), reads)
    for i in indices:
        source[i]
    return {"seconds": time.perf_counter() - start, "records": reads}


def _grain_epoch(source) -> int:
    import grain

    dataset = grain.MapDataset.source(source).seed(0).shuffle().batch(BATCH)
    return sum(len(batch["label"]) for batch in dataset)


def child_grain_map(dataset: str, data_dir: Path) -> dict:
    _import()
    start = time.perf_counter()
    records = _grain_epoch(_open(dataset, data_dir))
    return {"seconds": time.perf_counter() - start, "records": records}


def child_ceiling(data_dir: Path) -> dict:
    """The Grain pipeline over a list of the same examples: Grain's own limit."""
    _import()
    source = _open("qmnist", data_dir)
    examples = [source[i] for i in range(len(source))]
    start = time.perf_counter()
    records = _grain_epoch(examples)
    return {"seconds": time.perf_counter() - start, "records": records}


class ConstantSource:
    """Grain's DataLoader limit: a source that returns one example, copied, for any index."""

    def __init__(self, example: dict, length: int):
        self.example, self.length = example, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return {key: getattr(value, "copy", lambda v=value: v)()
                for key, value in self.example.items()}


def child_loader(dataset: str, data_dir: Path, num_threads: int | str = "default") -> dict:
    """One DataLoader epoch, and when its first batch came. `num_threads` other than
    "default" passes `grain.ReadOptions(num_threads=...)`: 0 is Grain's advice for
    data held in memory (no reading threads to contend for the GIL)."""
    import grain
    import psutil
    from absl import flags

    flags.FLAGS.mark_as_parsed()  # Grain's workers read absl flags
    _import()
    start = time.perf_counter()
    if dataset == "constant":  # outside the clock: one example of qmnist's
        split = _open("qmnist", data_dir)
        source = ConstantSource(split[0], len(split))
        start = time.perf_counter()
    else:
        source = _open(dataset, data_dir)
    read_options = {} if num_threads == "default" else {
        "read_options": grain.ReadOptions(num_threads=num_threads)}
    loader = grain.DataLoader(
        data_source=source,
        sampler=grain.samplers.IndexSampler(len(source), shuffle=True, seed=0, num_epochs=1),
        operations=[grain.transforms.Batch(BATCH)],
        worker_count=WORKERS,
        **read_options,
    )
    records, first, worker_peaks = 0, None, []
    for batch in loader:
        records += len(batch["label"])
        if first is None:  # the workers are up and have read their first batches
            first = {"first_batch_seconds": time.perf_counter() - start,
                     "first_batch_records": records}
        if records >= len(source) - BATCH and not worker_peaks:  # workers still up
            worker_peaks = [harness.rss_mib(p.pid, "VmHWM")
                            for p in psutil.Process().children(recursive=True)]
    return {"seconds": time.perf_counter() - start, "records": records, **first,
            "worker_peak_rss_mib": worker_peaks,
            "main_peak_rss_mib": harness.rss_mib(field="VmHWM")}


def child_memory(config: str, split: str, data_dir: Path) -> dict:
    """What a loaded qmnist source holds: RSS after its first read minus before.

    One record read through TFDS's own source first loads the modules both
    paths use (the image decoder), so that the difference is the data alone.
    """
    import tensorflow_datasets as tfds

    _import()
    tfds.data_source(f"qmnist/{config}", split=split, data_dir=os.fspath(data_dir),
                     builder_kwargs={"data_source_in_memory": False})[0]
    source = _open(f"qmnist/{config}", data_dir, split)
    before = harness.rss_mib()
    start = time.perf_counter()
    source[0]
    seconds = time.perf_counter() - start
    return {"rows": len(source), "load_seconds": seconds, "held_mib": harness.rss_mib() - before,
            "peak_rss_mib": harness.rss_mib(field="VmHWM"), "rss_mib": harness.rss_mib()}


CHILDREN = {"random": child_random, "grain_map": child_grain_map, "ceiling": child_ceiling,
            "loader": child_loader, "memory": child_memory}


def prepare(work_dir: Path) -> tuple[Path, Path]:
    """The same-pixel files, qmnist's default build of both configs, fashion_mnist's
    array_record build; made once in `work_dir`."""
    files = speed.same_pixel_files(work_dir)
    qmnist_dir, fashion_dir = work_dir / "qmnist", work_dir / "fashion_mnist"
    for config in ("qmnist", "nist"):
        if not (qmnist_dir / "qmnist" / config).exists():
            print(f"building qmnist/{config} ...", flush=True)
            speed.build(f"qmnist/{config}", files, qmnist_dir)
    if not (fashion_dir / "fashion_mnist").exists():
        print("building fashion_mnist (array_record) ...", flush=True)
        speed.build("fashion_mnist", speed.FASHION_DIR, fashion_dir, "array_record")
    return qmnist_dir, fashion_dir


def measure(qmnist_dir: Path, fashion_dir: Path, rounds: int, reads: int) -> dict:
    runs: dict[str, list[dict]] = {}

    def run(name: str, kind: str, *args) -> None:
        result = harness.run_child(__file__, kind, *args)
        runs.setdefault(name, []).append(result)
        print(f"  {name}: {result['records'] / result['seconds']:,.0f} records/s", flush=True)

    for i in range(rounds):
        print(f"round {i + 1} of {rounds} ...", flush=True)
        # Alternate which side goes first, round by round.
        sides = [("qmnist", qmnist_dir), ("fashion_mnist", fashion_dir)]
        for dataset, data_dir in sides if i % 2 == 0 else sides[::-1]:
            run(f"random_{dataset}", "random", dataset, data_dir, reads)
            run(f"grain_map_{dataset}", "grain_map", dataset, data_dir)
            run(f"loader_{dataset}", "loader", dataset, data_dir)
            run(f"loader0_{dataset}", "loader", dataset, data_dir, 0)
        run("ceiling", "ceiling", qmnist_dir)
        run("loader_ceiling", "loader", "constant", qmnist_dir)
        run("loader0_ceiling", "loader", "constant", qmnist_dir, 0)
    memory = {f"{config}/{split}": harness.run_child(__file__, "memory", config, split, qmnist_dir)
              for config, split in (("qmnist", "train"), ("nist", "nist"))}
    return {"runs": runs, "memory": memory, "disk_mb": disk_mb(qmnist_dir)}


def disk_mb(qmnist_dir: Path) -> dict[str, dict[str, float]]:
    """MB (10**6 bytes) of each config's shards, by file format."""
    sizes = {}
    for config in ("qmnist", "nist"):
        folder = next((qmnist_dir / "qmnist" / config).glob("*/"))
        sizes[config] = {kind: sum(p.stat().st_size for p in folder.glob(f"*.{kind}-*")) / 1e6
                         for kind in ("tfrecord", "array_record")}
    return sizes


def _rate(run: dict) -> float:
    return run["records"] / run["seconds"]


def _rate_after_first_batch(run: dict) -> float:
    """A DataLoader's rate once its workers are up: what every epoch after the
    first runs at, in a loop that keeps its workers."""
    return ((run["records"] - run["first_batch_records"])
            / (run["seconds"] - run["first_batch_seconds"]))


# (runs of both sides, label, rate, runs of Grain's limit for the same pipeline)
REPORT_ROWS = (
    ("random", "src[i] at random indices", _rate, None),
    ("grain_map", "Grain MapDataset shuffle batch(128), epoch", _rate, "ceiling"),
    ("loader", f"Grain DataLoader, {WORKERS} workers, epoch", _rate, "loader_ceiling"),
    ("loader", "  after its first batch", _rate_after_first_batch, "loader_ceiling"),
    ("loader0", "  ReadOptions(num_threads=0), epoch", _rate, "loader0_ceiling"),
    ("loader0", "  ReadOptions(num_threads=0), after 1st batch", _rate_after_first_batch,
     "loader0_ceiling"),
)


def report(result: dict) -> str:
    runs = result["runs"]
    lines = [f"{'measure (records/s)':46s} {'qmnist':>9s} {'fashion':>9s} "
             f"{'ratio':>6s} {'range':>11s} {'limit':>8s} {'limit/fashion':>13s}"]
    for name, label, rate, limit_name in REPORT_ROWS:
        ours, theirs = runs[f"{name}_qmnist"], runs[f"{name}_fashion_mnist"]
        ratios = harness.spread([rate(a) / rate(b) for a, b in zip(ours, theirs, strict=True)])
        fashion = statistics.median(map(rate, theirs))
        limit = ""
        if limit_name:
            best = statistics.median(map(rate, runs[limit_name]))
            limit = f"{best:8,.0f} {best / fashion:12.2f}x"
        lines.append(
            f"{label:46s} {statistics.median(map(rate, ours)):9,.0f} {fashion:9,.0f} "
            f"{harness.ratio_text(ratios)} {limit}"
            .rstrip())
    for name, label in (("loader", "default read options"), ("loader0", "num_threads=0")):
        firsts = {side: statistics.median(r["first_batch_seconds"] for r in runs[key])
                  for side, key in (("qmnist", f"{name}_qmnist"),
                                    ("fashion_mnist", f"{name}_fashion_mnist"),
                                    ("limit", f"{name}_ceiling"))}
        lines.append(f"DataLoader's first batch, {label}: " + ", ".join(
            f"{side} {seconds:.2f} s" for side, seconds in firsts.items()))
    for key, memory in result["memory"].items():
        lines.append(f"qmnist source, {key} ({memory['rows']:,} rows): holds "
                     f"{memory['held_mib']:.0f} MiB once loaded, in {memory['load_seconds']:.2f} s"
                     f" (process peak {memory['peak_rss_mib']:.0f} MiB)")
    for config, sizes in result["disk_mb"].items():
        lines.append(f"disk, qmnist/{config}: {sizes['tfrecord']:.0f} MB of TFRecord shards, "
                     f"{sizes['array_record']:.0f} MB of array_record copies")
    for dataset in ("qmnist", "fashion_mnist"):
        peaks = [p for r in runs[f"loader_{dataset}"] for p in r["worker_peak_rss_mib"]]
        mains = [r["main_peak_rss_mib"] for r in runs[f"loader_{dataset}"]]
        if peaks:
            lines.append(f"DataLoader {dataset}: worker peak RSS {min(peaks):.0f}-{max(peaks):.0f}"
                         f" MiB, main process peak {statistics.median(mains):.0f} MiB")
    return "\n".join(lines)


def main() -> None:
    parser = harness.argument_parser(__doc__, work_dir=speed.WORK_DIR)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reads", type=int, default=20_000, help="random src[i] reads")
    args = harness.parse_args(parser)
    if args.child:
        kind, *rest = args.child
        call = CHILDREN[kind]
        typed = [int(a) if a.isdigit() else Path(a) if os.sep in a else a for a in rest]
        harness.answer(call(*typed))
        return
    if not (speed.FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        sys.exit(f"{speed.FASHION_DIR} is missing: apt-get install -y dataset-fashion-mnist")
    qmnist_dir, fashion_dir = prepare(args.work_dir)
    host = speed.machine()
    load_before = os.getloadavg()
    result = measure(qmnist_dir, fashion_dir, args.rounds, args.reads)
    load_after = os.getloadavg()
    result.update(machine=host, load_average=[load_before[0], load_after[0]],
                  rounds=args.rounds, reads=args.reads)
    print(f"\n{host['cpu']}, {host['cores']} cores, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; {args.rounds} rounds, fresh process per measure\n")
    print(report(result))
    harness.write_json(args.json, result)


if __name__ == "__main__":
    main()
