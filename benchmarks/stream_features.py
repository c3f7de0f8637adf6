"""What each feature costs when `qmnist` is streamed through `tfds.load`, beside `fashion_mnist`.

    python benchmarks/stream_features.py [--work-dir DIR] [--repeats N] [--json FILE]

Needs what `benchmarks/speed.py` needs (Debian's Fashion-MNIST files and the
packages of `pip install -e ".[test]"`), whose same-pixel files and builds it
reuses: `qmnist` is built from QMNIST-layout files holding Fashion-MNIST's
images, `fashion_mnist` by TFDS's own builder, both once into the work dir.

It times the epoch-1 stream of the train split (60,000 examples) through
`tfds.load(...).batch(128)`, until the last batch arrives, for:

* `qmnist` with `PartialDecoding` of image and label, then of image, label
  and the first 1, 2, ... 6 metadata features, and with no decoders (every
  feature);
* `fashion_mnist` (image and label, its only features).

Each timing runs in a fresh process, after a short untimed stream of the same
dataset (TensorFlow's threads, graph tracing), and records the wall clock and
the CPU time of the whole process over the same span (other jobs on a shared
machine disturb the CPU time less); the variants run in a shuffled order
within each round, rounds repeat. A ratio is `fashion_mnist`'s time over the
variant's, per round: above 1 means faster than `fashion_mnist`. The
per-feature cost is the least-squares slope of us/example over the number of
metadata features decoded (0-6), fitted on each round.

To show where that cost goes, it also times, on the same TFRecord files read
by `tf.data.TFRecordDataset`, `tf.io.parse_single_example` per record and
`tf.io.parse_example` per batch of 128, with 2 (image bytes and label) and 8
feature specs, and TFDS's own per-record parser (`parse_single_example`, then
a reshape of every feature and a cast of every int32 feature from the int64
that tf.Example stores) for image and label, for all 8 features, and for all 8
with the metadata declared int64 (no cast), without image decoding. These run in one process
per round, in a shuffled order.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
import speed

TRAIN_EXAMPLES = 60_000
BATCH = 128
WARM_UP_BATCHES = 40
IMAGE_LABEL = ("image", "label")


def metadata_names() -> list[str]:
    from qmnist_tfds import examples

    return list(examples.METADATA_COLUMNS)


def stream_variants(qmnist_dir: Path, fashion_dir: Path) -> dict[str, dict[str, Any]]:
    """The streams to time: name -> spec for `child_stream`."""
    names = metadata_names()
    variants = {"fashion_mnist": {"name": "fashion_mnist", "data_dir": os.fspath(fashion_dir)}}
    for k in range(len(names) + 1):
        variants[f"qmnist image+label+{k}"] = {
            "name": "qmnist", "data_dir": os.fspath(qmnist_dir),
            "decode": [*IMAGE_LABEL, *names[:k]]}
    variants["qmnist all (no decoders)"] = {"name": "qmnist", "data_dir": os.fspath(qmnist_dir)}
    return variants


def _tf_options(settings: dict[str, Any]):
    """A `tf.data.Options` with dotted attributes set, e.g. {"deterministic": False}."""
    import tensorflow as tf

    options = tf.data.Options()
    for dotted, value in settings.items():
        *parents, leaf = dotted.split(".")
        target = options
        for parent in parents:
            target = getattr(target, parent)
        setattr(target, leaf, value)
    return options


def _load(spec: dict[str, Any]):
    """The unbatched train split that `spec` describes (see `child_stream`)."""
    import tensorflow_datasets as tfds

    import qmnist_tfds  # noqa: F401  (registers `qmnist`)

    decoders = (tfds.decode.PartialDecoding({name: True for name in spec["decode"]})
                if spec.get("decode") else None)
    read_config = tfds.ReadConfig(**spec.get("read_config", {}))
    if spec.get("options"):
        read_config.options = _tf_options(spec["options"])
    if spec.get("builder_dir"):
        builder = tfds.builder_from_directory(spec["builder_dir"])
    else:
        builder = tfds.builder(spec["name"], data_dir=spec["data_dir"])
    return builder.as_dataset(split="train", decoders=decoders, read_config=read_config)


def _time_stream(ds) -> dict[str, float]:
    """Seconds until the last element of `ds` arrives, and this process's CPU seconds."""
    import tensorflow_datasets as tfds

    cpu = time.process_time()
    start = time.perf_counter()
    last = start
    for _ in tfds.as_numpy(ds):
        last = time.perf_counter()
    return {"seconds": last - start, "cpu_seconds": time.process_time() - cpu}


def child_stream(spec: dict[str, Any]) -> dict[str, float]:
    """Epoch-1 stream of the train split, batched, in this (fresh) process.

    `spec`: `name` and `data_dir`, or `builder_dir` (a prepared dataset's
    directory); optional `decode` (feature names for `PartialDecoding`),
    `read_config` (`tfds.ReadConfig` arguments), `options` (dotted
    `tf.data.Options` attributes) and `batch`.
    """
    import tensorflow_datasets as tfds

    batch = spec.get("batch", BATCH)
    for _ in tfds.as_numpy(_load(spec).batch(batch).take(WARM_UP_BATCHES)):
        pass
    return _time_stream(_load(spec).batch(batch))


def _train_files(data_dir: Path, name: str) -> list[str]:
    return sorted(os.fspath(p) for p in data_dir.rglob(f"{name}-train.tfrecord*"))


def parse_tasks(qmnist_dir: Path, fashion_dir: Path) -> dict[str, Callable[[], Any]]:
    """Datasets parsing the stored train records without decoding images, by name."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds

    import qmnist_tfds  # noqa: F401

    q_files = _train_files(qmnist_dir, "qmnist")
    f_files = _train_files(fashion_dir, "fashion_mnist")
    fixed = {name: tf.io.FixedLenFeature([], tf.int64) for name in ["label", *metadata_names()]}
    fixed["image"] = tf.io.FixedLenFeature([], tf.string)
    two = {name: fixed[name] for name in IMAGE_LABEL}
    stored = tfds.builder("qmnist", data_dir=os.fspath(qmnist_dir)).info.features
    stored = stored.get_serialized_info()
    as_int64 = {name: tfds.features.TensorInfo(shape=info.shape, dtype=np.int64)
                if name in fixed and info.np_dtype == np.int32 else info
                for name, info in stored.items()}

    def tfds_parser(infos: dict) -> Callable[[], Any]:
        parse = tfds.core.example_parser.ExampleParser(infos).parse_example
        return lambda: records(q_files).map(parse, num_parallel_calls=auto).batch(BATCH)

    auto = tf.data.AUTOTUNE

    def records(files: list[str]):
        return tf.data.TFRecordDataset(files)

    def single(files: list[str], spec: dict) -> Callable[[], Any]:
        return lambda: records(files).map(
            lambda x: tf.io.parse_single_example(x, spec), num_parallel_calls=auto).batch(BATCH)

    def batched(files: list[str], spec: dict) -> Callable[[], Any]:
        return lambda: records(files).batch(BATCH).map(
            lambda x: tf.io.parse_example(x, spec), num_parallel_calls=auto)

    return {
        "fashion_mnist parse_single_example, 2 features": single(f_files, two),
        "qmnist parse_single_example, 2 features": single(q_files, two),
        "qmnist parse_single_example, 8 features": single(q_files, fixed),
        "qmnist TFDS parser, 2 features (+reshape)": tfds_parser(
            {name: stored[name] for name in IMAGE_LABEL}),
        "qmnist TFDS parser, 8 features (+reshape, +cast)": tfds_parser(stored),
        "qmnist TFDS parser, 8, metadata int64 (+reshape)": tfds_parser(as_int64),
        "fashion_mnist parse_example per batch, 2 features": batched(f_files, two),
        "qmnist parse_example per batch, 2 features": batched(q_files, two),
        "qmnist parse_example per batch, 8 features": batched(q_files, fixed),
    }


def child_parse(qmnist_dir: Path, fashion_dir: Path, seed: int) -> dict[str, dict[str, float]]:
    """One round of the parsing timings, in a shuffled order; `_time_stream` by task."""
    tasks = parse_tasks(qmnist_dir, fashion_dir)
    for make in tasks.values():  # warm-up: page cache, graph tracing
        _time_stream(make().take(WARM_UP_BATCHES))
    order = list(tasks)
    random.Random(seed).shuffle(order)
    times = {name: _time_stream(tasks[name]()) for name in order}
    return {name: times[name] for name in tasks}


def prepare(work_dir: Path) -> tuple[Path, Path]:
    """Builds `qmnist` and `fashion_mnist` on the same pixels, unless the work dir has them."""
    files = speed.same_pixel_files(work_dir)
    qmnist_dir, fashion_dir = work_dir / "data" / "qmnist", work_dir / "data" / "fashion_mnist"
    for dataset, source, data_dir in (("qmnist/qmnist", files, qmnist_dir),
                                      ("fashion_mnist", speed.FASHION_DIR, fashion_dir)):
        if not list(data_dir.glob(f"{dataset}/*/dataset_info.json")):
            print(f"building {dataset} into {data_dir} ...", flush=True)
            speed.build(dataset, source, data_dir)
    return qmnist_dir, fashion_dir


def slope(counts: list[int], values: list[float]) -> float:
    """Least-squares slope of `values` over `counts`."""
    mean_x, mean_y = statistics.fmean(counts), statistics.fmean(values)
    return (sum((x - mean_x) * (y - mean_y) for x, y in zip(counts, values, strict=True))
            / sum((x - mean_x) ** 2 for x in counts))


Timings = dict[str, dict[str, list[float]]]  # "seconds" or "cpu_seconds" -> name -> rounds


def run_streams(variants: dict[str, dict[str, Any]], repeats: int,
                log: Callable[[str], None] = print) -> Timings:
    """Every variant's times: a fresh process each, shuffled within each of `repeats` rounds."""
    times: Timings = {"seconds": {name: [] for name in variants},
                      "cpu_seconds": {name: [] for name in variants}}
    for round_index in range(repeats):
        order = list(variants)
        random.Random(round_index).shuffle(order)
        log(f"streaming, round {round_index + 1} of {repeats} ...")
        for name in order:
            result = harness.run_child(__file__, "stream", json.dumps(variants[name]))
            for kind in times:
                times[kind][name].append(result[kind])
    return times


def stream_table(seconds: dict[str, list[float]], reference: str) -> list[dict[str, Any]]:
    """us/example (median, min, max) and the per-round speed ratio to `reference`."""
    rows = []
    for name, values in seconds.items():
        us = [s / TRAIN_EXAMPLES * 1e6 for s in values]
        ratio = [r / s for r, s in zip(seconds[reference], values, strict=True)]
        rows.append({"what": name, "us_per_example": harness.spread(us),
                     "ratio": harness.spread(ratio)})
    return rows


def print_rows(rows: list[dict[str, Any]], title: str, unit: str = "us/example") -> None:
    print(f"\n{title:52} {unit:>10} {'range':>13} {'vs fashion':>10} {'range':>12}")
    for row in rows:
        us, ratio = row["us_per_example"], row["ratio"]
        print(f"{row['what']:52} {us['median']:10.1f} {us['min']:6.1f}-{us['max']:<6.1f} "
              f"{harness.ratio_text(ratio, width=9)}")


def machine_line() -> tuple[dict[str, Any], str]:
    host = speed.machine()
    load = os.getloadavg()
    versions = ", ".join(f"{k} {v}" for k, v in host["versions"].items())
    return host, (f"machine: {host['cpu']}, {host['cores']} cores, load average "
                  f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1, 5, 15 min); {versions}")


def main() -> None:
    parser = harness.argument_parser(
        __doc__, work_dir=Path(tempfile.gettempdir()) / "qmnist_stream_bench")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of every timing")
    args = harness.parse_args(parser)
    if args.child:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        kind, *rest = args.child
        if kind == "stream":
            result = child_stream(json.loads(rest[0]))
        else:
            result = child_parse(Path(rest[0]), Path(rest[1]), int(rest[2]))
        harness.answer(result)
        return

    host, line = machine_line()
    print(line, flush=True)
    qmnist_dir, fashion_dir = prepare(args.work_dir)
    streams = run_streams(stream_variants(qmnist_dir, fashion_dir), args.repeats,
                          log=lambda message: print(message, flush=True))
    parses: Timings = {"seconds": {}, "cpu_seconds": {}}
    for round_index in range(args.repeats):
        print(f"parsing, round {round_index + 1} of {args.repeats} ...", flush=True)
        result = harness.run_child(__file__, "parse", qmnist_dir, fashion_dir, round_index)
        for name, times in result.items():
            for kind in parses:
                parses[kind].setdefault(name, []).append(times[kind])
    _, line_after = machine_line()

    count = len(metadata_names())
    counts = list(range(count + 1))
    slopes = {}
    for kind, seconds in streams.items():
        partial = [[s / TRAIN_EXAMPLES * 1e6 for s in seconds[f"qmnist image+label+{k}"]]
                   for k in counts]
        slopes[kind] = {"on_medians": slope(counts, [statistics.median(p) for p in partial]),
                        **harness.spread([slope(counts, [p[i] for p in partial])
                                          for i in range(args.repeats)])}
    tables = {
        kind: {"stream": stream_table(streams[kind], "fashion_mnist"),
               "parse": stream_table(parses[kind],
                                     "fashion_mnist parse_single_example, 2 features")}
        for kind in streams}

    print(f"\n{line}\nafter: {line_after.split('load average ')[1]}\n"
          f"{args.repeats} rounds; train split, {TRAIN_EXAMPLES:,} examples, batch {BATCH}; "
          "wall: until the last batch; CPU: the process's CPU time over the same span")
    for kind, label in (("seconds", "wall"), ("cpu_seconds", "CPU")):
        print_rows(tables[kind]["stream"], f"epoch-1 stream through tfds, {label}",
                   f"{label} us/ex")
        fit = slopes[kind]
        print(f"per metadata feature decoded ({label}, slope over 0-{count}): "
              f"{fit['on_medians']:.2f} us/example on the medians; per round median "
              f"{fit['median']:.2f}, range {fit['min']:.2f} to {fit['max']:.2f}")
    for kind, label in (("seconds", "wall"), ("cpu_seconds", "CPU")):
        print_rows(tables[kind]["parse"], f"parsing the records only, {label}",
                   f"{label} us/ex")
    print("(in the parsing tables the ratio is to fashion_mnist's parse_single_example, "
          "2 features)")
    harness.write_json(args.json, {
        "machine": host, "machine_before": line, "machine_after": line_after,
        "repeats": args.repeats, "batch": BATCH, "examples": TRAIN_EXAMPLES,
        "stream_times": streams, "parse_times": parses, "tables": tables,
        "slope_us_per_metadata_feature": slopes,
    })


if __name__ == "__main__":
    main()
