"""Build and read speed of `qmnist` beside TFDS's own `fashion_mnist`, in one run.

    python benchmarks/speed.py [--repeats N] [--read-repeats N] [--json FILE] [--work-dir DIR]

Needs Debian's Fashion-MNIST files (`apt-get install -y dataset-fashion-mnist`).
QMNIST's image files cannot be fetched offline, so `qmnist` is built from
full-size synthetic files in the upstream layout (`qmnist_tfds.synthetic`),
written once into the work dir. Every build runs in a fresh subprocess, so its
peak RSS is that of one whole build process, TensorFlow included. Figures are
medians over the repeats; read-side timings alternate the two contenders.
Streaming is timed until the last batch arrives: on a 2-core machine, a
tf.data iterator of either dataset was seen to wait 2-3 s after its last
element before stopping, now and then, which would swamp the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _quiet_tf() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _peak_rss_mib() -> float:
    """This process's peak resident memory, MiB.

    Linux's `VmHWM` counts this program alone. `ru_maxrss` also counts the
    memory the parent had when it started this process (Linux carries the
    high-water mark across fork and exec), so it is only the fallback.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def _register_local_checksums(builder_cls, url_base: str, files: Path, names: list[str]) -> None:
    """Makes `builder_cls` accept the local copies of its files (benchmark only)."""
    import hashlib

    from tensorflow_datasets.core.download import checksums

    infos = {}
    for name in names:
        data = (files / name).read_bytes()
        infos[url_base + name] = checksums.UrlInfo(
            size=len(data), checksum=hashlib.sha256(data).hexdigest(), filename=name)
    builder_cls.url_infos = infos


def child_build(dataset: str, files: Path, data_dir: Path, file_format: str) -> dict:
    """Builds one dataset from local files; returns its time, examples and peak RSS."""
    import tensorflow_datasets as tfds

    if dataset.startswith("qmnist"):
        from etils import epath

        from qmnist_tfds.qmnist import qmnist_dataset_builder

        # Synthetic files carry their own checksums; the real ones would reject them.
        qmnist_dataset_builder.checksums_file = lambda: epath.Path(files / "checksums.tsv")
    else:
        from tensorflow_datasets.image_classification import mnist

        _register_local_checksums(mnist.FashionMNIST, mnist.FashionMNIST.URL, files,
                                  sorted(p.name for p in files.glob("*-ubyte.gz")))
    builder = tfds.builder(dataset, data_dir=os.fspath(data_dir), file_format=file_format)
    start = time.perf_counter()
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(files)))
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "examples": sum(s.num_examples for s in builder.info.splits.values()),
        "peak_rss_mib": _peak_rss_mib(),
    }


def child_read(qmnist_dir: Path, fashion_dir: Path, repeats: int, batch: int) -> dict:
    """Full split to numpy and epoch-1 streaming, qmnist and fashion_mnist alternating."""
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
    return {name: statistics.median(times) for name, times in timings.items()}


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


def _run_child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _builds(dataset: str, files: Path, keep: Path, repeats: int, file_format="tfrecord"):
    runs = []
    for i in range(repeats):
        data_dir = keep if i == repeats - 1 else Path(tempfile.mkdtemp(dir=keep.parent))
        runs.append(_run_child("build", dataset, os.fspath(files), os.fspath(data_dir),
                               file_format))
    seconds = statistics.median(r["seconds"] for r in runs)
    return {"examples": runs[0]["examples"], "seconds": seconds,
            "examples_per_second": runs[0]["examples"] / seconds,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "qmnist_tfds_bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--read-repeats", type=int, default=7,
                        help="rounds of the read-side timings (cheaper and noisier than builds)")
    parser.add_argument("--batch", type=int, default=128, help="streaming batch size")
    parser.add_argument("--reads", type=int, default=5000, help="random data_source reads")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _quiet_tf()
    if args.child:
        kind, *rest = args.child
        if kind == "build":
            result = child_build(rest[0], Path(rest[1]), Path(rest[2]), rest[3])
        elif kind == "imports":
            result = child_imports()
        elif kind == "read":
            result = child_read(Path(rest[0]), Path(rest[1]), int(rest[2]), int(rest[3]))
        else:
            result = child_random_reads(Path(rest[0]), int(rest[1]))
        print(json.dumps(result))
        return

    if not FASHION_DIR.exists():
        sys.exit(f"{FASHION_DIR} is missing: apt-get install -y dataset-fashion-mnist")
    files = args.work_dir / "files"
    if not (files / "checksums.tsv").exists():
        from qmnist_tfds import synthetic

        print(f"writing full-size synthetic files into {files} ...", flush=True)
        synthetic.write_all(files, synthetic.FULL_SIZES)
    out = Path(tempfile.mkdtemp(prefix="qmnist_bench_"))
    q_dir, f_dir, n_dir, a_dir = (out / n for n in ("qmnist", "fashion", "nist", "array"))
    r = args.repeats
    print("building ...", flush=True)
    build = {
        "qmnist": _builds("qmnist/qmnist", files, q_dir, r),
        "fashion_mnist": _builds("fashion_mnist", FASHION_DIR, f_dir, r),
        "nist": _builds("qmnist/nist", files, n_dir, r),
    }
    _builds("qmnist/qmnist", files, a_dir, 1, file_format="array_record")
    print("reading ...", flush=True)
    read = _run_child("read", os.fspath(q_dir), os.fspath(f_dir), str(args.read_repeats),
                      str(args.batch))
    reads = _run_child("random", os.fspath(a_dir), str(args.reads))
    imports = _run_child("imports")

    q, f = build["qmnist"], build["fashion_mnist"]
    distinct = 120_000  # qmnist's test10k and test50k repeat test's 60,000 images
    train_examples = 60_000
    rows = [
        ("build qmnist (examples written/s)", q["examples_per_second"],
         f["examples_per_second"], q["examples_per_second"] / f["examples_per_second"]),
        ("build qmnist (distinct images/s)", distinct / q["seconds"],
         f["examples_per_second"], distinct / q["seconds"] / f["examples_per_second"]),
        ("train split to numpy (s): load_arrays vs batch_size=-1", read["to_numpy_fast"],
         read["to_numpy_tfds"], read["to_numpy_tfds"] / read["to_numpy_fast"]),
        (f"epoch-1 stream, batch {args.batch} (examples/s): qmnist vs fashion_mnist",
         train_examples / read["stream_qmnist"], train_examples / read["stream_fashion_mnist"],
         read["stream_fashion_mnist"] / read["stream_qmnist"]),
        (f"epoch-1 stream, batch {args.batch}, image and label only (PartialDecoding)",
         train_examples / read["stream_qmnist_image_label"],
         train_examples / read["stream_fashion_mnist"],
         read["stream_fashion_mnist"] / read["stream_qmnist_image_label"]),
    ]
    # Where streaming time goes, per example: the same pipeline without PNG
    # decoding isolates parsing (qmnist's extra features) from image decoding.
    def us(key: str) -> float:
        return read[key] / train_examples * 1e6

    breakdown = {
        "png_decoding_us": (us("stream_qmnist") - us("stream_qmnist_png_undecoded"),
                            us("stream_fashion_mnist") - us("stream_fashion_mnist_png_undecoded")),
        "everything_else_us": (us("stream_qmnist_png_undecoded"),
                               us("stream_fashion_mnist_png_undecoded")),
    }
    results = {
        "repeats": r,
        "read_repeats": args.read_repeats,
        "build": build,
        "read_seconds": read,
        "data_source_random_reads_per_second": reads["reads_per_second"],
        "stream_per_example_breakdown": breakdown,
        "imports_only_peak_rss_mib": imports["peak_rss_mib"],
        "comparisons": [dict(zip(("what", "ours", "theirs", "ratio"), row, strict=True))
                        for row in rows],
    }
    print(f"\n{'measure':70} {'qmnist':>10} {'reference':>10} {'ratio':>7}")
    for what, ours, theirs, ratio in rows:
        print(f"{what:70} {ours:10.2f} {theirs:10.2f} {ratio:6.2f}x")
    for what, (ours, theirs) in (
        ("epoch-1 stream: PNG decoding (us/example)", breakdown["png_decoding_us"]),
        ("epoch-1 stream: all but PNG decoding, 8 vs 2 features (us/example)",
         breakdown["everything_else_us"]),
    ):
        print(f"{what:70} {ours:10.2f} {theirs:10.2f}")
    print(f"{'data_source random reads/s (array_record, decoded)':70} "
          f"{reads['reads_per_second']:10.0f}")
    n = build["nist"]
    print(f"{'nist build: examples/s, peak RSS MiB':70} {n['examples_per_second']:10.0f} "
          f"{n['peak_rss_mib']:10.0f}")
    print(f"{'peak RSS MiB of importing TensorFlow, TFDS and qmnist_tfds only':70} "
          f"{imports['peak_rss_mib']:10.0f}")
    print(f"{'qmnist build peak RSS MiB (fashion_mnist build)':70} {q['peak_rss_mib']:10.0f} "
          f"{f['peak_rss_mib']:10.0f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
