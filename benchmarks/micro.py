"""CPU cost of the build's two hot steps on Fashion-MNIST images, before and after.

    python benchmarks/micro.py [--rounds N] [--images N]

- Serializing 60,000 records of the `qmnist` features: one `tf.train.Example`
  protobuf per record (the serializer's former method) vs
  `records.ScalarExampleSerializer` (wire format assembled per chunk with numpy).
- PNG-encoding 10,000 28x28 images with `png.encode_gray_pngs`, zlib level 6
  (the former setting) vs `png.COMPRESSION_LEVEL` vs level 1, with the mean
  PNG size.
- The build's other steps, per 60,000 images: reading the gzipped IDX file
  (`idx.read_idx`), writing the serialized records with TensorFlow's TFRecord
  writer (which TFDS's writer uses), and the SHA-256 digest of that file.

Process CPU time, the best of N rounds, the contenders alternating, so that a
busy machine disturbs the comparison less than wall-clock time would.
`--images N` takes the first N training images (and records) instead of
60,000, a quick check that every step runs: the figures stay per record, per
image and per 60,000 images.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import harness
from speed import FASHION_DIR


def protobuf_per_record(features, columns) -> list[bytes]:
    """One `tf.train.Example` per record, as the serializer used to build them."""
    import tensorflow as tf

    names = list(columns)
    kinds = {name: "bytes_list" if name == "image" else "int64_list" for name in names}
    records = []
    for row in range(len(columns["image"])):
        example = tf.train.Example()
        feature = example.features.feature
        for name in names:
            getattr(feature[name], kinds[name]).value.append(columns[name][row])
        records.append(example.SerializeToString())
    return records


def best_cpu_seconds(tasks: dict, rounds: int) -> dict[str, float]:
    times = {name: [] for name in tasks}
    for _ in range(rounds):
        for name, task in tasks.items():
            start = time.process_time()
            task()
            times[name].append(time.process_time() - start)
    return {name: min(t) for name, t in times.items()}


def main() -> None:
    parser = harness.argument_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=60_000,
                        help="the first N training images (at most 60,000)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow  # noqa: F401 (the protobuf serializer's: imported before any clock)

    from qmnist_tfds import examples, idx, png, records
    from qmnist_tfds.qmnist import qmnist_dataset_builder

    images = idx.read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz")[:args.images]
    encoded = png.encode_gray_pngs(images)
    labels = np.zeros((len(images), idx.EXTENDED_LABEL_COLUMNS), dtype=np.int32)
    rng = np.random.default_rng(0)
    labels[:, :7] = rng.integers(0, [10, 5, 4100, 131, 40, 402_953, 2], size=(len(images), 7))
    chunks = [examples._columns(encoded[i : i + examples.ROWS_PER_CHUNK],
                                labels[i : i + examples.ROWS_PER_CHUNK])
              for i in range(0, len(images), examples.ROWS_PER_CHUNK)]
    features = qmnist_dataset_builder.Builder(data_dir="/nonexistent").info.features
    serializer = records.ScalarExampleSerializer(features)
    cpu = best_cpu_seconds({
        "protobuf": lambda: [protobuf_per_record(features, c) for c in chunks],
        "numpy": lambda: [serializer.serialize(c) for c in chunks],
    }, args.rounds)
    for name, seconds in cpu.items():
        print(f"serialize {len(images):,} records, {name:9} "
              f"{seconds / len(images) * 1e6:6.2f} us/record")
    sample = images[:10_000]
    levels = {6: None, png.COMPRESSION_LEVEL: None, 1: None}
    cpu = best_cpu_seconds({level: lambda level=level: png.encode_gray_pngs(sample, level=level)
                            for level in levels}, args.rounds)
    for level, seconds in cpu.items():
        size = np.mean([len(p) for p in png.encode_gray_pngs(sample, level=level)])
        print(f"PNG-encode {len(sample):,} images, zlib level {level}  "
              f"{seconds / len(sample) * 1e6:6.2f} us/image, mean {size:.1f} bytes")
    build_steps(serializer, chunks, args.rounds)


def build_steps(serializer, chunks, rounds: int) -> None:
    """CPU seconds of the build's steps other than PNG encoding, per 60,000 images (the
    records' writing and digest scaled from those of `chunks`)."""
    import hashlib
    import tempfile

    import tensorflow as tf

    from qmnist_tfds import idx

    records = [record for chunk in chunks for record in serializer.serialize(chunk)]
    scale = 60_000 / len(records)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "records.tfrecord")

        def write() -> None:
            with tf.io.TFRecordWriter(path) as writer:
                for record in records:
                    writer.write(record)

        write()
        cpu = best_cpu_seconds({  # the whole file: 60,000 images
            "read the gzipped IDX images (idx.read_idx)":
                lambda: idx.read_idx(FASHION_DIR / "train-images-idx3-ubyte.gz"),
        }, rounds)
        cpu |= {name: seconds * scale for name, seconds in best_cpu_seconds({
            "write the records (tf.io.TFRecordWriter)": write,
            "SHA-256 of the written file":
                lambda: hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        }, rounds).items()}
    for name, seconds in cpu.items():
        print(f"{name:45} {seconds:6.3f} s CPU per 60,000 images")


if __name__ == "__main__":
    main()
