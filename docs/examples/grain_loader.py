"""Random access for Grain: shuffled batches from an array_record build of QMNIST.

    pip install ".[grain]"
    tfds build --imports qmnist_tfds qmnist/qmnist --file_format array_record
    python docs/examples/grain_loader.py [--data_dir DIR]

In TFDS 4.9.10 an array_record build is read by `tfds.data_source` only
(`tfds.load` needs a TFRecord build).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import grain
import tensorflow_datasets as tfds

import qmnist_tfds  # noqa: F401 (registers the builder)


def shuffled_batches(split: str = "train", batch_size: int = 128, seed: int = 0,
                     data_dir: str | None = None) -> Iterator[dict]:
    """One epoch of `split` in an order fixed by `seed`, as dicts of numpy batches."""
    source = tfds.data_source("qmnist", split=split, data_dir=data_dir)
    return iter(grain.MapDataset.source(source).shuffle(seed=seed).batch(batch_size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--batch_size", type=int, default=128)
    args = parser.parse_args()
    batch = next(shuffled_batches(batch_size=args.batch_size, data_dir=args.data_dir))
    print({key: (value.shape, value.dtype) for key, value in batch.items()})


if __name__ == "__main__":
    main()
