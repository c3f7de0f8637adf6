"""QMNIST for TensorFlow Datasets: importing this package registers the `qmnist` builder.

It does not import TensorFlow: building, tf.data reads and `load_arrays` do,
when first used.
"""

import re as _re

try:
    import tensorflow_datasets as _tfds  # either distribution: a release or tfds-nightly
except ImportError as error:
    raise ImportError(
        "qmnist_tfds needs TensorFlow Datasets, and none is installed. Install the release "
        'with: pip install "qmnist-tfds[tfds]" (or keep your own tensorflow-datasets or '
        "tfds-nightly)."
    ) from error
# The package requires no TFDS distribution (a stack keeps its own), so its
# oldest supported release is checked here: earlier ones use --manual_dir files
# without verifying their checksums.
if tuple(map(int, _re.findall(r"\d+", _tfds.__version__)[:3])) < (4, 9, 7):
    raise ImportError(
        f"qmnist_tfds needs TensorFlow Datasets 4.9.7 or newer; {_tfds.__version__} is "
        'installed. Upgrade with: pip install "qmnist-tfds[tfds]" (or tfds-nightly).'
    )

from qmnist_tfds.arrays import load_arrays
from qmnist_tfds.idx import IdxFormatError
from qmnist_tfds.qmnist.qmnist_dataset_builder import Builder as QMNIST

__all__ = ["QMNIST", "IdxFormatError", "load_arrays"]
__version__ = "1.1.0"
