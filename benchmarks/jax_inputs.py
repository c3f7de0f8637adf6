"""Feeding a JAX training loop from `qmnist`'s train split: the usual ways, side by side.

    python benchmarks/jax_inputs.py [--work-dir DIR] [--repeats N] [--json FILE]

Each path delivers one epoch of `train` (60,000 examples) in shuffled batches
of 128 images and labels, each batch put on the default JAX device
(`jax.device_put`, waited for) as a training step would take it:

- whole arrays from `qmnist_tfds.load_arrays`, batched by a permuted index;
- `tfds.load(...).shuffle(10_000).batch(128)` through `tfds.as_numpy`, every
  feature parsed, and image and label only (`PartialDecoding`);
- Grain over `tfds.data_source` (an array_record build): its `DataLoader`
  with 0 and 2 worker processes, reading with `ReadOptions(num_threads=0)` as
  `docs/examples/grain_loader.py` does, and `MapDataset.source(...).shuffle().batch()`;
- for comparison, Grain's `MapDataset` over the arrays `load_arrays` returns,
  one record per index as a data source gives them, and shuffled batches of
  indices gathered from the arrays at once.

The data are the same-pixel files of `speed.py` (QMNIST's layout and sizes,
Debian's Fashion-MNIST images; `apt-get install -y dataset-fashion-mnist`),
built once into the work dir in both file formats. Every measurement runs in a
fresh process, which imports TensorFlow, TFDS, JAX and Grain before its clock
starts, so one path's caches, threads or traced graphs cannot help another;
the OS page cache is shared, and the first build has filled it. Rounds visit
the paths in turn, every other round in reverse order, and each figure is the
median and range over the rounds.

Seconds to the first batch count from the call that opens the data
(`load_arrays`, `tfds.load`, `tfds.data_source`), so they include building the
pipeline, starting workers and filling shuffle buffers. The epoch's examples/s
count the same span up to the arrival of the last batch; the rate after the
first batch leaves set-up out, which for the in-memory paths is what every
later epoch costs. Each process also checks what it delivered: a digest of the
multiset of (image, label) pairs, which must equal that of the whole split.
Without Grain, its rows are skipped; without JAX, batches stay numpy arrays.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import harness
import speed

BATCH = 128
SHUFFLE_BUFFER = 10_000

# name: (what the table calls it, needs Grain)
PATHS = {
    "numpy_permuted": ("load_arrays, then images[permuted index]", False),
    "tfds_stream": ("tfds.load stream, every feature", False),
    "tfds_stream_image_label": ("tfds.load stream, PartialDecoding image+label", False),
    "grain_loader_0_workers": ("grain.DataLoader(data_source), num_threads=0, 0 workers", True),
    "grain_loader_2_workers": ("grain.DataLoader(data_source), num_threads=0, 2 workers", True),
    "grain_map_dataset": ("grain.MapDataset(data_source).shuffle.batch", True),
    "grain_arrays_records": ("grain.MapDataset over load_arrays, per record", True),
    "grain_arrays_index_batches": ("grain.MapDataset over load_arrays, index batches", True),
}


def multiset_digest(images, labels) -> str:
    """A digest of the examples as a multiset: the same for any order of the same examples.

    Each (image, label) is fingerprinted as a random linear form, modulo 2**64,
    of its image's 64-bit words and its label; the digest is the SHA-256 of the
    sorted fingerprints. Images must be uint8 with a multiple of 8 bytes each.
    """
    import numpy as np

    words = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1).view(np.uint64)
    weights = np.random.default_rng(0).integers(1, 2**63, size=words.shape[1] + 1,
                                                dtype=np.uint64)
    fingerprints = words @ weights[:-1] + np.asarray(labels).astype(np.uint64) * weights[-1]
    return hashlib.sha256(np.sort(fingerprints).tobytes()).hexdigest()


class _ArrayRecords:
    """Whole-split arrays seen as a data source: a sequence of per-example dicts."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": self.labels[index]}


def _batches(path: str, tfrecord_dir: Path, array_dir: Path, batch: int,
             extra: dict) -> Iterator[tuple]:
    """(images, labels) numpy batches of one epoch of `train` along `path`.

    A generator: nothing is opened before the first batch is asked for, so the
    caller's clock covers building the pipeline. Seconds that `load_arrays`
    takes go into `extra`.
    """
    import numpy as np
    import tensorflow_datasets as tfds

    import qmnist_tfds

    def arrays() -> tuple:
        start = time.perf_counter()
        train = qmnist_tfds.load_arrays("train", data_dir=tfrecord_dir)
        extra["load_arrays_seconds"] = time.perf_counter() - start
        return train["image"], train["label"]

    if path == "numpy_permuted":
        images, labels = arrays()
        order = np.random.default_rng(0).permutation(len(labels))
        for start in range(0, len(order), batch):
            index = order[start:start + batch]
            yield images[index], labels[index]
    elif path.startswith("tfds_stream"):
        decoders = (tfds.decode.PartialDecoding({"image": True, "label": True})
                    if path == "tfds_stream_image_label" else None)
        ds = tfds.load("qmnist", split="train", data_dir=os.fspath(tfrecord_dir),
                       decoders=decoders)
        for example in tfds.as_numpy(ds.shuffle(SHUFFLE_BUFFER, seed=0).batch(batch)):
            yield example["image"], example["label"]
    else:
        import grain

        if path.startswith("grain_arrays"):
            images, labels = arrays()
            if path == "grain_arrays_records":
                dataset = grain.MapDataset.source(_ArrayRecords(images, labels))
                dataset = dataset.shuffle(seed=0).batch(batch)
            else:
                dataset = grain.MapDataset.range(len(labels)).shuffle(seed=0).batch(batch)
                dataset = dataset.map(lambda index: {"image": images[index],
                                                     "label": labels[index]})
        else:
            source = tfds.data_source("qmnist", split="train", data_dir=os.fspath(array_dir))
            if path == "grain_map_dataset":
                dataset = grain.MapDataset.source(source).shuffle(seed=0).batch(batch)
            else:
                from absl import flags

                # Grain 0.2.18 reads an absl flag when it starts workers, and
                # fails in a program that has not parsed absl's flags.
                if not flags.FLAGS.is_parsed():
                    flags.FLAGS.mark_as_parsed()
                sampler = grain.samplers.IndexSampler(len(source), shuffle=True, seed=0,
                                                      num_epochs=1)
                dataset = grain.DataLoader(
                    data_source=source, sampler=sampler,
                    operations=[grain.transforms.Batch(batch)],
                    worker_count=2 if path == "grain_loader_2_workers" else 0,
                    read_options=grain.ReadOptions(num_threads=0))  # as grain_loader.py
        for example in dataset:
            yield example["image"], example["label"]


def child_feed(path: str, tfrecord_dir: Path, array_dir: Path, batch: int) -> dict:
    """One epoch along `path`: its times, batch sizes, and the digest of what it delivered."""
    start = time.perf_counter()
    import numpy as np
    import tensorflow  # noqa: F401
    import tensorflow_datasets  # noqa: F401

    import qmnist_tfds  # noqa: F401

    try:
        import jax
    except ImportError:
        jax = None
    if PATHS[path][1]:
        import grain  # noqa: F401
    import_seconds = time.perf_counter() - start

    def to_device(images, labels):
        if jax is not None:
            jax.block_until_ready(jax.device_put((images, labels)))

    extra: dict = {}
    delivered = []
    start = time.perf_counter()
    for images, labels in _batches(path, tfrecord_dir, array_dir, batch, extra):
        to_device(images, labels)
        last = time.perf_counter()
        if not delivered:
            first = last
        delivered.append((images, labels))
    examples = sum(len(labels) for _, labels in delivered)
    images = np.concatenate([images for images, _ in delivered])
    labels = np.concatenate([labels for _, labels in delivered])
    return {
        "path": path,
        "examples": examples,
        "seconds": last - start,
        "first_batch_seconds": first - start,
        "examples_per_second": examples / (last - start),
        "after_first_batch_per_second": (examples - len(delivered[0][1])) / (last - first)
        if last > first else None,
        "import_seconds": import_seconds,
        "batch_sizes": [len(labels) for _, labels in delivered],
        "image_shape": list(images.shape[1:]),
        "image_dtype": str(images.dtype),
        "label_dtype": str(labels.dtype),
        "digest": multiset_digest(images, labels),
        "jax_device": str(jax.devices()[0]) if jax is not None else None,
        **extra,
    }


def child_probe() -> dict:
    """Why JAX or Grain cannot be used here (None where they can)."""
    reasons = {}
    for module in ("jax", "grain"):
        try:
            importlib.import_module(module)
            reasons[module] = None
        except Exception as error:  # an optional extra: any failure skips its rows
            reasons[module] = f"{module} is not importable ({type(error).__name__}: {error})"
    return reasons


def _built(data_dir: Path) -> bool:
    return any((data_dir / "qmnist" / "qmnist").glob("*/dataset_info.json"))


def prepare(work_dir: Path) -> tuple[Path, Path]:
    """The tfrecord and array_record builds of `qmnist` in `work_dir`, made if missing."""
    files = speed.same_pixel_files(work_dir)
    dirs = {}
    for file_format in ("tfrecord", "array_record"):
        dirs[file_format] = work_dir / file_format
        if not _built(dirs[file_format]):
            print(f"building qmnist as {file_format} ...", flush=True)
            speed.build("qmnist/qmnist", files, dirs[file_format], file_format)
    return dirs["tfrecord"], dirs["array_record"]


def measure(work_dir: Path, repeats: int = 3, batch: int = BATCH,
            progress: Callable[[str], None] = print) -> dict:
    """Every path's figures over `repeats` rounds, JSON-serializable.

    Builds what `work_dir` lacks first (see `prepare`). Paths that need an
    extra that is not importable are listed under `skipped` with the reason.
    """
    tfrecord_dir, array_dir = prepare(work_dir)
    reasons = harness.run_child(__file__, "probe")
    skipped = {path: reasons["grain"] for path, (_, grain) in PATHS.items()
               if grain and reasons["grain"]}
    paths = [path for path in PATHS if path not in skipped]
    host = speed.machine()
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {path: [] for path in paths}
    for i in range(repeats):
        # Odd rounds go backwards: a path that follows another in one round
        # precedes it in the next, so neither always meets the other's aftermath.
        order = paths[::-1] if i % 2 else paths
        progress(f"round {i + 1} of {repeats}: " + ", ".join(order))
        for path in order:
            run = harness.run_child(__file__, "feed", path, tfrecord_dir, array_dir, batch)
            runs[path].append(run)
            progress(f"  {path}: {run['examples_per_second']:.0f} examples/s, first batch "
                     f"after {run['first_batch_seconds']:.2f} s")
    load_after = os.getloadavg()
    reference = runs["numpy_permuted"][0]["digest"]  # load_arrays's whole split
    rows = {}
    for path, results in runs.items():
        rows[path] = {
            "what": PATHS[path][0],
            "examples_per_second": harness.spread([r["examples_per_second"] for r in results]),
            "first_batch_seconds": harness.spread([r["first_batch_seconds"] for r in results]),
            "after_first_batch_per_second": harness.spread(
                [r["after_first_batch_per_second"] for r in results]),
            "whole_split_once": all(r["digest"] == reference for r in results),
        }
        loads = [r["load_arrays_seconds"] for r in results if "load_arrays_seconds" in r]
        if loads:
            rows[path]["load_arrays_seconds"] = harness.spread(loads)
    return {
        "machine": {**host, "load_average_before": load_before, "load_average_after": load_after,
                    "jax_device": runs[paths[0]][0]["jax_device"]},
        "split": "train",
        "examples": runs["numpy_permuted"][0]["examples"],
        "batch": batch,
        "repeats": repeats,
        "no_jax": reasons["jax"],
        "skipped": skipped,
        "rows": rows,
        "runs": runs,
    }


def format_report(result: dict) -> str:
    """The machine line and the table of `measure`'s result."""
    host = result["machine"]
    before, after = host["load_average_before"][0], host["load_average_after"][0]
    lines = [f"machine: {host['cpu']}, {host['cores']} cores; load average (1 min) "
             f"{before:.2f} before, {after:.2f} after; JAX device {host['jax_device']}; "
             f"{result['repeats']} rounds, median (min-max)",
             "",
             f"{'path':56} {'examples/s':>10} {'range':>13} {'1st batch s':>17} "
             f"{'after 1st/s':>11} {'whole':>5}"]
    for row in result["rows"].values():
        rate, first = row["examples_per_second"], row["first_batch_seconds"]
        lines.append(
            f"{row['what']:56} {rate['median']:10.0f} {rate['min']:6.0f}-{rate['max']:<6.0f} "
            f"{first['median']:5.2f} ({first['min']:.2f}-{first['max']:.2f}) "
            f"{row['after_first_batch_per_second']['median']:11.0f} "
            f"{'yes' if row['whole_split_once'] else 'NO':>5}")
    lines.append("")
    for row in result["rows"].values():
        if "load_arrays_seconds" in row:
            load = row["load_arrays_seconds"]
            lines.append(f"load_arrays('train') within \"{row['what']}\": {load['median']:.2f} s "
                         f"({load['min']:.2f}-{load['max']:.2f})")
    if result["no_jax"]:
        lines.append(f"batches stayed numpy arrays: {result['no_jax']}")
    for path, reason in result["skipped"].items():
        lines.append(f"skipped {path}: {reason}")
    return "\n".join(lines)


def main() -> None:
    parser = harness.argument_parser(__doc__)
    parser.add_argument("--work-dir", type=Path,
                        help="holds the files and builds; reused when present "
                             "(default: a new temporary directory)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over every path")
    parser.add_argument("--batch", type=int, default=BATCH, help=argparse.SUPPRESS)
    args = harness.parse_args(parser, json_help="also write every figure here")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.child:
        kind, *rest = args.child
        if kind == "feed":
            result = child_feed(rest[0], Path(rest[1]), Path(rest[2]), int(rest[3]))
        else:
            result = child_probe()
        harness.answer(result)
        return
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="qmnist_jax_inputs_"))
    result = measure(work_dir, args.repeats, args.batch,
                     progress=lambda line: print(line, flush=True))
    print()
    print(format_report(result))
    harness.write_json(args.json, result)


if __name__ == "__main__":
    main()
