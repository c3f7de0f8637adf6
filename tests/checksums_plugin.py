"""Test-only `tfds build --imports` plugin: verify against $QMNIST_TFDS_TEST_CHECKSUMS.

The CLI tests build from synthetic files, which the real checksums rightly
reject. Imported after `qmnist_tfds`, this module makes the builder verify
downloads against the checksums file the environment variable names. It is
not part of the package; no user-facing code path changes verification.
"""

import os

from etils import epath

from qmnist_tfds import downloads

_PATH = epath.Path(os.environ["QMNIST_TFDS_TEST_CHECKSUMS"])
downloads.checksums_file = lambda: _PATH
