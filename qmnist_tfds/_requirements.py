"""Checks, when imported, the TFDS that the package requires no distribution of.

A stack keeps its own TFDS (`tensorflow-datasets` or `tfds-nightly`), so pip
checks neither its presence nor its version: this module does, and says how
to mend what it finds.
"""

from __future__ import annotations

import importlib.metadata
import re

OLDEST_TFDS = (4, 9, 7)  # earlier releases use --manual_dir files without verifying them
INSTALL_TFDS = 'pip install "qmnist-tfds[tfds]" (or tfds-nightly)'


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def broken_tfds_help() -> str:
    """Why `import tensorflow_datasets` may have failed, where it is known, and the fix."""
    metadata, protobuf = _installed("tensorflow-metadata"), _installed("protobuf")
    if metadata and protobuf and _version(metadata) >= (1, 21) and _version(protobuf) < (6, 31):
        return (f"tensorflow-metadata {metadata} fails to import under protobuf {protobuf} "
                "(its generated code needs protobuf 6.31 or newer; TensorFlow 2.18 and 2.19 "
                'need protobuf 5). Mend it with: pip install "tensorflow-metadata<1.21"')
    return "Its error is logged above."


def check_tfds() -> None:
    """Raises ImportError, naming the fix, unless a supported TFDS imports."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError("qmnist_tfds needs TensorFlow Datasets, and none is installed. "
                          f"Install the release with: {INSTALL_TFDS}.") from error
    # TFDS logs an error raised while it imports and leaves its module without its API.
    if not hasattr(tfds, "__version__") or not hasattr(tfds, "core"):
        raise ImportError("TensorFlow Datasets failed to import, so qmnist_tfds cannot. "
                          + broken_tfds_help())
    if _version(tfds.__version__) < OLDEST_TFDS:
        raise ImportError(f"qmnist_tfds needs TensorFlow Datasets 4.9.7 or newer; "
                          f"{tfds.__version__} is installed. Upgrade with: {INSTALL_TFDS}.")


check_tfds()
