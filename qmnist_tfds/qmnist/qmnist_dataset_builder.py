"""QMNIST: the MNIST digits rebuilt from NIST SD19, traced to their writers."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core.download import checksums
from tensorflow_datasets.core.utils import gcs_utils
from tensorflow_datasets.core.utils.read_config import MISSING

from qmnist_tfds import (
    build_lock,
    data_source,
    downloads,
    examples,
    fail_fast,
    idx,
    lazy_tf,
    shards,
)

TEST10K_SIZE = 10_000  # The first 10,000 test rows are MNIST's test set.
# Examples per split: the rows of the upstream label files (60,000 train,
# 60,000 test, 402,953 nist), which tests/test_prebuilt_info.py counts.
# `info` shows them before the first build; a build's info replaces them.
SPLIT_EXAMPLES = {
    "qmnist": {"train": 60_000, "test": 60_000, "test10k": TEST10K_SIZE,
               "test50k": 60_000 - TEST10K_SIZE},
    "nist": {"nist": 402_953},
}
# NIST order groups the HSF series in seven blocks of 52k-64k rows: with this
# many shards, shuffled files read interleaved give every series its share.
NIST_SHARDS = 128
# More files than this are not all opened at once by a shuffled read.
MAX_SHUFFLED_CYCLE = 256

_PACKAGE_DIR = epath.Path(__file__).parent.parent
CHECKSUMS_NAME = "qmnist.tsv"


def checksums_file() -> epath.Path:
    """The checksums file: `checksums/` of a source checkout, else the installed copy.

    A wheel carries the top-level `checksums/` folder as `qmnist_tfds/checksums/`;
    an editable install or a checkout has no such folder inside the package
    and uses the checkout's own, which `tfds build --register_checksums` updates.
    """
    installed = _PACKAGE_DIR / "checksums" / CHECKSUMS_NAME
    if installed.exists():
        return installed
    return _PACKAGE_DIR.parent / "checksums" / CHECKSUMS_NAME


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


@contextlib.contextmanager
def _no_tfds_bucket_lookup() -> Iterator[None]:
    """Skips TFDS's look-ups in its own bucket, which holds nothing of this dataset:
    pre-computed info while constructing (`_set_prebuilt_info` gives it instead),
    a prepared copy before building.

    TFDS 4.9.10 skips them by default; earlier releases try the network and
    import TensorFlow to do so, which neither `import qmnist_tfds` nor a build
    into array_record files may cause.
    """
    previous = getattr(gcs_utils, "_is_gcs_disabled", None)
    gcs_utils._is_gcs_disabled = True
    try:
        yield
    finally:
        if previous is not None:
            gcs_utils._is_gcs_disabled = previous


class _ChecksumRecords:
    """The builder's `url_infos`: what the checksums file registers, by URL.

    Read on each access rather than memoized (so tests can point
    `checksums_file` elsewhere). A builder with a mirror also gets the same
    records under the mirror's URLs, so its downloads are verified exactly as
    upstream's.
    """

    def __get__(self, builder: Builder | None, cls: type[Builder]):
        path = cls._checksums_path
        if not path.exists():
            return None
        records = checksums.load_url_infos(path)
        if builder is not None and builder._base_url != downloads.BASE_URL:
            records = downloads.mirrored_url_infos(records, builder._base_url)
        return records


class Builder(tfds.core.GeneratorBasedBuilder):
    """QMNIST and the NIST digits it was drawn from, with writer metadata."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(
            name="qmnist",
            description="QMNIST's 60,000 training and 60,000 test digits; "
            "test10k and test50k are the first 10,000 and the last 50,000 test digits.",
        ),
        tfds.core.BuilderConfig(
            name="nist",
            description="All 402,953 digits of NIST Special Database 19, "
            "preprocessed like QMNIST, in NIST order.",
        ),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "qmnist"

    def __init__(self, *, mirror_url: str | None = None, array_record_copy: bool = True,
                 data_source_in_memory: bool = True,
                 file_format: str | tfds.core.FileFormat | None = None, **kwargs):
        """`mirror_url` (or $QMNIST_TFDS_MIRROR): a folder URL serving the upstream
        files under their names, verified against the same checksums.

        `array_record_copy`: a build into TFRecord files (the default format)
        also writes every split as array_record files, recorded as an
        alternative file format, so that `tfds.data_source` reads the same build.
        `data_source_in_memory`: `as_data_source` serves examples from memory
        (`qmnist_tfds.data_source`); False gives TFDS's own sources.
        """
        self._base_url = downloads.mirror_base_url(mirror_url) or downloads.BASE_URL
        self._array_record_copy = array_record_copy
        self._data_source_in_memory = data_source_in_memory
        with _no_tfds_bucket_lookup():
            super().__init__(**kwargs)  # the prepared dataset's format, else TFRecord
        if not self.info.initialized:  # nothing prepared in data_dir to restore info from
            self._set_prebuilt_info()
        self._restore_alternative_file_formats()
        self._ask_file_format(file_format)

    def _ask_file_format(self, file_format: str | tfds.core.FileFormat | None) -> None:
        """Sets the format to build in, or to read a prepared dataset in.

        A prepared dataset that holds the format asked for among its
        alternatives keeps its main format: `tfds.data_source`, which asks
        for array_record where no data_dir is given, reads that alternative
        from the same build, and `as_dataset` the main format. Anything else
        is TFDS's own behaviour (a prepared dataset in another format only
        is refused).
        """
        if file_format is None:
            return
        file_format = tfds.core.FileFormat.from_value(file_format)
        prepared = self.info.initialized
        if prepared and file_format in self.info.available_file_formats():
            return
        self.info.set_file_format(file_format, override=not prepared)

    def _restore_alternative_file_formats(self) -> None:
        """Makes `info.available_file_formats()` include the formats that the
        prepared dataset's `dataset_info.json` lists as alternatives.

        TFDS 4.9 restores that list into the info's proto but not into the
        list `available_file_formats` reads (its `ReadOnlyBuilder` reads it
        from the proto), so `as_data_source` would not see them.
        """
        formats = self.info.alternative_file_formats
        for value in self.info.as_proto.alternative_file_formats:
            file_format = tfds.core.FileFormat.from_value(value)
            if file_format not in formats:
                formats.append(file_format)

    def _set_prebuilt_info(self) -> None:
        """Fills `info` with what is known before a build, as TFDS's catalog datasets
        get it from TFDS's bucket: each split's examples (laid out in the shards a
        default build writes) and the size of the config's downloads.

        The generated size is known only once the real images are encoded: it
        stays unset. A build replaces all of it with what it wrote and downloaded.
        """
        splits = []
        for name, count in SPLIT_EXAMPLES[self.builder_config.name].items():
            shards = NIST_SHARDS if self.builder_config.name == "nist" else 1
            # TFDS's shard boundaries (its `get_shard_boundaries`, a private API).
            ends = [round(count * index / shards) for index in range(1, shards + 1)]
            lengths = np.diff(ends, prepend=0).tolist()
            splits.append(tfds.core.SplitInfo(name=name, shard_lengths=lengths, num_bytes=0))
        self.info.set_splits(tfds.core.SplitDict(splits))
        records = self.url_infos or {}
        urls = downloads.file_urls(self.builder_config.name, self._base_url).values()
        if all(url in records for url in urls):
            self.info.download_size = sum(int(records[url].size) for url in urls)

    def _create_builder_config(self, builder_config, version):
        name = builder_config if isinstance(builder_config, str) else None
        if name is not None and ":" not in name and name not in self.builder_configs:
            # TFDS's own message promises close matches and often lists none.
            raise ValueError(f"BuilderConfig {name} not found. The configs of "
                             f"{self.name} are: {', '.join(self.builder_configs)}.")
        return super()._create_builder_config(builder_config, version)

    def download_and_prepare(self, *args, **kwargs):
        """TFDS's `download_and_prepare`, one build at a time per version folder.

        Where the dataset is prepared and may be reused, TFDS only logs that it
        reuses it: no lock is taken and nothing is written, so a read-only
        data_dir serves. Otherwise a concurrent build of the same version waits
        for the lock, then reuses the result. A build into array_record files
        runs without TensorFlow; any other imports it first, so that a missing
        TensorFlow fails before the download.
        """
        config = kwargs.get("download_config") or tfds.download.DownloadConfig()
        reuse = config.download_mode == tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
        if reuse and self.data_path.exists():
            with _no_tfds_bucket_lookup():
                return super().download_and_prepare(*args, **kwargs)
        if not self._writes_without_tensorflow(config):
            lazy_tf.tensorflow()  # the build needs it: fail now, naming the install command
        with build_lock.exclusive(self.data_path), _no_tfds_bucket_lookup():
            return super().download_and_prepare(*args, **kwargs)

    def _uses_fast_writer(self, download_config: tfds.download.DownloadConfig) -> bool:
        """Whether `_generate_splits` writes the shards itself rather than through TFDS."""
        return (download_config.max_examples_per_split is None
                and self.info.file_format in shards.FILE_FORMATS
                and not shards.missing_tfds_internals())

    def _writes_without_tensorflow(self, download_config: tfds.download.DownloadConfig) -> bool:
        """Whether the build runs without TensorFlow: the fast writer into array_record
        files, whose writer is TensorFlow-free (TFDS's TFRecord writer is `tf.io`'s)."""
        return (self._uses_fast_writer(download_config)
                and self.info.file_format == tfds.core.FileFormat.ARRAY_RECORD)

    @tfds.core.utils.classproperty
    @classmethod
    def _checksums_path(cls) -> epath.Path:
        return checksums_file()

    url_infos = _ChecksumRecords()
    _downloaded_sources: dict[str, dict] | None = None  # see `_split_generators`

    def _info(self) -> tfds.core.DatasetInfo:
        metadata = {
            name: tfds.features.Scalar(dtype=np.int32, doc=doc)
            for name, (_, doc) in examples.METADATA_COLUMNS.items()
        }
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(
                        shape=(28, 28, 1), doc="28x28 grayscale digit, 0 is background."
                    ),
                    "label": tfds.features.ClassLabel(
                        names=[str(d) for d in range(examples.NUM_CLASSES)],
                        doc="The digit.",
                    ),
                    **metadata,
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://github.com/facebookresearch/qmnist",
            license="BSD-3-Clause",
            # Users compare QMNIST with MNIST index by index: keep upstream order.
            disable_shuffling=True,
        )

    def _split_sources(self, dl_manager: tfds.download.DownloadManager) -> dict[str, dict]:
        """Downloads the config's files; returns each split's `examples.iter_chunks` arguments."""
        config = self.builder_config.name
        paths = fail_fast.download(dl_manager, config,
                                   downloads.file_urls(config, self._base_url))

        def files(name: str, **options) -> dict:
            return dict(images_path=paths[f"{name}_images"], labels_path=paths[f"{name}_labels"],
                        **options)

        if config == "nist":
            return {"nist": files("nist")}
        # `test` encodes the test images once for all three test splits.
        test = files("test", png_cache={})
        return {
            "train": files("train"),
            "test": test,
            "test10k": dict(test, stop=TEST10K_SIZE),
            "test50k": dict(test, start=TEST10K_SIZE),
        }

    def _as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        """TFDS's reader, with reads that need not keep upstream order allowed.

        The dataset is ordered (`disable_shuffling`), so by default TFDS reads
        its files one after the other and refuses `shuffle_files=True` or an
        interleaving `ReadConfig`. Here those are taken as asked: shuffled files
        are interleaved, by default all the files of the split at once (NIST
        order is by HSF series, so a few files at a time would stream a few
        series at a time).
        """
        read_config = read_config or tfds.ReadConfig()
        cycle = read_config.interleave_cycle_length
        if shuffle_files and cycle is MISSING:
            widest = max(len(info.filenames) for info in self.info.splits.values())
            cycle = min(widest, MAX_SHUFFLED_CYCLE)
            read_config = dataclasses.replace(read_config, interleave_cycle_length=cycle)
        if not shuffle_files and (cycle is MISSING or cycle == 1):
            return super()._as_dataset(split, decoders=decoders, read_config=read_config,
                                       shuffle_files=False)
        read_config = dataclasses.replace(read_config, enable_ordering_guard=False)
        # Without the guard TFDS logs that order is not kept: what was asked for.
        with _dropping_logs("is an ordered dataset"):
            return super()._as_dataset(split, decoders=decoders, read_config=read_config,
                                       shuffle_files=shuffle_files)

    def as_data_source(self, split=None, **kwargs):
        """TFDS's `as_data_source`, served from memory (`qmnist_tfds.data_source`).

        A dataset prepared without an array_record copy gets a message that
        says how to add one, rather than TFDS's generic one. The builder
        keeps reading its main format in `as_dataset`.
        """
        main_format = self.info.file_format
        try:
            sources = super().as_data_source(split, **kwargs)
        except NotImplementedError as error:
            raise NotImplementedError(self._no_random_access_help()) from error
        if self._data_source_in_memory:
            sources = data_source.in_memory(sources)
        if self.info.file_format != main_format:
            # TFDS switched the shared info to the random-access format; the
            # sources have their files, and `as_dataset` reads the main format.
            self.info.set_file_format(main_format, override=True, override_if_initialized=True)
        return sources

    def _no_random_access_help(self) -> str:
        formats = ", ".join(sorted(f.value for f in self.info.available_file_formats()))
        name = f"{self.name}/{self.builder_config.name}"
        return (
            f"{name} at {self.data_path} holds no random-access copy ({formats} only): it "
            "was prepared by qmnist-tfds before 1.1.0 or with array_record_copy=False. Add "
            "the array_record copy that tfds.data_source reads in place with\n"
            f"  tfds convert_format --dataset_version_dir={self.data_path} "
            "--out_file_format=array_record\n"
            f"or delete that folder and build again: tfds build --imports qmnist_tfds {name}"
        )

    def _array_record_copies(self) -> bool:
        """Whether a build also writes every split as array_record files."""
        return self._array_record_copy and self.info.file_format == tfds.core.FileFormat.TFRECORD

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        # Reached from TFDS's writer path, after `_generate_splits` has downloaded
        # and verified the files: their sources are reused, not checked again.
        sources = self._downloaded_sources or self._split_sources(dl_manager)
        return {split: self._generate_examples(**source) for split, source in sources.items()}

    def _generate_examples(self, images_path, labels_path, start=0, stop=None, png_cache=None):
        yield from examples.iter_examples(
            images_path, labels_path, start=start, stop=stop, png_cache=png_cache
        )

    def _generate_splits(
        self,
        dl_manager: tfds.download.DownloadManager,
        download_config: tfds.download.DownloadConfig,
    ) -> list[tfds.core.SplitInfo]:
        """Writes the splits from chunks of examples (`shards.write_split`).

        Overrides the step of TFDS 4.9 (the `tfds` extra keeps TFDS below 4.10) that
        feeds `_split_generators` to TFDS's writer one example at a time. The
        shards are those that path writes (tests/test_shards.py), several times
        faster and in bounded memory. Options only TFDS's path implements
        (`max_examples_per_split`, other file formats), and a TFDS whose
        internals differ from what `shards` uses, take that path.
        """
        sources = self._split_sources(dl_manager)
        if self.builder_config.name == "nist" and download_config.num_shards is None:
            with idx.open_images(sources["nist"]["images_path"]) as images:
                rows = images.header.count
            if download_config.max_examples_per_split is not None:
                rows = min(rows, download_config.max_examples_per_split)
            download_config = dataclasses.replace(download_config,
                                                  num_shards=min(NIST_SHARDS, rows))
        missing = shards.missing_tfds_internals()
        if missing:
            logging.warning("TFDS %s differs from what the fast writer uses (%s): writing "
                            "with TFDS's own writer, which is slower.",
                            tfds.__version__, ", ".join(missing))
        array_record = tfds.core.FileFormat.ARRAY_RECORD
        copies = self._array_record_copies()
        if copies and array_record not in self.info.alternative_file_formats:
            self.info.add_alternative_file_format(array_record)
        if not self._uses_fast_writer(download_config):
            self._downloaded_sources = sources
            try:
                split_infos = super()._generate_splits(dl_manager, download_config)
            finally:
                self._downloaded_sources = None
            if copies:
                tf = lazy_tf.tensorflow()  # TFDS's path wrote TFRecord files with it
                for split_info in split_infos:
                    shards.copy_shards(split_info, array_record, lambda path: (
                        record.numpy() for record in tf.data.TFRecordDataset(path)))
            return split_infos
        serializer = shards.ScalarExampleSerializer(self.info.features)
        return [
            shards.write_split(
                split,
                (serializer.serialize(columns) for _, columns in examples.iter_chunks(**source)),
                filename_template=self._get_filename_template(split_name=split),
                example_writer=self._example_writer(),
                shard_config=download_config.get_shard_config(),
                copies=[shards.copy_writer(self._get_filename_template(split_name=split),
                                           array_record)] if copies else (),
            )
            for split, source in sources.items()
        ]
