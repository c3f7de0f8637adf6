"""QMNIST: the MNIST digits rebuilt from NIST SD19, traced to their writers."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from qmnist_tfds import (
    build_lock,
    data_source,
    downloads,
    examples,
    fail_fast,
    lazy_tf,
    shards,
    tfds_internals,
)

TEST10K_SIZE = 10_000  # The first 10,000 test rows are MNIST's test set.
# Examples per split: the rows of the upstream label files, which
# tests/test_prebuilt_info.py counts. `info` shows them before the first build.
SPLIT_EXAMPLES = {
    "qmnist": {"train": 60_000, "test": 60_000, "test10k": TEST10K_SIZE,
               "test50k": 60_000 - TEST10K_SIZE},
    "nist": {"nist": 402_953},
}
# NIST order groups the HSF series in seven blocks of 52k-64k rows: with this
# many shards, shuffled files read interleaved give every series its share.
NIST_SHARDS = 128


class Builder(tfds_internals.Builder):
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
        `file_format`: the format to build in; a prepared dataset that holds it
        among its alternatives keeps its main format, which `as_dataset` reads.
        """
        self.base_url = downloads.mirror_base_url(mirror_url) or downloads.BASE_URL
        self.array_record_copy = array_record_copy
        self.data_source_in_memory = data_source_in_memory
        self._sources: tuple[object, dict] | None = None
        with tfds_internals.no_bucket_lookups():
            super().__init__(**kwargs)  # the prepared dataset's format, else TFRecord
        if not self.info.initialized:  # nothing prepared in data_dir to restore info from
            self.info.set_splits(self._expected_splits())
            size = downloads.download_size(self.url_infos, self.builder_config.name,
                                           self.base_url)
            if size is not None:
                self.info.download_size = size
        data_source.restore_alternative_file_formats(self.info)
        if file_format is not None:
            file_format = tfds.core.FileFormat.from_value(file_format)
            prepared = self.info.initialized
            if not (prepared and file_format in self.info.available_file_formats()):
                self.info.set_file_format(file_format, override=not prepared)

    @property
    def max_shards(self) -> int | None:
        return NIST_SHARDS if self.builder_config.name == "nist" else None

    def _expected_splits(self) -> tfds.core.SplitDict:
        """Each split's examples, in the shards a default build writes; no sizes."""
        shard_count = self.max_shards or 1
        return tfds.core.SplitDict([
            tfds.core.SplitInfo(name=name, num_bytes=0, shard_lengths=np.diff(
                tfds_internals.shard_boundaries(count, shard_count), prepend=0).tolist())
            for name, count in SPLIT_EXAMPLES[self.builder_config.name].items()
        ])

    def _info(self) -> tfds.core.DatasetInfo:
        metadata = {
            name: tfds.features.Scalar(dtype=np.int32, doc=doc)
            for name, (_, doc) in examples.METADATA_COLUMNS.items()
        }
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(
                    shape=(28, 28, 1), doc="28x28 grayscale digit, 0 is background."),
                "label": tfds.features.ClassLabel(
                    names=[str(d) for d in range(examples.NUM_CLASSES)], doc="The digit."),
                **metadata,
            }),
            supervised_keys=("image", "label"),
            homepage="https://github.com/facebookresearch/qmnist",
            license="BSD-3-Clause",
            # Users compare QMNIST with MNIST index by index: keep upstream order.
            disable_shuffling=True,
        )

    def split_sources(self, dl_manager: tfds.download.DownloadManager) -> dict[str, dict]:
        """Downloads the config's files (once per download manager); returns each
        split's `examples.iter_chunks` arguments."""
        if self._sources is None or self._sources[0] is not dl_manager:
            config = self.builder_config.name
            paths = fail_fast.download(dl_manager, config,
                                       downloads.file_urls(config, self.base_url))
            self._sources = (dl_manager, examples.split_sources(config, paths, TEST10K_SIZE))
        return self._sources[1]

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        return {split: self._generate_examples(**source)
                for split, source in self.split_sources(dl_manager).items()}

    def _generate_examples(self, images_path, labels_path, start=0, stop=None, png_cache=None):
        yield from examples.iter_examples(
            images_path, labels_path, start=start, stop=stop, png_cache=png_cache)

    def download_and_prepare(self, *args, **kwargs):
        """TFDS's `download_and_prepare`, one build at a time per version folder.

        A dataset prepared and reused takes no lock and writes nothing (a
        read-only data_dir serves); otherwise a concurrent build of the same
        version waits for the lock, then reuses the result. Only a fast build
        into array_record files runs without TensorFlow: any other imports it
        first, so that a missing TensorFlow fails before the download.
        """
        config = kwargs.get("download_config") or tfds.download.DownloadConfig()
        reuse = config.download_mode == tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
        with tfds_internals.no_bucket_lookups():
            if reuse and self.data_path.exists():
                return super().download_and_prepare(*args, **kwargs)
            if not (tfds_internals.fast_writer_available() and shards.fast_writer_takes(
                    self, config) and self.info.file_format.value == "array_record"):
                lazy_tf.tensorflow()  # the build needs it: fail now, naming the install
            with build_lock.exclusive(self.data_path):
                return super().download_and_prepare(*args, **kwargs)

    def as_data_source(self, split=None, **kwargs):
        """TFDS's `as_data_source`, served from memory (`qmnist_tfds.data_source`);
        `as_dataset` keeps reading the main format. A dataset prepared without an
        array_record copy gets a message that says how to add one."""
        main_format = self.info.file_format
        try:
            sources = super().as_data_source(split, **kwargs)
        except NotImplementedError as error:
            raise NotImplementedError(data_source.no_random_access_help(self)) from error
        if self.data_source_in_memory:
            sources = data_source.in_memory(sources)
        if self.info.file_format != main_format:  # TFDS switched the shared info
            self.info.set_file_format(main_format, override=True, override_if_initialized=True)
        return sources
