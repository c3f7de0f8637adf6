"""QMNIST for TensorFlow Datasets: importing this package registers the `qmnist` builder.

It does not import TensorFlow: building, tf.data reads and `load_arrays` do,
when first used. `mnist_metadata` and `qmnist_tfds.evaluation` need only the
extended-label files, and never import it.
"""

# First: raises ImportError, naming the fix, unless a supported TFDS imports.
from qmnist_tfds import _requirements  # noqa: F401, I001
from qmnist_tfds.arrays import load_arrays
from qmnist_tfds.idx import IdxFormatError
from qmnist_tfds.metadata import mnist_metadata
from qmnist_tfds.qmnist.qmnist_dataset_builder import Builder as QMNIST

__all__ = ["QMNIST", "IdxFormatError", "load_arrays", "mnist_metadata"]
__version__ = "1.1.0"
