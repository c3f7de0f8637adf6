"""`load_arrays` with and without TensorFlow, beside `batch_size=-1`, from either file format.

    python benchmarks/load_arrays.py [--repeats N] [--work-dir DIR] [--json FILE]

Builds `qmnist` twice from `speed.py`'s same-pixel files (Debian's
Fashion-MNIST images in QMNIST's layout; needs `apt-get install -y
dataset-fashion-mnist`): a default build (TFRecord files, which `load_arrays`
reads, and their array_record copy) and an array_record build
(`file_format="array_record"`). Each round then starts two fresh processes, in
turn: one imports TensorFlow and reads the `train` split to numpy with
`tfds.as_numpy(tfds.load(..., batch_size=-1))` from the default build, then
with `load_arrays` from each build; the other does the two `load_arrays`
calls without ever importing TensorFlow. Each time is the median and range
over the rounds; each ratio is that of `batch_size=-1`'s time to the row's,
round by round.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import harness
import speed

TASKS = ("batch_size=-1", "load_arrays, TFRecord files, TensorFlow imported",
         "load_arrays, array_record files, TensorFlow imported",
         "load_arrays, TFRecord files, no TensorFlow",
         "load_arrays, array_record files, no TensorFlow")


def child_read(default_dir: Path, array_dir: Path, with_tensorflow: bool) -> dict:
    """Seconds of each read of `train` to numpy in this process, by task name, the
    examples each read, and whether TensorFlow was imported."""
    if with_tensorflow:
        import tensorflow  # noqa: F401
    import tensorflow_datasets as tfds

    import qmnist_tfds

    examples = set()

    def timed(call) -> float:
        start = time.perf_counter()
        arrays = call()
        seconds = time.perf_counter() - start
        examples.add(len(arrays["label"]))
        return seconds

    suffix = "TensorFlow imported" if with_tensorflow else "no TensorFlow"
    found = {}
    if with_tensorflow:
        found["batch_size=-1"] = timed(lambda: tfds.as_numpy(tfds.load(
            "qmnist", split="train", data_dir=os.fspath(default_dir), batch_size=-1)))
    found[f"load_arrays, TFRecord files, {suffix}"] = timed(
        lambda: qmnist_tfds.load_arrays("train", data_dir=default_dir))
    found[f"load_arrays, array_record files, {suffix}"] = timed(
        lambda: qmnist_tfds.load_arrays("train", data_dir=array_dir))
    return {"seconds": found, "examples": sorted(examples),
            "imported_tensorflow": "tensorflow" in sys.modules}


def prepare(work_dir: Path) -> tuple[Path, Path]:
    """The default build and the array_record build under `work_dir`, built if missing."""
    files = speed.same_pixel_files(work_dir)
    builds = work_dir / "load_arrays"
    default_dir, array_dir = builds / "default", builds / "array_record"
    for data_dir, file_format in ((default_dir, "tfrecord"), (array_dir, "array_record")):
        if not (data_dir / "qmnist" / "qmnist" / "1.0.0" / "dataset_info.json").exists():
            print(f"building qmnist/qmnist ({file_format}) into {data_dir} ...", flush=True)
            speed.build("qmnist/qmnist", files, data_dir, file_format)
    return default_dir, array_dir


def measure(default_dir: Path, array_dir: Path, repeats: int) -> dict:
    rounds = []
    for i in range(repeats):
        print(f"round {i + 1} of {repeats} ...", flush=True)
        times = {}
        for with_tensorflow in (i % 2 == 0, i % 2 == 1):  # which goes first alternates
            read = harness.run_child(__file__, "read", default_dir, array_dir,
                                     int(with_tensorflow))
            if (read["examples"] != [speed.TRAIN_EXAMPLES]
                    or read["imported_tensorflow"] != with_tensorflow):
                raise RuntimeError(f"unexpected read: {read}")
            times |= read["seconds"]
        rounds.append(times)
    return {task: {"seconds": harness.spread([r[task] for r in rounds]),
                   "speedup": harness.spread([r["batch_size=-1"] / r[task] for r in rounds])}
            for task in TASKS}


def format_report(result: dict) -> str:
    lines = [f"{'train split to numpy':52} {'seconds':>8} {'range':>11} "
             f"{'vs batch_size=-1':>18}"]
    for task, row in result.items():
        s = row["seconds"]
        lines.append(f"{task:52} {s['median']:8.2f} {s['min']:5.2f}-{s['max']:<5.2f} "
                     f"{harness.ratio_text(row['speedup'], 7)}")
    return "\n".join(lines)


def main() -> None:
    parser = harness.argument_parser(__doc__, work_dir=speed.WORK_DIR)
    parser.add_argument("--repeats", type=int, default=5, help="rounds of both processes")
    args = harness.parse_args(parser)
    if args.child:
        kind, default_dir, array_dir, with_tensorflow = args.child
        assert kind == "read", kind
        harness.answer(child_read(Path(default_dir), Path(array_dir),
                                  with_tensorflow == "1"))
        return
    default_dir, array_dir = prepare(args.work_dir)
    load = os.getloadavg()[0]
    result = measure(default_dir, array_dir, args.repeats)
    print(f"machine: {speed.machine()['cpu']}; load average {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; {args.repeats} rounds")
    print(format_report(result))
    harness.write_json(args.json, {"load_average": [load, os.getloadavg()[0]],
                                   "rows": result})


if __name__ == "__main__":
    main()
