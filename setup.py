"""Everything but the run-time requirements is declared in setup.cfg.

`tensorflow-datasets` and `tfds-nightly` are two distributions of the same
`tensorflow_datasets` package. Requiring the first where the second is
installed would make pip write a release over the nightly. So the TFDS
requirement names `tfds-nightly` where the environment being installed into
already has it. pip runs this script in an isolated build environment, which
hides that environment's packages from `sys.path`; they are found through the
interpreter's own site-packages folder instead.
"""

import importlib.metadata
import sysconfig

from setuptools import setup

TFDS_RELEASES = "tensorflow-datasets>=4.9.7,<4.10"
TFDS_NIGHTLY = "tfds-nightly"


def tfds_requirement() -> str:
    site_packages = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    installed = {
        (dist.metadata["Name"] or "").lower()
        for dist in importlib.metadata.distributions(path=sorted(site_packages))
    }
    return TFDS_NIGHTLY if TFDS_NIGHTLY in installed else TFDS_RELEASES


setup(
    install_requires=[
        tfds_requirement(),
        "numpy>=1.26",
        "etils[epath]",
        # A build lock that works wherever TensorFlow does (fcntl is POSIX-only).
        "filelock>=3.12",
        # With protobuf 5 (TensorFlow 2.18, 2.19), tensorflow-metadata 1.21's
        # generated code fails at import although its metadata allows it.
        "tensorflow-metadata<1.21",
        # The `tfds` command of TFDS 4.9 imports both at start-up but declares neither.
        "apache-beam",
        "mlcroissant",
        # Needed by TFDS's download_and_prepare, not declared by it.
        "importlib_resources",
    ],
)
