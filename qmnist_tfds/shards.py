"""Writes a split to TFDS shards from columns of already-encoded feature values.

TFDS's generic writer sends every example through `FeaturesDict.encode_example`
and `ExampleSerializer`, one protobuf object each, and keeps every
serialized example in memory until the split ends. Here a chunk of examples
arrives as columns (PNG bytes, Python ints) and
`records.ScalarExampleSerializer` assembles the `tf.train.Example` records of
the whole chunk with numpy (no protobuf object per record), in a fixed order, so
that two builds of the same files write the same bytes. The records are
spooled to an unnamed temporary file beside the shards, then read back
sequentially (a memory map of it would count in the process's RSS). The spool
is cut into the shards TFDS would make (its `ShardConfig` rule and boundaries,
its file names) and written by the builder's own `ExampleWriter`, so a split
reads back exactly as one written by TFDS. Each split's shard digests are
written beside them; `python -m qmnist_tfds.verify FOLDER` checks them.

The TFDS objects it writes with come from the builder's private steps, through
`qmnist_tfds.tfds_internals`.
"""

from __future__ import annotations

import array
import dataclasses
import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from qmnist_tfds import examples, idx, records, tfds_internals, tfrecord

# Formats whose TFDS writer needs no per-record index file.
FILE_FORMATS = frozenset({tfds.core.FileFormat.TFRECORD, tfds.core.FileFormat.ARRAY_RECORD})

DIGESTS_SUFFIX = ".sha256"
_COPY_BLOCK = 1024  # records read at a time from a shard being copied


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with epath.Path(path).open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_digests(folder) -> list[str]:
    """Checks the shards of a prepared dataset folder against the digests written with them.

    Returns one line per shard, `<file>: OK` or `<file>: FAILED` (or `MISSING`),
    as `sha256sum -c` prints them; raises FileNotFoundError if the folder
    holds no digest file (a build through TFDS's own writer writes none).
    """
    folder = epath.Path(folder)
    lists = sorted(folder.glob(f"*{DIGESTS_SUFFIX}"))
    if not lists:
        raise FileNotFoundError(f"no *{DIGESTS_SUFFIX} digest file in {folder}")
    report = []
    for listing in lists:
        for line in listing.read_text().splitlines():
            expected, name = line.split("  ", 1)
            shard = folder / name
            if not shard.exists():
                report.append(f"{name}: MISSING")
            else:
                report.append(f"{name}: {'OK' if _sha256(shard) == expected else 'FAILED'}")
    return report


def write_split(
    split_name: str,
    record_chunks: Iterable[list[bytes]],
    *,
    filename_template,
    example_writer,
    shard_config,
    copies: Sequence[tuple[Any, Any]] = (),
) -> tfds.core.SplitInfo:
    """Writes serialized examples, in order, as the shards of one split.

    `record_chunks` yields lists of serialized examples. The shards are written
    once the last record is in, so an error while producing the records leaves
    no shard. Their SHA-256 digests go beside them, in `sha256sum` format, in
    `<dataset>-<split>.sha256` (see `check_digests`). `filename_template`,
    `example_writer` and `shard_config` are the TFDS objects its own writer
    path uses (`tfds.core.ShardedFileTemplate`, `tfds.core.ExampleWriter`, and
    the `ShardConfig` of `DownloadConfig.get_shard_config()`). Each
    `(filename_template, example_writer)` of `copies` writes the same records,
    in the same shards, in another file format; their digests go into the same file.
    """
    # The spool goes beside the shards (as TFDS's own spill files do), not to a
    # possibly RAM-backed /tmp; only for remote data dirs does it use the temp dir.
    spool_dir = os.fspath(filename_template.data_dir)
    if "://" in spool_dir:
        spool_dir = None
    with tempfile.TemporaryFile(prefix=f"{split_name}-records-", dir=spool_dir) as spool:
        sizes = array.array("q")  # 8 bytes a record, not a Python int each
        with tfds_internals.progress(
            desc=f"Generating {split_name} examples...",
            unit=" examples",
            leave=False,
            mininterval=1.0,
        ) as progress:
            for chunk in record_chunks:
                spool.write(b"".join(chunk))
                sizes.extend(map(len, chunk))
                progress.update(len(chunk))
        if not sizes:
            raise ValueError(f"split {split_name!r}: no examples to write")
        total_size = sum(sizes)
        num_shards = shard_config.get_number_shards(total_size, len(sizes))
        boundaries = tfds_internals.shard_boundaries(len(sizes), num_shards)
        digests = []
        for template, writer in [(filename_template, example_writer), *copies]:
            spool.seek(0)
            first = 0
            for index, last in enumerate(boundaries):
                path = template.sharded_filepath(shard_index=index, num_shards=num_shards)
                keyed = ((row, spool.read(sizes[row])) for row in range(first, last))
                if writer.write(path, keyed) is not None:
                    raise NotImplementedError(
                        f"{writer.file_format} needs record indexes; "
                        f"supported formats: {sorted(f.value for f in FILE_FORMATS)}"
                    )
                digests.append(f"{_sha256(path)}  {path.name}\n")
                first = last
    digest_name = f"{filename_template.dataset_name}-{split_name}{DIGESTS_SUFFIX}"
    (epath.Path(filename_template.data_dir) / digest_name).write_text("".join(digests))
    return tfds.core.SplitInfo(
        name=split_name,
        shard_lengths=np.diff(boundaries, prepend=0).tolist(),
        num_bytes=total_size,
        filename_template=filename_template,
    )


def copy_writer(filename_template, file_format: tfds.core.FileFormat) -> tuple[Any, Any]:
    """The `(filename_template, example_writer)` that writes the shards of
    `filename_template` again, under the same names, in `file_format`."""
    return (filename_template.replace(filetype_suffix=file_format.file_suffix),
            tfds.core.ExampleWriter(file_format))


def copy_shards(split_info: tfds.core.SplitInfo, file_format: tfds.core.FileFormat) -> None:
    """Writes the TFRecord shards of `split_info` again in `file_format`, record for
    record. For splits written by TFDS's own writer path, which writes one format."""
    template = split_info.filename_template
    copy, example_writer = copy_writer(template, file_format)
    count = len(split_info.shard_lengths)
    for index, length in enumerate(split_info.shard_lengths):
        path = template.sharded_filepath(shard_index=index, num_shards=count)
        blocks = tfrecord.read_blocks(path, 0, length, _COPY_BLOCK)
        example_writer.write(copy.sharded_filepath(shard_index=index, num_shards=count),
                             enumerate(record for block in blocks for record in block))


def fast_writer_takes(builder: tfds.core.DatasetBuilder,
                      download_config: tfds.download.DownloadConfig) -> bool:
    """Whether the fast writer builds this: TFDS's writer alone takes
    `max_examples_per_split` and formats other than TFRecord and array_record."""
    return (download_config.max_examples_per_split is None
            and builder.info.file_format in FILE_FORMATS)


def generate_splits(builder, dl_manager, download_config, *, tfds_step, example_writer,
                    filename_template) -> list[tfds.core.SplitInfo]:
    """Writes the splits of `builder.split_sources(dl_manager)`.

    With `example_writer` and `filename_template` (the builder's), by the fast
    writer; without them, by `tfds_step`, TFDS's own writer step. Either way a
    TFRecord build with `builder.array_record_copy` also writes every split as
    array_record files. A builder's `max_shards` caps the shards of a split
    that `download_config` leaves TFDS to count.
    """
    sources = builder.split_sources(dl_manager)
    if builder.max_shards and download_config.num_shards is None:
        with idx.open_images(next(iter(sources.values()))["images_path"]) as images:
            rows = images.header.count
        rows = min(rows, download_config.max_examples_per_split or rows)
        download_config = dataclasses.replace(download_config,
                                              num_shards=min(builder.max_shards, rows))
    array_record = tfds.core.FileFormat.ARRAY_RECORD
    copies = (builder.array_record_copy
              and builder.info.file_format == tfds.core.FileFormat.TFRECORD)
    if copies and array_record not in builder.info.alternative_file_formats:
        builder.info.add_alternative_file_format(array_record)
    if example_writer is None:
        split_infos = tfds_step(dl_manager, download_config)
        if copies:
            for split_info in split_infos:
                copy_shards(split_info, array_record)
        return split_infos
    serializer = records.ScalarExampleSerializer(builder.info.features)
    return [
        write_split(
            split,
            (serializer.serialize(columns) for _, columns in examples.iter_chunks(**source)),
            filename_template=filename_template(split_name=split),
            example_writer=example_writer,
            shard_config=download_config.get_shard_config(),
            copies=[copy_writer(filename_template(split_name=split), array_record)]
            if copies else (),
        )
        for split, source in sources.items()
    ]
