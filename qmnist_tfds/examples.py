"""Turns a pair of QMNIST image and extended-label files into TFDS examples.

Plain functions, testable without TFDS. Images are streamed in chunks and
PNG-encoded here (`tfds.features.Image` stores encoded bytes untouched), so
a build holds one chunk of images at a time, whatever the split's size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from qmnist_tfds import idx, pipeline, png

NUM_CLASSES = 10
CLASS_COLUMN = 0

# Feature name -> (column of the idx2-int extended labels, documentation).
# Column 7 is unused upstream (always 0) and is not exposed.
METADATA_COLUMNS: dict[str, tuple[int, str]] = {
    "hsf_series": (
        1,
        "NIST Handprinted Sample Form series of the digit's writer: series 0-3 "
        "were written by Census Bureau employees, series 4 by high-school "
        "students (the harder population).",
    ),
    "writer_id": (
        2,
        "NIST writer id. A writer belongs to one HSF series; QMNIST's train "
        "and test sets share no writer.",
    ),
    "writer_digit_index": (
        3,
        "Position of this digit among all the digits of its writer in NIST.",
    ),
    "nist_class_code": (
        4,
        "NIST class code: the digit's ASCII code written in hexadecimal and "
        "stored as a decimal number, so 30 means '0' (0x30) and 39 means '9'.",
    ),
    "nist_index": (
        5,
        "Global index of the digit in NIST Special Database 19, which is its "
        "row in the `nist` config.",
    ),
    "duplicate_of_nist_index": (
        6,
        "For the three digits NIST holds twice, the global NIST index of the "
        "digit this one duplicates; 0 for every other digit (always 0 in the "
        "train and test sets, from which duplicates were removed).",
    ),
}

ROWS_PER_CHUNK = 8192
PNG_THREADS = 2
_READ_AHEAD = 2  # chunks of images read ahead of the encoders
_ENCODE_AHEAD = 2  # chunks queued on the encoders ahead of the caller

PathLike = str | os.PathLike


def check_extended_labels(labels: np.ndarray, path: PathLike) -> None:
    """Raises `IdxFormatError` for label values the dataset features cannot hold."""
    classes = labels[:, CLASS_COLUMN]
    bad = np.flatnonzero((classes < 0) | (classes >= NUM_CLASSES))
    if bad.size:
        row = int(bad[0])
        raise idx.IdxFormatError(
            f"{os.fspath(path)}: row {row} has class {int(classes[row])}, expected "
            f"0-{NUM_CLASSES - 1} ({bad.size} such rows)"
        )
    for name, (column, _) in METADATA_COLUMNS.items():
        negative = np.flatnonzero(labels[:, column] < 0)
        if negative.size:
            row = int(negative[0])
            raise idx.IdxFormatError(
                f"{os.fspath(path)}: row {row} has {name} (column {column}) "
                f"{int(labels[row, column])}, expected a non-negative value "
                f"({negative.size} such rows)"
            )


def read_checked_labels(path: PathLike) -> np.ndarray:
    """Reads an extended-label file and checks its values (see `check_extended_labels`)."""
    labels = idx.read_extended_labels(path)
    check_extended_labels(labels, path)
    return labels


def _encoded_chunks(images: idx.IdxReader, rows: int, rows_per_chunk: int) -> Iterator[list[bytes]]:
    """Yields the next `rows` images PNG-encoded, in chunks.

    Three stages overlap: one thread reads (decompresses) chunks of images,
    `PNG_THREADS` threads encode them, and the caller serializes and writes
    the chunk before (decompression and zlib release the GIL). Reading runs up
    to `_READ_AHEAD` chunks ahead and encoding `_ENCODE_AHEAD`, so the encoding
    threads always have work queued and memory stays a few chunks.
    """
    sizes = [min(rows_per_chunk, rows - done) for done in range(0, rows, rows_per_chunk)]
    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(PNG_THREADS) as encoders:
        reads = pipeline.ahead((reader.submit(images.read_rows, size) for size in sizes),
                               _READ_AHEAD)
        encodes = pipeline.ahead((png.submit_gray_pngs(read.result(), encoders)
                                  for read in reads), _ENCODE_AHEAD)
        try:
            for parts in encodes:
                yield [encoded for part in parts for encoded in part.result()]
        finally:
            encodes.close()
            reads.close()


def iter_chunks(
    images_path: PathLike,
    labels_path: PathLike,
    *,
    start: int = 0,
    stop: int | None = None,
    rows_per_chunk: int = ROWS_PER_CHUNK,
    png_cache: dict[str, list[bytes]] | None = None,
) -> Iterator[tuple[int, dict[str, list]]]:
    """Yields `(first_row, columns)` for rows `start:stop` of an image/label file pair.

    `columns` maps each feature name to one chunk of values, already in the
    form the features store: PNG bytes for `image`, Python ints for the
    others. Rows come in file order; `first_row` is the row index in the
    files of the chunk's first row. The two files must hold the same number
    of rows; when the range reaches the end of the files, the image file must
    end exactly there.

    With `png_cache`, a pass over a whole image file stores its encoded images
    there, and later calls for the same file slice them instead of decoding
    and encoding again (the `test` file serves three splits).
    """
    labels = read_checked_labels(labels_path)
    key = os.fspath(images_path)
    if png_cache is not None and key in png_cache:
        encoded = png_cache[key]
        stop = len(encoded) if stop is None else min(stop, len(encoded))
        for row in range(start, stop, rows_per_chunk):
            end = min(row + rows_per_chunk, stop)
            yield row, _columns(encoded[row:end], labels[row:end])
        return
    with idx.open_images(images_path) as images:
        count = images.header.count
        if count != len(labels):
            raise idx.IdxFormatError(
                f"{os.fspath(images_path)}: {count} images, but "
                f"{os.fspath(labels_path)} has {len(labels)} label rows"
            )
        stop = count if stop is None else min(stop, count)
        images.skip_rows(start)
        whole_file = png_cache is not None and start == 0 and stop == count
        kept: list[bytes] = []
        row = start
        for encoded in _encoded_chunks(images, stop - start, rows_per_chunk):
            yield row, _columns(encoded, labels[row : row + len(encoded)])
            if whole_file:
                kept += encoded
            row += len(encoded)
        if stop == count:
            images.check_end()
        if whole_file:
            png_cache[key] = kept


def iter_examples(
    images_path: PathLike, labels_path: PathLike, **kwargs: Any
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yields `(row_index, example)`, one example dict per row of `iter_chunks`.

    Takes the same arguments as `iter_chunks`.
    """
    for first_row, columns in iter_chunks(images_path, labels_path, **kwargs):
        names = list(columns)
        for offset, values in enumerate(zip(*columns.values(), strict=True)):
            yield first_row + offset, dict(zip(names, values, strict=True))


def _columns(encoded: list[bytes], labels: np.ndarray) -> dict[str, list]:
    columns: dict[str, list] = {"image": encoded, "label": labels[:, CLASS_COLUMN].tolist()}
    for name, (column, _) in METADATA_COLUMNS.items():
        columns[name] = labels[:, column].tolist()
    return columns


def split_sources(config: str, paths: Mapping[str, os.PathLike | str],
                  test10k_size: int) -> dict[str, dict]:
    """Each split's `iter_chunks` arguments, from the downloaded files' paths by key
    (`downloads.FILES`). The three test splits share one cache of encoded images."""
    def files(name: str, **options) -> dict:
        return dict(images_path=paths[f"{name}_images"], labels_path=paths[f"{name}_labels"],
                    **options)

    if config == "nist":
        return {"nist": files("nist")}
    test = files("test", png_cache={})
    return {
        "train": files("train"),
        "test": test,
        "test10k": dict(test, stop=test10k_size),
        "test50k": dict(test, start=test10k_size),
    }
