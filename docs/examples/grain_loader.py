"""QMNIST through Grain, as Grain's documentation and the JAX AI stack feed MNIST.

    pip install ".[tensorflow,grain]"
    tfds build --imports qmnist_tfds qmnist/qmnist    # the default build serves Grain
    python docs/examples/grain_loader.py [--data_dir DIR] [--worker_count 2]

`tfds.data_source("qmnist", ...)` reads the array_record copy that the default
build writes beside its TFRecord shards; with `import qmnist_tfds` it serves
each example from memory. Grain's `DataLoader` starts its workers as new
processes, so a script that uses it runs its work under `if __name__ ==
"__main__":` and parses absl's flags (here through `absl.app.run`).
"""

from __future__ import annotations

from collections.abc import Iterator

import grain
import tensorflow_datasets as tfds
from absl import app, flags

import qmnist_tfds  # noqa: F401 (registers the builder; data sources served from memory)

BATCH = 128


def map_dataset(split: str = "train", seed: int = 45, data_dir: str | None = None):
    """Grain's documented pattern: one shuffled epoch of examples, as an iterator dataset.

    The source serves records from memory, so the iterator reads them on the
    calling thread (`num_threads=0`) rather than on Grain's default 16
    prefetch threads, which only contend for the GIL.
    """
    source = tfds.data_source("qmnist", split=split, data_dir=data_dir)
    return (grain.MapDataset.source(source).seed(seed).shuffle()
            .to_iter_dataset(grain.ReadOptions(num_threads=0)))


def jax_ai_stack_batches(split: str = "train", seed: int = 45, data_dir: str | None = None):
    """The JAX AI stack's MNIST pipeline: (image in [0, 1], label) batches of 128."""
    source = tfds.data_source("qmnist", split=split, data_dir=data_dir)
    return (grain.MapDataset.source(source).seed(seed).shuffle()
            .map(lambda x: (x["image"] / 255.0, x["label"]))
            .batch(BATCH, drop_remainder=True))


def data_loader(split: str = "train", seed: int = 0, worker_count: int = 2,
                shard_index: int = 0, shard_count: int = 1,
                data_dir: str | None = None) -> Iterator[dict]:
    """One shuffled epoch of this host's shard of `split`, in batches, from worker processes.

    `shard_index` and `shard_count` are this host's place among the hosts
    (`jax.process_index()`, `jax.process_count()`): each host reads its own
    part of the split. Grain's DataLoader gives every host as many examples,
    so up to `shard_count - 1` rows of the split are read by none; for an
    exact cover, give each host `split=tfds.split_for_jax_process(split)`
    and no shard options. The source serves records from memory, so each
    worker reads on its own thread (`num_threads=0`, as Grain advises for
    data in memory) rather than on Grain's default 16, which only contend for
    the GIL; `benchmarks/random_access.py` measures both.
    """
    source = tfds.data_source("qmnist", split=split, data_dir=data_dir)
    sampler = grain.samplers.IndexSampler(
        num_records=len(source),
        shard_options=grain.sharding.ShardOptions(shard_index=shard_index,
                                                  shard_count=shard_count),
        shuffle=True, seed=seed, num_epochs=1)
    return iter(grain.DataLoader(data_source=source, sampler=sampler, worker_count=worker_count,
                                 operations=[grain.transforms.Batch(BATCH)],
                                 read_options=grain.ReadOptions(num_threads=0)))


_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's)")
_WORKERS = flags.DEFINE_integer("worker_count", 2, "Grain worker processes")


def main(argv) -> None:
    del argv
    examples = 0
    for batch in data_loader(worker_count=_WORKERS.value, data_dir=_DATA_DIR.value):
        examples += len(batch["label"])
    print(f"one epoch of train: {examples} examples in batches of {BATCH}, "
          f"images {batch['image'].shape[1:]} {batch['image'].dtype}")


if __name__ == "__main__":
    app.run(main)
