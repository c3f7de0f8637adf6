"""TensorFlow, imported only where it is needed.

`import qmnist_tfds` registers the builder without importing TensorFlow, as
`import tensorflow_datasets` does: a JAX process reading through
`tfds.data_source` never loads it, nor does a build into array_record files
(`file_format="array_record"`), nor `load_arrays`. A TFRecord build and
tf.data reads import it on first use, through `tensorflow()`.
"""

from __future__ import annotations

import types

INSTALL_HINT = (
    'pip install "qmnist-tfds[tensorflow]" (or install tensorflow, tensorflow-cpu '
    "or tf-nightly yourself)"
)


def tensorflow() -> types.ModuleType:
    """Returns the `tensorflow` module, or raises ImportError naming the install command."""
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ImportError(
            f"qmnist_tfds needs TensorFlow to build TFRecord files and to read them with "
            f"tf.data, and none is installed. Install it with: {INSTALL_HINT}. "
            "(Without it, build with file_format='array_record' and read with "
            "tfds.data_source.)"
        ) from e
    return tf
