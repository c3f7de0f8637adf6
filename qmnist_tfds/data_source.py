"""Random access to a prepared `qmnist` split at the speed Grain can take it.

TFDS's `ArrayRecordDataSource` reads and deserializes one record per
`source[i]`: an array_record read, a protobuf object, each feature's Python
decoder and a PIL decode. `InMemoryDataSource` gives the same examples from
memory: on its first access in a process it reads the split's records in
blocks, parses them with numpy (`records.parse_scalar_examples`), inflates
their PNGs with zlib (`png.own_pixels_at`) on threads, a block each (zlib lets
go of the GIL while it inflates), and keeps the pixels and the integers in two
arrays; `source[i]` then copies one image and builds the dict.

It holds 784 bytes of pixels and 7 integers a record in every process that
reads from it (docs/design.md gives the sizes of each split). Each Grain worker
loads its own copy on its first read; a pickled source carries none of it.
`builder_kwargs={"data_source_in_memory": False}` gives TFDS's own source
instead, which holds nothing.

Records this module cannot parse or whose PNG is not in the layout
`qmnist_tfds.png` writes (none in a build of this package) are served by
TFDS's own path, record by record, with its results and its errors.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent import futures
from typing import Any, SupportsIndex

import numpy as np
import tensorflow_datasets as tfds
from array_record.python import array_record_module

from qmnist_tfds import png, records, tfds_internals

# TFDS's source, which `InMemoryDataSource` extends; where TFDS lacks it,
# `in_memory` leaves TFDS's sources as they are.
_TFDS_SOURCE: type = tfds_internals.array_record_source_class() or object

# Records are read, parsed and decoded this many at a time, into arrays made
# for the whole split, by this many threads: the memory a load passes through
# stays small (at most _THREADS + 1 blocks of records at once). docs/design.md
# says how these were chosen.
_BLOCK = 4096
_THREADS = 2
_INT32 = np.iinfo(np.int32)
_OUT_OF_RANGE = "Record key should be in [0, num_records)"  # TFDS's words


@dataclasses.dataclass
class _Split:
    """A split's records, decoded."""

    images: np.ndarray  # (N, H, W, 1) uint8
    ints: np.ndarray  # (N, len(int_keys)) int64, in the order of `int_keys`
    own: memoryview  # 1 for the records served here (its items index as Python ints)
    # The images' bytes, flat. A memoryview copies an image holding the GIL;
    # numpy lets go of it to copy more than 500 elements, and under Grain's
    # reading threads each letting go hands it to another thread, a wait that
    # costs more than the copy.
    pixels: memoryview = dataclasses.field(init=False)

    def __post_init__(self):
        self.pixels = memoryview(self.images.reshape(-1))


def _int_kinds(features) -> dict[str, np.dtype] | None:
    """Name -> dtype of every feature but `image`, if all are integer scalars."""
    kinds = {}
    for name, info in features.get_tensor_info().items():
        if name == "image":
            continue
        if info.shape != () or not np.issubdtype(info.np_dtype, np.integer):
            return None
        kinds[name] = np.dtype(info.np_dtype)
    return kinds


def _serves_fast(features) -> bool:
    """Whether `features` are those this module decodes: a (H, W, 1) uint8 PNG
    `image` and integer scalars, each stored as one value."""
    if "image" not in features.get_tensor_info() or _int_kinds(features) is None:
        return False
    image = features["image"]
    shape = tuple(getattr(image, "shape", ()))
    return (getattr(image, "encoding_format", None) in (None, "png")
            and len(shape) == 3 and shape[2] == 1 and None not in shape
            and np.dtype(image.np_dtype) == np.uint8)


def _served_from_memory(source) -> bool:
    """Whether `source` reads what this module serves: every feature decoded, as is."""
    return (source.decoders is None
            and source.deserialize_method == tfds.decode.DeserializeMethod.DESERIALIZE_AND_DECODE
            and _serves_fast(source.dataset_info.features))


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
        self._files = [(os.fspath(i.filename), i.skip, i.skip + i.take)
                       for i in self.dataset_info.splits[self.split].file_instructions]
        self._lock = threading.Lock()
        self._split: _Split | None = None
        features = self.dataset_info.features
        self._fast = _served_from_memory(self)
        if self._fast:
            self._int_kinds = _int_kinds(features)
            self._image_shape = features["image"].shape

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

    def _load(self) -> _Split:
        with self._lock:
            if self._split is None:
                self._split = self._decode_split()
        return self._split

    def _decode_split(self) -> _Split:
        # TFDS's examples list their keys in an order that depends on how the
        # features were restored: take it from one of them.
        self._keys = list(super().__getitem__(0)) if self._length else []
        self._int_keys = [key for key in self._keys if key != "image"]
        self._image_position = self._keys.index("image") if self._keys else 0
        kinds = {name: "int64_list" for name in self._int_kinds}
        kinds["image"] = "bytes_list"
        count = self._length
        images = np.zeros((count, *self._image_shape), dtype=np.uint8)
        ints = np.zeros((count, len(self._int_keys)), dtype=np.int64)
        own = np.zeros(count, dtype=bool)
        row, pending = 0, []
        with futures.ThreadPoolExecutor(_THREADS) as pool:
            for raw in self._record_blocks():
                rows = slice(row, row + len(raw))
                pending.append(pool.submit(self._decode_block, raw, kinds, images[rows],
                                           ints[rows], own[rows]))
                row = rows.stop
                if len(pending) >= _THREADS:
                    pending.pop(0).result()
            for done in pending:
                done.result()
        if row != count:
            raise ValueError(f"{self!r}: read {row} records, expected {count}")
        return _Split(images, ints, memoryview(own.view(np.uint8)))

    def _record_blocks(self) -> Iterator[list[bytes]]:
        """The split's serialized records in order, up to `_BLOCK` at a time, read
        file by file in ranges (array_record reads ahead within a file)."""
        for filename, start, stop in self._files:
            reader = array_record_module.ArrayRecordReader(filename)
            try:
                for first in range(start, stop, _BLOCK):
                    yield reader.read(first, min(first + _BLOCK, stop))
            finally:
                reader.close()

    def _decode_block(self, raw: list[bytes], kinds: dict[str, str], images: np.ndarray,
                      ints: np.ndarray, own: np.ndarray) -> None:
        """Decodes consecutive records into views of the split's arrays."""
        parsed = records.parse_scalar_examples(raw, kinds)
        ints[:] = np.stack([parsed.ints[name] for name in self._int_keys], axis=1)
        served = parsed.parsed
        for column, name in enumerate(self._int_keys):
            if self._int_kinds[name] == np.int32:  # TFDS casts, and fails out of range
                served &= (ints[:, column] >= _INT32.min) & (ints[:, column] <= _INT32.max)
        starts, ends = parsed.spans["image"]
        pixels, laid_out = png.own_pixels_at(parsed.blob, starts, ends - starts,
                                             *self._image_shape[:2])
        images[..., 0] = pixels
        own[:] = served & laid_out

    def arrays(self) -> dict[str, np.ndarray] | None:
        """Every feature of the split as one array each (keys in the features' order,
        their numpy dtypes), as `tfds.as_numpy(tfds.load(..., batch_size=-1))` gives
        them; None where this source does not serve the split from memory."""
        if not self._fast:
            return None
        features = self.dataset_info.features
        if not self._length:
            return {key: np.zeros((0, *info.shape), dtype=info.np_dtype)
                    for key, info in features.get_tensor_info().items()}
        split = self._load()
        columns = {"image": split.images}
        for column, key in enumerate(self._int_keys):
            columns[key] = split.ints[:, column].astype(self._int_kinds[key])
        for index in np.flatnonzero(np.frombuffer(split.own, dtype=np.uint8) == 0).tolist():
            for key, value in super().__getitem__(index).items():  # TFDS's path
                columns[key][index] = value
        return {key: columns[key] for key in features}

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
