"""The one module that uses TFDS's private names: `INTERNALS` lists each, and why.

A private name is any `tensorflow_datasets.core.<module>` name and any
underscored attribute of TFDS. Every one the package uses is resolved here,
by its dotted path, and nowhere else; `missing()` names those the installed
TFDS lacks or has changed (a callable that no longer takes, by name, every
parameter passed here). Each has a fallback that uses no name of this list:
TFDS's own behaviour, or a clear error. `tests/test_tfds_internals.py` checks
the list in every CI stack and forces each fallback.

`Builder` is the builder's base class: its overrides of TFDS's private
builder steps, each handing the work to a plain module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import tensorflow_datasets as tfds

from qmnist_tfds import downloads

# The TFDS releases the CI stacks run this list against.
CHECKED_ON = "TFDS 4.9.7, 4.9.9, 4.9.10 and tfds-nightly"


@dataclasses.dataclass(frozen=True)
class Internal:
    """A private TFDS name, the parameters passed to it by name, why, and its fallback."""

    name: str
    parameters: tuple[str, ...] | None  # None: not a callable (a value, a descriptor)
    why: str
    fallback: str


_BUILDER = "tensorflow_datasets.core.dataset_builder"
_DOWNLOADER = "tensorflow_datasets.core.download.downloader"
_SHARD_UTILS = "tensorflow_datasets.core.utils.shard_utils"
FAST_WRITER = "the fast writer (qmnist_tfds.shards)"

INTERNALS: tuple[Internal, ...] = (
    Internal(f"{_BUILDER}.GeneratorBasedBuilder._generate_splits",
             ("dl_manager", "download_config"),
             "the step that writes the splits: replaced by the fast writer, and by "
             "the array_record copy after TFDS's writer",
             "TFDS's own step writes TFRecord only; `as_data_source` then names "
             "`tfds convert_format`, which adds the array_record copy"),
    Internal(f"{_BUILDER}.GeneratorBasedBuilder._example_writer", (),
             f"the file format's record writer that TFDS's step uses, for {FAST_WRITER}",
             "TFDS's own writer step"),
    Internal(f"{_BUILDER}.GeneratorBasedBuilder._get_filename_template", ("split_name",),
             f"the shard names TFDS's step writes, for {FAST_WRITER}",
             "TFDS's own writer step"),
    Internal(f"{_SHARD_UTILS}.get_shard_boundaries", ("num_examples", "number_of_shards"),
             f"where TFDS cuts a split into shards, for {FAST_WRITER} and the info "
             "shown before a build",
             "TFDS's own writer step; the info before a build cuts by the same rule"),
    Internal(f"{_SHARD_UTILS}.ShardConfig.get_number_shards", ("total_size", "num_examples"),
             f"how many shards TFDS makes of a split, for {FAST_WRITER}",
             "TFDS's own writer step"),
    Internal("tensorflow_datasets.core.utils.tqdm", (),
             "TFDS's progress bar, which `tfds.disable_progress_bar()` silences",
             "no progress bar"),
    Internal(f"{_BUILDER}.GeneratorBasedBuilder._as_dataset",
             ("split", "decoders", "read_config", "shuffle_files"),
             "the reader of an ordered dataset, which refuses shuffled files: "
             "they are allowed, interleaved across all of a split's files",
             "TFDS's reader: shuffle_files=True is refused"),
    Internal(f"{_BUILDER}.DatasetBuilder._create_builder_config",
             ("builder_config", "version"),
             "an unknown config name gets a message listing the configs",
             "TFDS's message"),
    Internal(f"{_BUILDER}.DatasetBuilder._checksums_path", None,
             "the checksums file is the top-level checksums/qmnist.tsv, not one "
             "beside the builder module; `tfds build --register_checksums` writes it",
             "downloads are still verified against it (`url_infos`); registering "
             "writes beside the builder module"),
    Internal("tensorflow_datasets.core.utils.classproperty", (),
             "TFDS reads `_checksums_path` on the class",
             "a property of the class's own making"),
    Internal("tensorflow_datasets.core.download.checksums.load_url_infos", ("path",),
             "reads the checksums file into the records TFDS verifies downloads with",
             "a download raises an error that names the TFDS version"),
    Internal("tensorflow_datasets.core.utils.gcs_utils._is_gcs_disabled", None,
             "TFDS before 4.9.10 looks in its own bucket (network, TensorFlow) for "
             "info and prepared copies of any dataset; it holds none of this one",
             "TFDS's own look-ups (4.9.10 and later skip them)"),
    Internal(f"{_DOWNLOADER}._open_url", ("url",),
             "downloads of this package's files give up at once where no "
             "connection can be made (qmnist_tfds.fail_fast)",
             "TFDS's retries (minutes offline), with a warning"),
    Internal(f"{_DOWNLOADER}._Downloader.download", ("url", "destination_path"),
             "counts the package's running downloads, so a failure can wait for them",
             "TFDS's retries (minutes offline), with a warning"),
    Internal(f"{_DOWNLOADER}._Downloader._sync_download", ("url", "destination_path"),
             "a failed download removes its temporary folder",
             "TFDS's retries (minutes offline), with a warning"),
    Internal(f"{_DOWNLOADER}.MAX_RETRIES", None,
             "fail_fast retries what it retries as often as TFDS",
             "TFDS 4.9's 10"),
    Internal("tensorflow_datasets.core.data_sources.array_record.ArrayRecordDataSource",
             ("dataset_info", "split", "decoders", "deserialize_method"),
             "TFDS's random-access source (experimental), which the in-memory source "
             "extends, keeping its errors, repr and per-record path",
             "`as_data_source` gives TFDS's own sources; `load_arrays` reads the "
             "TFRecord files"),
    Internal("tensorflow_datasets.core.constants.DATA_DIR", None,
             "the data_dir TFDS uses when none is given (read when TFDS is imported), "
             "for `mnist_metadata`",
             "$TFDS_DATA_DIR, else ~/tensorflow_datasets, as TFDS 4.9 has it"),
)


def _resolve(dotted: str, static: bool = False) -> Any:
    """The object at a dotted path: the longest importable module, then attributes
    (with `static`, a class's attribute as stored, a descriptor not run)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            target = (inspect.getattr_static(target, name) if static else
                      getattr(target, name))
        return target
    raise ImportError(dotted)


@functools.cache
def missing() -> tuple[str, ...]:
    """The names of `INTERNALS` that the installed TFDS lacks or has changed."""
    found = []
    for internal in INTERNALS:
        try:
            target = _resolve(internal.name, static=internal.parameters is None)
            if internal.parameters is not None:
                accepted = inspect.signature(target).parameters
                if not set(internal.parameters) <= set(accepted):
                    found.append(internal.name)
        except (ImportError, AttributeError, TypeError, ValueError):
            found.append(internal.name)
    return tuple(found)


def available(*names: str) -> bool:
    """Whether the installed TFDS has every internal whose name ends with one of `names`."""
    wanted = [i.name for i in INTERNALS if i.name.endswith(names)]
    assert len(wanted) == len(names), f"not in INTERNALS: {names}"
    return not set(wanted) & set(missing())


def get(suffix: str) -> Any:
    """The internal whose name ends with `suffix`; None where it is missing."""
    (internal,) = [i for i in INTERNALS if i.name.endswith(suffix)]
    if internal.name in missing():
        return None
    return _resolve(internal.name, static=internal.parameters is None)


# --- downloads, data dirs, progress ---------------------------------------------------

def load_url_infos(path) -> dict:
    """The records of a checksums file, as TFDS verifies downloads with them."""
    load = get("checksums.load_url_infos")
    if load is None:
        raise RuntimeError(f"TFDS {tfds.__version__} reads checksums files differently "
                           f"from the versions qmnist_tfds supports ({CHECKED_ON}): it "
                           f"cannot verify the downloads against {path}")
    return load(path)


def max_retries() -> int:
    retries = get("downloader.MAX_RETRIES")
    return retries if isinstance(retries, int) else 10


def downloader_hooks() -> tuple[Any, Any, Any, Callable[..., None]] | None:
    """TFDS's `_open_url`, `_Downloader.download` and `_Downloader._sync_download`,
    and a function that replaces them with three others; None where any is missing."""
    if not available("_open_url", "_Downloader.download", "_Downloader._sync_download"):
        return None
    module = importlib.import_module(_DOWNLOADER)

    def install(open_url, download, sync_download) -> None:
        module._open_url = open_url
        module._Downloader.download = download
        module._Downloader._sync_download = sync_download

    return (module._open_url, module._Downloader.download,
            module._Downloader._sync_download, install)


def default_data_dir() -> str:
    """The data_dir that TFDS uses where none is given."""
    data_dir = get("constants.DATA_DIR")
    if isinstance(data_dir, str):
        return data_dir
    return os.environ.get("TFDS_DATA_DIR",
                          os.path.join(os.path.expanduser("~"), "tensorflow_datasets"))


def progress(**kwargs):
    """TFDS's progress bar (`tfds.disable_progress_bar()` silences it), or none."""
    tqdm = get("utils.tqdm")
    return tqdm(**kwargs) if tqdm is not None else _NoProgress()


class _NoProgress(contextlib.AbstractContextManager):
    def __exit__(self, *exc) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None


def shard_boundaries(count: int, shards: int) -> list[int]:
    """Where TFDS cuts `count` examples into `shards` shards (each shard's end)."""
    boundaries = get("get_shard_boundaries")
    if boundaries is not None:
        return list(boundaries(count, shards))
    return [round(count * index / shards) for index in range(1, shards + 1)]


def array_record_source_class() -> type | None:
    """TFDS's `ArrayRecordDataSource`; None where it is missing or changed."""
    return get("array_record.ArrayRecordDataSource")


@contextlib.contextmanager
def no_bucket_lookups() -> Iterator[None]:
    """Skips TFDS's look-ups in its bucket while the block runs (TFDS before 4.9.10)."""
    name = "tensorflow_datasets.core.utils.gcs_utils._is_gcs_disabled"
    previous = get("gcs_utils._is_gcs_disabled")
    if not isinstance(previous, bool):
        yield
        return
    module = importlib.import_module(name.rsplit(".", 1)[0])
    module._is_gcs_disabled = True
    try:
        yield
    finally:
        module._is_gcs_disabled = previous


@contextlib.contextmanager
def _dropping_logs(fragment: str) -> Iterator[None]:
    """Drops the records of TFDS's (absl) logger whose message contains `fragment`."""
    logger = logging.getLogger("absl")
    drop = logging.Filter()
    drop.filter = lambda record: fragment not in record.getMessage()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


# --- the builder's base class -------------------------------------------------------

def fast_writer_available() -> bool:
    """Whether the installed TFDS has every internal the fast writer uses."""
    return available("_example_writer", "_get_filename_template", "get_shard_boundaries",
                     "get_number_shards")


def _class_property(function):
    """TFDS's `classproperty`, or one of the same behaviour."""
    classproperty = get("utils.classproperty")
    if classproperty is not None:
        return classproperty(classmethod(function))

    class _Descriptor:
        def __get__(self, instance, owner):
            return function(owner)

    return _Descriptor()


def registered_url_infos(base_url: str = downloads.BASE_URL) -> dict | None:
    """The records of `downloads.checksums_file()`, plus the same records under
    `base_url` where it is a mirror's; None where there is no such file."""
    path = downloads.checksums_file()
    if not path.exists():
        return None
    records = load_url_infos(path)
    if base_url != downloads.BASE_URL:
        records = downloads.mirrored_url_infos(records, base_url)
    return records


class _UrlInfos:
    """`url_infos`: `registered_url_infos` of the builder's URLs, read on each access."""

    def __get__(self, builder, cls):
        return registered_url_infos(getattr(builder, "base_url", downloads.BASE_URL))


class Builder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A `GeneratorBasedBuilder` whose private steps hand their work to plain modules.

    A subclass provides `split_sources(dl_manager)`: each split's
    `examples.iter_chunks` arguments, for the fast writer.
    """

    base_url = downloads.BASE_URL
    url_infos = _UrlInfos()
    _checksums_path = _class_property(lambda cls: downloads.checksums_file())

    def _create_builder_config(self, builder_config, version):
        if (available("_create_builder_config") and isinstance(builder_config, str)
                and ":" not in builder_config and builder_config not in self.builder_configs):
            # TFDS's own message promises close matches and often lists none.
            raise ValueError(f"BuilderConfig {builder_config} not found. The configs of "
                             f"{self.name} are: {', '.join(self.builder_configs)}.")
        return super()._create_builder_config(builder_config, version)

    def _as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        # An ordered dataset: TFDS reads its files in order and refuses shuffled
        # ones. Shuffled files are read interleaved, by default all of a split's
        # files at once (NIST order is by HSF series).
        read_config = read_config or tfds.ReadConfig()
        cycle = read_config.interleave_cycle_length
        unset = tfds.ReadConfig().interleave_cycle_length
        ordered = not shuffle_files and (cycle is unset or cycle == 1)
        if ordered or not available("_as_dataset"):
            return super()._as_dataset(split, decoders=decoders, read_config=read_config,
                                       shuffle_files=shuffle_files)
        if cycle is unset:
            widest = max(len(info.filenames) for info in self.info.splits.values())
            cycle = min(widest, MAX_SHUFFLED_CYCLE)
        read_config = dataclasses.replace(read_config, interleave_cycle_length=cycle,
                                          enable_ordering_guard=False)
        # Without the guard TFDS logs that order is not kept: what was asked for.
        with _dropping_logs("is an ordered dataset"):
            return super()._as_dataset(split, decoders=decoders, read_config=read_config,
                                       shuffle_files=shuffle_files)

    def _generate_splits(self, *args, **kwargs):
        if not available("GeneratorBasedBuilder._generate_splits"):
            return super()._generate_splits(*args, **kwargs)  # TFRecord only, no copy
        return self._write_splits(*args, **kwargs)

    def _write_splits(self, dl_manager, download_config):
        from qmnist_tfds import shards

        if not fast_writer_available():
            logging.warning("TFDS %s differs from what the fast writer uses (%s): writing "
                            "with TFDS's own writer, which is slower.",
                            tfds.__version__, ", ".join(missing()))
        fast = fast_writer_available() and shards.fast_writer_takes(self, download_config)
        return shards.generate_splits(
            self, dl_manager, download_config, tfds_step=super()._generate_splits,
            example_writer=self._example_writer() if fast else None,
            filename_template=self._get_filename_template if fast else None)


# More files than this are not all opened at once by a shuffled read.
MAX_SHUFFLED_CYCLE = 256
