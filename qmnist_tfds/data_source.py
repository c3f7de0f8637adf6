"""Random access to a prepared `qmnist` split at the speed Grain can take it.

TFDS's `ArrayRecordDataSource` reads and deserializes one record per
`source[i]`: an array_record read, a protobuf object, each feature's Python
decoder and a PIL decode. `InMemoryDataSource` gives the same examples from
memory: on its first access in a process it decodes the whole split
(`qmnist_tfds.split_decoder`) into an array of pixels and one of integers;
`source[i]` then copies one image and builds the dict.

It holds 784 bytes of pixels and 7 integers a record in every process that
reads from it (docs/design.md gives the sizes of each split). Each Grain worker
loads its own copy on its first read; a pickled source carries none of it.
`builder_kwargs={"data_source_in_memory": False}` gives TFDS's own source
instead, which holds nothing.

Records the decoder leaves to TFDS (none in a build of this package) are
served by TFDS's own path, record by record, with its results and its errors.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from typing import Any, SupportsIndex

import numpy as np
import tensorflow_datasets as tfds

from qmnist_tfds import split_decoder, tfds_internals

# TFDS's source, which `InMemoryDataSource` extends; where TFDS lacks it,
# `in_memory` leaves TFDS's sources as they are.
_TFDS_SOURCE: type = tfds_internals.array_record_source_class() or object

_OUT_OF_RANGE = "Record key should be in [0, num_records)"  # TFDS's words


def _served_from_memory(source) -> bool:
    """Whether `source` reads what this module serves: every feature decoded, as is."""
    return (source.decoders is None
            and source.deserialize_method == tfds.decode.DeserializeMethod.DESERIALIZE_AND_DECODE
            and split_decoder.decodes(source.dataset_info.features))


@dataclasses.dataclass(repr=False)
class InMemoryDataSource(_TFDS_SOURCE):
    """TFDS's `ArrayRecordDataSource` for this dataset, served from memory.

    Same length, examples, errors and `repr` as TFDS's source (tests check it
    record by record against TFDS's own). Construct it as TFDS's; only
    `decoders=None` with `DESERIALIZE_AND_DECODE` is served from memory, any
    other reading goes through TFDS's own.
    """

    def __post_init__(self):
        super().__post_init__()
        self._length = len(self.data_source)
        # The files as they are now: `as_data_source` then sets the shared info
        # back to the dataset's main format.
        self._files = split_decoder.file_ranges(
            self.dataset_info.splits[self.split].file_instructions)
        self._lock = threading.Lock()
        self._split: split_decoder.DecodedSplit | None = None
        self._fast = _served_from_memory(self)
        if self._fast:
            self._image_shape = self.dataset_info.features["image"].shape

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_split"] = None  # each process loads the split on its first read
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        text = super().__repr__()
        return text.replace(type(self).__name__, _TFDS_SOURCE.__name__, 1)

    def _load(self) -> split_decoder.DecodedSplit:
        with self._lock:
            if self._split is None:
                self._split = self._decode_split()
        return self._split

    def _decode_split(self) -> split_decoder.DecodedSplit:
        # TFDS's examples list their keys in an order that depends on how the
        # features were restored: take it from one of them.
        self._keys = list(super().__getitem__(0)) if self._length else []
        self._image_position = self._keys.index("image") if self._keys else 0
        blocks = split_decoder.record_blocks(self._files, tfds.core.FileFormat.ARRAY_RECORD)
        return split_decoder.decode(blocks, self._length, self.dataset_info.features,
                                    [key for key in self._keys if key != "image"], repr(self))

    def __getitem__(self, key: SupportsIndex) -> Any:
        if not self._fast:
            return super().__getitem__(key)
        # All in one method: Grain's reading threads take turns at the GIL
        # around every record, and each call made here would cost in each turn.
        index = key.__index__()
        if not 0 <= index < self._length:
            raise ValueError(_OUT_OF_RANGE)
        split = self._split or self._load()
        if not split.own[index]:
            return super().__getitem__(index)  # TFDS's path: its values, its errors
        image = np.empty(self._image_shape, dtype=np.uint8)
        size = image.size
        image.data.cast("B")[:] = split.pixels[index * size:(index + 1) * size]
        values = split.ints[index].tolist()
        values.insert(self._image_position, image)
        return dict(zip(self._keys, values, strict=True))

    def __getitems__(self, keys: Sequence[int]) -> Sequence[Any]:
        if not self._fast:
            return super().__getitems__(keys)
        indices = [key.__index__() for key in keys]
        if not all(0 <= index < self._length for index in indices):  # before any read
            raise ValueError(_OUT_OF_RANGE)
        return [self[index] for index in indices]


def in_memory(sources):
    """`sources` (a source, or a dict, list or tuple of them, as `as_data_source`
    returns) with each of TFDS's array_record sources that decodes every
    feature replaced by an `InMemoryDataSource` of the same split."""
    if isinstance(sources, dict):
        return {key: in_memory(value) for key, value in sources.items()}
    if isinstance(sources, list | tuple):
        return type(sources)(in_memory(value) for value in sources)
    if (type(sources) is not _TFDS_SOURCE or _TFDS_SOURCE is object
            or not tfds_internals.available("array_record.ArrayRecordDataSource")
            or not _served_from_memory(sources)):
        return sources
    return InMemoryDataSource(sources.dataset_info, split=sources.split,
                              decoders=sources.decoders,
                              deserialize_method=sources.deserialize_method)


def restore_alternative_file_formats(info) -> None:
    """Makes `info.available_file_formats()` include the formats that a prepared
    dataset's `dataset_info.json` lists as alternatives.

    TFDS 4.9 restores that list into the info's proto but not into the list
    `available_file_formats` reads, so `as_data_source` would not see them.
    """
    formats = info.alternative_file_formats
    for value in info.as_proto.alternative_file_formats:
        file_format = tfds.core.FileFormat.from_value(value)
        if file_format not in formats:
            formats.append(file_format)


def no_random_access_help(builder) -> str:
    """What to do with a prepared dataset that holds no array_record copy."""
    formats = ", ".join(sorted(f.value for f in builder.info.available_file_formats()))
    name = f"{builder.name}/{builder.builder_config.name}"
    return (
        f"{name} at {builder.data_path} holds no random-access copy ({formats} only): it "
        "was prepared by qmnist-tfds before 1.1.0 or with array_record_copy=False. Add "
        "the array_record copy that tfds.data_source reads in place with\n"
        f"  tfds convert_format --dataset_version_dir={builder.data_path} "
        "--out_file_format=array_record\n"
        f"or delete that folder and build again: tfds build --imports qmnist_tfds {name}"
    )
