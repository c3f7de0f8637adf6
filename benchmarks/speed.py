"""Build and read speed of `qmnist` beside TFDS's own `fashion_mnist`, on the same pixels.

    python benchmarks/speed.py [--repeats N] [--read-repeats N] [--jax-repeats N] [--rings]
                               [--json FILE]

Needs Debian's Fashion-MNIST files (`apt-get install -y dataset-fashion-mnist`)
and the packages of `pip install -e ".[test]"`; runs from a checkout as it is.
QMNIST's image files cannot be fetched offline, so `qmnist` is built from
files in QMNIST's layout and sizes (60,000 train, 60,000 test, 402,953 nist
rows) whose images are Debian's Fashion-MNIST images, the pixels TFDS's
`fashion_mnist` builder encodes: `train` is Fashion-MNIST's training set as it
is, `test` its test set then rotated and mirrored copies of it (`nist` both
sets, likewise). They are written once into the work dir (a few minutes,
mostly xz). `--rings` also builds from the synthetic ring images of
`qmnist_tfds.synthetic`, as extra rows labelled so.

Every build runs in a fresh subprocess, which imports TensorFlow before its
clock starts, as `tfds build` does (the import is timed and reported on its
own row); its peak RSS is that of the whole process. A second pair builds
array_record files as a Python process does, every import in the clock:
there `qmnist` never imports TensorFlow, `fashion_mnist` does. Builds of the two
datasets alternate, and each ratio is given as the median and the range of
the ratios of the pairs (builds) or rounds (reads). Streaming is timed until
the last batch arrives: on a 2-core machine, a tf.data iterator of either
dataset was seen to wait 2-3 s after its last element before stopping, now
and then, which would swamp the comparison.

Last come the ways a JAX training loop is fed from the train split
(`benchmarks/jax_inputs.py`, `--jax-repeats` rounds; 0 leaves them out).
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import harness

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_EXAMPLES = 70_000
DISTINCT_IMAGES = 120_000  # qmnist's test10k and test50k repeat test's 60,000 images
TRAIN_EXAMPLES = 60_000
FULL_SIZES = {"train": 60_000, "test": 60_000, "nist": 402_953}
WORK_DIR = Path(tempfile.gettempdir()) / "qmnist_tfds_bench"  # random_access.py's too


def _dihedral(images, k: int):
    """The k-th of the 8 rotations and mirror images of every image (k=0: unchanged)."""
    import numpy as np

    turned = np.rot90(images, k % 4, axes=(1, 2))
    return turned[:, :, ::-1] if k >= 4 else turned


def same_pixel_images(split: str, count: int):
    """(count, 28, 28) uint8: Debian's Fashion-MNIST images, in QMNIST's split sizes.

    `train` is Fashion-MNIST's training set as it is; `test` its test set
    followed by rotated and mirrored copies of it; `nist` both sets, again
    repeated rotated and mirrored. So the PNG encoder sees the pixels TFDS's
    `fashion_mnist` builder encodes, in the same order where it can.
    """
    import numpy as np

    from qmnist_tfds import idx

    train = idx.read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz")
    test = idx.read_idx(FASHION_DIR / "t10k-images-idx3-ubyte.gz")
    source = {"train": train, "test": test, "nist": np.concatenate([train, test])}[split]
    copies = -(-count // len(source))
    return np.concatenate([_dihedral(source, k) for k in range(copies)])[:count]


def write_same_pixel_files(directory: Path) -> Path:
    """QMNIST's six files, full size, in its layout, with Fashion-MNIST's pixels.

    Labels carry Fashion-MNIST's classes where the images are its own, and
    synthetic metadata in QMNIST's value ranges. Returns the `checksums.tsv`
    that registers them.
    """
    import numpy as np

    from qmnist_tfds import downloads, idx, synthetic

    directory.mkdir(parents=True, exist_ok=True)
    classes = np.concatenate([idx.read_idx(FASHION_DIR / name) for name in
                              ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")])
    names = []
    for i, (split, count) in enumerate(FULL_SIZES.items()):
        labels = synthetic.synthetic_labels(split, count, np.random.default_rng([0, i]))
        labels[:, 0] = np.resize(classes if split == "nist" else
                                 classes[:60_000] if split == "train" else classes[60_000:],
                                 count)
        labels[:, 4] = 30 + labels[:, 0]
        images_name = downloads.FILES[f"{split}_images"]
        labels_name = downloads.FILES[f"{split}_labels"]
        idx.write_idx(directory / labels_name, labels)
        idx.write_idx(directory / images_name, same_pixel_images(split, count))
        names += [images_name, labels_name]
    checksums = directory / "checksums.tsv"
    checksums.write_text(synthetic.checksums_tsv(directory, names))
    return checksums


def same_pixel_files(work_dir: Path) -> Path:
    """`work_dir / "same-pixels"`, holding `write_same_pixel_files`'s files (written if
    missing)."""
    files = work_dir / "same-pixels"
    if not (files / "checksums.tsv").exists():
        if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
            raise FileNotFoundError(
                f"{FASHION_DIR} is missing: apt-get install -y dataset-fashion-mnist")
        print(f"writing QMNIST-layout files of Fashion-MNIST images into {files} ...",
              flush=True)
        write_same_pixel_files(files)
    return files


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _peak_rss_mib() -> float:
    """This process's peak resident memory, MiB.

    Linux's `VmHWM` counts this program alone. `ru_maxrss` also counts the
    memory the parent had when it started this process (Linux carries the
    high-water mark across fork and exec), so it is only the fallback.
    """
    if Path("/proc/self/status").exists():
        return harness.rss_mib(field="VmHWM")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _local_url_infos(url_base: str, files: Path, names: list[str]) -> dict:
    """TFDS url infos under which a builder accepts the local copies of its files."""
    import hashlib

    from tensorflow_datasets.core.download import checksums

    infos = {}
    for name in names:
        data = (files / name).read_bytes()
        infos[url_base + name] = checksums.UrlInfo(
            size=len(data), checksum=hashlib.sha256(data).hexdigest(), filename=name)
    return infos


def child_build(dataset: str, files: Path, data_dir: Path, file_format: str,
                import_tensorflow: bool = True) -> dict:
    """Builds one dataset from local files; returns its times, examples and peak RSS.

    TensorFlow is imported before the build's clock starts, as `tfds build`
    does; with `import_tensorflow=False`, only if the build itself imports it
    (then inside the build's time), as a Python process that builds does. What
    it patches to accept the local files is undone on return.
    """
    start = time.perf_counter()
    if import_tensorflow:
        import tensorflow  # noqa: F401  (`tfds build` imports it before any builder runs)
    import tensorflow_datasets as tfds

    import_seconds = time.perf_counter() - start
    with contextlib.ExitStack() as patches:
        if dataset.startswith("qmnist"):
            from etils import epath

            from qmnist_tfds import downloads

            # These files carry their own checksums; the real ones would reject them.
            patches.enter_context(mock.patch.object(
                downloads, "checksums_file", lambda: epath.Path(files / "checksums.tsv")))
        else:
            from tensorflow_datasets.image_classification import mnist

            from qmnist_tfds import idx

            patches.enter_context(mock.patch.object(
                mnist.FashionMNIST, "url_infos",
                _local_url_infos(mnist.FashionMNIST.URL, files,
                                 sorted(p.name for p in files.glob("*-ubyte.gz")))))
            # The builder reads as many images as its module says a split holds; a
            # smaller set of files in the same layout (the tests') says its own.
            for split, name in (("TRAIN", "train"), ("TEST", "t10k")):
                with idx.IdxReader(files / f"{name}-images-idx3-ubyte.gz") as reader:
                    patches.enter_context(mock.patch.object(
                        mnist, f"_{split}_EXAMPLES", reader.header.count))
        builder = tfds.builder(dataset, data_dir=os.fspath(data_dir), file_format=file_format)
        cpu = time.process_time()
        start = time.perf_counter()
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(files)))
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "import_seconds": import_seconds,
        "examples": sum(s.num_examples for s in builder.info.splits.values()),
        "peak_rss_mib": _peak_rss_mib(),
        "imported_tensorflow": "tensorflow" in sys.modules,
    }


def child_read(qmnist_dir: Path, fashion_dir: Path, repeats: int, batch: int) -> dict:
    """Full split to numpy and epoch-1 streaming, qmnist and fashion_mnist alternating.

    Returns every round's seconds per task, and the mean stored PNG size of
    each train split.
    """
    import tensorflow_datasets as tfds

    import qmnist_tfds

    def seconds(call) -> float:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    def to_numpy_tfds():
        return seconds(lambda: tfds.as_numpy(tfds.load(
            "qmnist", split="train", data_dir=os.fspath(qmnist_dir), batch_size=-1)))

    def to_numpy_fast():
        return seconds(lambda: qmnist_tfds.load_arrays("train", data_dir=qmnist_dir))

    def stream(name, data_dir, **load_kwargs):
        ds = tfds.load(name, split="train", data_dir=os.fspath(data_dir), **load_kwargs)
        ds = ds.batch(batch)
        start = time.perf_counter()
        for _ in tfds.as_numpy(ds):
            last_batch = time.perf_counter()
        return last_batch - start

    def mean_png_bytes(name, data_dir) -> float:
        ds = tfds.load(name, split="train", data_dir=os.fspath(data_dir), batch_size=-1,
                       decoders={"image": tfds.decode.SkipDecoding()})
        images = tfds.as_numpy(ds)["image"]
        return float(sum(map(len, images)) / len(images))

    image_label = tfds.decode.PartialDecoding({"image": True, "label": True})
    undecoded = {"image": tfds.decode.SkipDecoding()}  # PNG bytes as stored
    tasks = {
        "to_numpy_tfds": to_numpy_tfds,
        "to_numpy_fast": to_numpy_fast,
        "stream_qmnist": lambda: stream("qmnist", qmnist_dir),
        "stream_qmnist_image_label": lambda: stream("qmnist", qmnist_dir, decoders=image_label),
        "stream_fashion_mnist": lambda: stream("fashion_mnist", fashion_dir),
        "stream_qmnist_png_undecoded": lambda: stream("qmnist", qmnist_dir, decoders=undecoded),
        "stream_fashion_mnist_png_undecoded": lambda: stream("fashion_mnist", fashion_dir,
                                                             decoders=undecoded),
    }
    for task in tasks.values():  # warm-up: page cache, graph tracing
        task()
    timings = {name: [] for name in tasks}
    for _ in range(repeats):
        for name, task in tasks.items():
            timings[name].append(task())
    return {"seconds": timings,
            "mean_png_bytes": {"qmnist": mean_png_bytes("qmnist", qmnist_dir),
                               "fashion_mnist": mean_png_bytes("fashion_mnist", fashion_dir)}}


def child_imports() -> dict:
    """Peak RSS of a process that only imports what a build imports."""
    import tensorflow  # noqa: F401
    import tensorflow_datasets  # noqa: F401

    from qmnist_tfds.qmnist import qmnist_dataset_builder  # noqa: F401

    return {"peak_rss_mib": _peak_rss_mib()}


def child_random_reads(data_dir: Path, reads: int) -> dict:
    import tensorflow_datasets as tfds

    source = tfds.data_source("qmnist", split="train", data_dir=os.fspath(data_dir))
    indices = random.Random(0).sample(range(len(source)), reads)
    source[indices[0]]
    start = time.perf_counter()
    for i in indices:
        source[i]
    return {"reads_per_second": reads / (time.perf_counter() - start)}


def build(dataset: str, files: Path, data_dir: Path, file_format="tfrecord",
          import_tensorflow: bool = True) -> dict:
    """`child_build` in a fresh process; its answer."""
    return harness.run_child(__file__, "build", dataset, files, data_dir, file_format,
                             *([] if import_tensorflow else ["without-tensorflow-first"]))


def machine() -> dict:
    """What the figures were measured on."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        model = names[0] if names else model
    from importlib import metadata

    versions = {}
    for package in ("tensorflow", "tensorflow-cpu", "tensorflow-datasets", "numpy",
                    "protobuf"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "versions": versions}


def main() -> None:
    parser = harness.argument_parser(__doc__, work_dir=WORK_DIR)
    parser.add_argument("--repeats", type=int, default=3,
                        help="builds of each dataset (qmnist and fashion_mnist alternate)")
    parser.add_argument("--read-repeats", type=int, default=7,
                        help="rounds of the read-side timings (cheaper and noisier than builds)")
    parser.add_argument("--batch", type=int, default=128, help="streaming batch size")
    parser.add_argument("--reads", type=int, default=5000, help="random data_source reads")
    parser.add_argument("--rings", action="store_true",
                        help="also build qmnist from synthetic ring images (extra rows)")
    parser.add_argument("--jax-repeats", type=int, default=2,
                        help="rounds of benchmarks/jax_inputs.py's JAX input paths (0: none)")
    args = harness.parse_args(parser)
    _quiet_tf()
    if args.child:
        kind, *rest = args.child
        if kind == "build":
            result = child_build(rest[0], Path(rest[1]), Path(rest[2]), rest[3],
                                 import_tensorflow=len(rest) == 4)
        elif kind == "imports":
            result = child_imports()
        elif kind == "read":
            result = child_read(Path(rest[0]), Path(rest[1]), int(rest[2]), int(rest[3]))
        else:
            result = child_random_reads(Path(rest[0]), int(rest[1]))
        harness.answer(result)
        return

    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists():
        sys.exit(f"{FASHION_DIR} is missing: apt-get install -y dataset-fashion-mnist")
    files = same_pixel_files(args.work_dir)
    ring_files = args.work_dir / "rings"
    if args.rings and not (ring_files / "checksums.tsv").exists():
        from qmnist_tfds import synthetic

        print(f"writing full-size synthetic ring files into {ring_files} ...", flush=True)
        synthetic.write_all(ring_files, synthetic.FULL_SIZES)
    out = Path(tempfile.mkdtemp(prefix="qmnist_bench_"))
    q_dir, f_dir, n_dir, a_dir = (out / n for n in ("qmnist", "fashion", "nist", "array"))
    host = machine()
    load_before = os.getloadavg()
    print(f"machine: {host['cpu']}, {host['cores']} cores, load average "
          f"{load_before[0]:.2f} (1 min) before the run", flush=True)
    r = args.repeats
    runs: dict[str, list[dict]] = {"qmnist": [], "fashion_mnist": [], "nist": [], "rings": [],
                                   "qmnist_array_record": [], "fashion_mnist_array_record": []}
    for i in range(r):
        print(f"building, round {i + 1} of {r} ...", flush=True)
        last = i == r - 1
        scratch = Path(tempfile.mkdtemp(dir=out))
        runs["qmnist"].append(build("qmnist/qmnist", files, q_dir if last else scratch / "q"))
        runs["fashion_mnist"].append(
            build("fashion_mnist", FASHION_DIR, f_dir if last else scratch / "f"))
        if args.rings:
            runs["rings"].append(build("qmnist/qmnist", ring_files, scratch / "r"))
        runs["nist"].append(build("qmnist/nist", files, n_dir if last else scratch / "n"))
        # From Python, into array_record files, every import in the clock: qmnist's
        # build needs no TensorFlow, fashion_mnist's imports it to encode its images.
        runs["qmnist_array_record"].append(build(
            "qmnist/qmnist", files, a_dir if last else scratch / "qa", "array_record",
            import_tensorflow=False))
        runs["fashion_mnist_array_record"].append(build(
            "fashion_mnist", FASHION_DIR, scratch / "fa", "array_record",
            import_tensorflow=False))
    print("reading ...", flush=True)
    read = harness.run_child(__file__, "read", q_dir, f_dir, args.read_repeats, args.batch)
    reads = harness.run_child(__file__, "random", a_dir, args.reads)
    imports = harness.run_child(__file__, "imports")
    load_after = os.getloadavg()

    def median(kind: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[kind])

    def per_second(run: dict, count: int, with_import: bool = False) -> float:
        return count / (run["seconds"] + (run["import_seconds"] if with_import else 0))

    pairs = list(zip(runs["qmnist"], runs["fashion_mnist"], strict=True))
    build_ratio = harness.spread([per_second(q, DISTINCT_IMAGES)
                                  / per_second(f, FASHION_EXAMPLES) for q, f in pairs])
    written_ratio = harness.spread([per_second(q, q["examples"])
                                    / per_second(f, FASHION_EXAMPLES) for q, f in pairs])
    import_ratio = harness.spread([per_second(q, DISTINCT_IMAGES, True)
                                   / per_second(f, FASHION_EXAMPLES, True) for q, f in pairs])
    python_pairs = list(zip(runs["qmnist_array_record"], runs["fashion_mnist_array_record"],
                            strict=True))
    python_ratio = harness.spread([per_second(q, DISTINCT_IMAGES, True)
                                   / per_second(f, FASHION_EXAMPLES, True)
                                   for q, f in python_pairs])
    t = read["seconds"]

    def read_ratio(ours: str, theirs: str) -> dict:
        return harness.spread([b / a for a, b in zip(t[ours], t[theirs], strict=True)])

    def rate(task: str) -> float:
        return TRAIN_EXAMPLES / statistics.median(t[task])

    def us(task: str) -> float:
        return statistics.median(t[task]) / TRAIN_EXAMPLES * 1e6

    q_seconds, f_seconds = median("qmnist", "seconds"), median("fashion_mnist", "seconds")
    rows = [
        ("build: distinct images/s (qmnist 120,000; fashion_mnist 70,000)",
         DISTINCT_IMAGES / q_seconds, FASHION_EXAMPLES / f_seconds, build_ratio),
        ("build: examples written/s (qmnist 180,000)",
         runs["qmnist"][0]["examples"] / q_seconds, FASHION_EXAMPLES / f_seconds,
         written_ratio),
        ("build with TensorFlow's import: distinct images/s",
         DISTINCT_IMAGES / (q_seconds + median("qmnist", "import_seconds")),
         FASHION_EXAMPLES / (f_seconds + median("fashion_mnist", "import_seconds")),
         import_ratio),
        ("array_record build from Python, imports counted: distinct images/s",
         DISTINCT_IMAGES / statistics.median(q["seconds"] + q["import_seconds"]
                                             for q, _ in python_pairs),
         FASHION_EXAMPLES / statistics.median(f["seconds"] + f["import_seconds"]
                                              for _, f in python_pairs),
         python_ratio),
        ("train split to numpy (s): load_arrays vs batch_size=-1",
         statistics.median(t["to_numpy_fast"]), statistics.median(t["to_numpy_tfds"]),
         harness.spread([b / a for a, b in zip(t["to_numpy_fast"], t["to_numpy_tfds"],
                                               strict=True)])),
        (f"epoch-1 stream, batch {args.batch}, every feature (examples/s)",
         rate("stream_qmnist"), rate("stream_fashion_mnist"),
         read_ratio("stream_qmnist", "stream_fashion_mnist")),
        (f"epoch-1 stream, batch {args.batch}, image and label (PartialDecoding)",
         rate("stream_qmnist_image_label"), rate("stream_fashion_mnist"),
         read_ratio("stream_qmnist_image_label", "stream_fashion_mnist")),
    ]
    if args.rings:
        rings_seconds = median("rings", "seconds")
        rows.append(("RING IMAGES, not same pixels: build distinct images/s",
                     DISTINCT_IMAGES / rings_seconds, FASHION_EXAMPLES / f_seconds,
                     harness.spread([per_second(g, DISTINCT_IMAGES)
                                     / per_second(f, FASHION_EXAMPLES)
                                     for g, f in zip(runs["rings"], runs["fashion_mnist"],
                                                     strict=True)])))
    # Where streaming time goes, per example: the same pipeline without PNG
    # decoding isolates parsing (qmnist's extra features) from image decoding.
    breakdown = {
        "png_decoding_us": (us("stream_qmnist") - us("stream_qmnist_png_undecoded"),
                            us("stream_fashion_mnist") - us("stream_fashion_mnist_png_undecoded")),
        "everything_else_us": (us("stream_qmnist_png_undecoded"),
                               us("stream_fashion_mnist_png_undecoded")),
    }
    n = runs["nist"]
    extra = [
        ("build CPU seconds (process time, TensorFlow import excluded)",
         median("qmnist", "cpu_seconds"), median("fashion_mnist", "cpu_seconds")),
        ("TensorFlow + TFDS import before the build's clock (s)",
         median("qmnist", "import_seconds"), median("fashion_mnist", "import_seconds")),
        ("mean stored PNG size, train split (bytes)", read["mean_png_bytes"]["qmnist"],
         read["mean_png_bytes"]["fashion_mnist"]),
        ("epoch-1 stream: PNG decoding (us/example)", *breakdown["png_decoding_us"]),
        ("epoch-1 stream: all but PNG decoding, 8 vs 2 features (us/example)",
         *breakdown["everything_else_us"]),
        ("build peak RSS MiB, whole process", max(x["peak_rss_mib"] for x in runs["qmnist"]),
         max(x["peak_rss_mib"] for x in runs["fashion_mnist"])),
        ("array_record build from Python: imports and build (s)",
         median("qmnist_array_record", "import_seconds")
         + median("qmnist_array_record", "seconds"),
         median("fashion_mnist_array_record", "import_seconds")
         + median("fashion_mnist_array_record", "seconds")),
        ("array_record build from Python: builds that imported TensorFlow",
         sum(x["imported_tensorflow"] for x in runs["qmnist_array_record"]),
         sum(x["imported_tensorflow"] for x in runs["fashion_mnist_array_record"])),
        ("array_record build from Python: peak RSS MiB, whole process",
         max(x["peak_rss_mib"] for x in runs["qmnist_array_record"]),
         max(x["peak_rss_mib"] for x in runs["fashion_mnist_array_record"])),
    ]
    single = [
        ("data_source random reads/s (array_record, decoded)", reads["reads_per_second"]),
        ("nist build: examples/s (402,953 examples)",
         n[0]["examples"] / median("nist", "seconds")),
        ("nist build: build CPU seconds", median("nist", "cpu_seconds")),
        ("nist build: peak RSS MiB, whole process", max(x["peak_rss_mib"] for x in n)),
        ("peak RSS MiB of importing TensorFlow, TFDS and qmnist_tfds only",
         imports["peak_rss_mib"]),
    ]
    results = {
        "machine": {**host, "load_average_before": load_before, "load_average_after": load_after},
        "repeats": r,
        "read_repeats": args.read_repeats,
        "builds": runs,
        "read_seconds": t,
        "mean_png_bytes": read["mean_png_bytes"],
        "data_source_random_reads_per_second": reads["reads_per_second"],
        "stream_per_example_breakdown": breakdown,
        "imports_only_peak_rss_mib": imports["peak_rss_mib"],
        "comparisons": [dict(zip(("what", "ours", "theirs", "ratio"), row, strict=True))
                        for row in rows],
    }
    print(f"\nmachine: {host['cpu']}, {host['cores']} cores; load average (1 min) "
          f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; {r} build pairs, "
          f"{args.read_repeats} read rounds")
    print(f"\n{'measure':66} {'qmnist':>9} {'reference':>9} {'ratio':>6} {'range':>12}")
    for what, ours, theirs, ratio in rows:
        print(f"{what:66} {ours:9.2f} {theirs:9.2f} {harness.ratio_text(ratio)}")
    for what, ours, theirs in extra:
        print(f"{what:66} {ours:9.2f} {theirs:9.2f}")
    for what, value in single:
        print(f"{what:66} {value:9.0f}")
    if args.jax_repeats:
        results["jax_inputs"] = _jax_inputs(args.work_dir, args.jax_repeats)
    harness.write_json(args.json, results)


def _jax_inputs(work_dir: Path, repeats: int) -> dict:
    """benchmarks/jax_inputs.py's table, on fresh builds of the same-pixel files."""
    import shutil

    import jax_inputs  # beside this file (see harness.py)

    for file_format in ("tfrecord", "array_record"):  # builds by an earlier version: rebuild
        shutil.rmtree(work_dir / file_format, ignore_errors=True)
    print("\nfeeding a JAX training loop from the train split "
          "(benchmarks/jax_inputs.py) ...", flush=True)
    result = jax_inputs.measure(work_dir, repeats)
    print("\n" + jax_inputs.format_report(result))
    return result


if __name__ == "__main__":
    main()
