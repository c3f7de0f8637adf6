"""Synthetic files in the exact layout of the upstream QMNIST files.

The real image files cannot always be fetched (offline machines, CI), so the
tests, the dummy data and the benchmarks run on files written here: the same
names, IDX layouts and compression as upstream, with ring-shaped strokes for
images and metadata drawn from the real value ranges. They are NOT QMNIST
digits; never present them as such.

    python -m qmnist_tfds.synthetic OUT_DIR [--train N] [--test N] [--nist N]

writes the six files and `checksums.tsv`, their checksums in TFDS's format
(the real URLs with the synthetic files' sizes and digests);
`python -m qmnist_tfds.synthetic --dummy-data` rewrites the builder's dummy data.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
from collections.abc import Iterable

import numpy as np

from qmnist_tfds import downloads, idx

FULL_SIZES = {"train": 60_000, "test": 60_000, "nist": 402_953}
# The builder's dummy_data/: enough test rows to cross the test10k boundary,
# few distinct images so that the files stay small.
DUMMY_DATA_DIR = pathlib.Path(__file__).parent / "qmnist" / "dummy_data"
DUMMY_DATA_SIZES = {"train": 20, "test": 10_010, "nist": 30}
DUMMY_DATA_DISTINCT_IMAGES = 8

# (HSF series, first writer id, last writer id) found in each real split.
_WRITERS = {
    "train": [(0, 0, 288), (4, 2100, 2349)],
    "test": [(0, 326, 499), (1, 500, 610), (4, 2350, 2599)],
    "nist": [(0, 0, 499), (1, 500, 999), (2, 1000, 1499), (3, 1500, 2099),
             (4, 2100, 2599), (6, 3100, 3599), (7, 3600, 4099)],
}
_NIST_SIZE = FULL_SIZES["nist"]
_ROWS_PER_WRITE = 16_384


def synthetic_images(
    count: int, rng: np.random.Generator, distinct: int | None = None
) -> np.ndarray:
    """(count, 28, 28) uint8 rings of random centre, radii and stroke width.

    With `distinct`, only that many different images are drawn and repeated,
    which keeps small fixtures small once compressed.
    """
    pool = count if distinct is None else min(distinct, count)
    y, x = np.mgrid[0:28, 0:28].astype(np.float32)
    centre = rng.uniform(11, 17, size=(pool, 2, 1, 1)).astype(np.float32)
    radii = rng.uniform(4, 10, size=(pool, 2, 1, 1)).astype(np.float32)
    width = rng.uniform(0.15, 0.4, size=(pool, 1, 1)).astype(np.float32)
    r = np.hypot((y - centre[:, 0]) / radii[:, 0], (x - centre[:, 1]) / radii[:, 1])
    ink = np.clip(1.0 - np.abs(r - 1.0) / width, 0.0, 1.0)
    images = np.round(ink * 255).astype(np.uint8)
    if distinct is None:
        return images
    return images[rng.integers(pool, size=count)]


def synthetic_labels(split: str, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 8) int32 extended labels with the value ranges of the real `split`."""
    labels = np.zeros((count, idx.EXTENDED_LABEL_COLUMNS), dtype=np.int32)
    ranges = np.array(_WRITERS[split])
    pick = ranges[rng.integers(len(ranges), size=count)]
    labels[:, 0] = rng.integers(10, size=count)
    labels[:, 1] = pick[:, 0]
    labels[:, 2] = rng.integers(pick[:, 1], pick[:, 2] + 1)
    labels[:, 3] = rng.integers(0, 131, size=count)
    labels[:, 4] = 30 + labels[:, 0]
    if split == "nist":
        labels[:, 5] = np.arange(count)
        # NIST's three duplicates, at their real rows where the file is long enough.
        for duplicate, original in ((95988, 95890), (158235, 158226), (223125, 223124)):
            row = duplicate * count // _NIST_SIZE
            if row > 0:
                labels[row, 6] = original * count // _NIST_SIZE
    else:
        labels[:, 5] = rng.choice(_NIST_SIZE, size=count, replace=False)
    return labels


def write_split(directory: pathlib.Path, split: str, count: int, *, seed: int = 0,
                distinct_images: int | None = None) -> list[str]:
    """Writes the image and label files of `split` ("train", "test" or "nist"); returns
    their names."""
    rng = np.random.default_rng([seed, list(FULL_SIZES).index(split)])
    images_name = downloads.FILES[f"{split}_images"]
    labels_name = downloads.FILES[f"{split}_labels"]
    idx.write_idx(directory / labels_name, synthetic_labels(split, count, rng))
    sizes = [min(_ROWS_PER_WRITE, count - start) for start in range(0, count, _ROWS_PER_WRITE)]
    chunks = (synthetic_images(n, rng, distinct_images) for n in sizes)
    idx.write_idx(directory / images_name, chunks, count=count)
    return [images_name, labels_name]


def checksums_tsv(directory: pathlib.Path, names: Iterable[str]) -> str:
    """TFDS checksums lines registering the files `names` of `directory` under the real URLs."""
    lines = []
    for name in sorted(names):
        data = (directory / name).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        lines.append(f"{downloads.BASE_URL}{name}\t{len(data)}\t{digest}\t{name}\n")
    return "".join(lines)


def write_all(directory: str | os.PathLike, sizes: dict[str, int], *, seed: int = 0,
              distinct_images: int | None = None) -> pathlib.Path:
    """Writes the files of every split in `sizes`, and their `checksums.tsv`; returns the latter."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = []
    for split, count in sizes.items():
        names += write_split(directory, split, count, seed=seed, distinct_images=distinct_images)
    checksums = directory / "checksums.tsv"
    checksums.write_text(checksums_tsv(directory, names))
    return checksums


def write_dummy_data(directory: str | os.PathLike) -> pathlib.Path:
    """Writes the builder's dummy data (see `DUMMY_DATA_SIZES`) into `directory`."""
    return write_all(directory, DUMMY_DATA_SIZES, distinct_images=DUMMY_DATA_DISTINCT_IMAGES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", nargs="?", help="where to write (omit with --dummy-data)")
    parser.add_argument("--dummy-data", action="store_true",
                        help="rewrite the builder's dummy_data/ folder")
    for split, size in FULL_SIZES.items():
        parser.add_argument(f"--{split}", type=int, default=size,
                            help=f"rows of the {split} files (default {size}; 0 skips them)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distinct-images", type=int, default=None,
                        help="repeat this many distinct images (small fixtures)")
    args = parser.parse_args(argv)
    if args.dummy_data:
        print(write_dummy_data(DUMMY_DATA_DIR))
        return
    if not args.out_dir:
        parser.error("give OUT_DIR or --dummy-data")
    sizes = {s: getattr(args, s) for s in FULL_SIZES if getattr(args, s) > 0}
    print(write_all(args.out_dir, sizes, seed=args.seed, distinct_images=args.distinct_images))


if __name__ == "__main__":
    main()
