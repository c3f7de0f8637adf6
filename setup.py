"""Everything but the run-time requirements is declared in setup.cfg.

The requirements depend on the environment being installed into:

- `tensorflow-datasets` and `tfds-nightly` are two distributions of the same
  `tensorflow_datasets` package. Requiring the first where the second is
  installed would make pip write a release over the nightly. So the TFDS
  requirement names `tfds-nightly` where the environment already has it.
- TensorFlow is an extra, so a stack's own distribution (`tensorflow-cpu`,
  `tf-nightly`, ...) stays. But pip's resolver honours the requirements of the
  distributions it resolves only: an installed TensorFlow that nothing here
  names does not hold back what it needs, and pip upgrades protobuf to 6.x
  (wanted by new proto-plus, under apache-beam) under TensorFlow 2.18/2.19,
  which require protobuf < 6. Naming the installed distribution without a
  version is not enough either: pip then upgrades TensorFlow itself to 2.21 to
  satisfy protobuf 6. So each installed TensorFlow distribution is required
  from its installed version up to the next minor release (patch releases keep
  their dependency bounds): pip keeps it and respects its bounds on protobuf,
  numpy, ml-dtypes and the rest.
- For the same reason numpy stays within its installed major version: with
  numpy 1.26 under TensorFlow 2.21, pip otherwise moves it to 2.x for the
  newest pandas (under mlcroissant), jax and ml-dtypes, which need numpy 2.
- The `tfds` command of TFDS 4.9 imports `apache_beam` and `mlcroissant` at
  start-up but declares neither. It needs TensorFlow too, so both come with the
  `tensorflow` extra (setup.cfg), and here only where a TensorFlow
  distribution is installed: an install without TensorFlow (array_record
  builds, `tfds.data_source`, Grain) goes without them.

pip runs this script in an isolated build environment, which hides that
environment's packages from `sys.path`; they are found through the
interpreter's own site-packages folder instead.
"""

import importlib.metadata
import re
import sysconfig

from setuptools import setup

TFDS_RELEASES = "tensorflow-datasets>=4.9.7,<4.10"
TFDS_NIGHTLY = "tfds-nightly"
NUMPY = "numpy>=1.26"
# What the `tfds` command imports at start-up without declaring it (TFDS 4.9).
TFDS_COMMAND = ["apache-beam", "mlcroissant"]
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel",
                            "tensorflow-macos", "tf-nightly", "tf-nightly-cpu")


def installed_distributions() -> dict[str, str]:
    """Name -> version of each distribution in the environment being installed into."""
    site_packages = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    return {
        re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower(): dist.version
        for dist in importlib.metadata.distributions(path=sorted(site_packages))
    }


def same_minor(name: str, version: str) -> str:
    major, minor = re.match(r"(\d+)\.(\d+)", version).groups()
    return f"{name}>={version},<{major}.{int(minor) + 1}"


def stack_requirements() -> list[str]:
    installed = installed_distributions()
    tfds = TFDS_NIGHTLY if TFDS_NIGHTLY in installed else TFDS_RELEASES
    numpy = NUMPY
    if "numpy" in installed:
        numpy += f",<{int(installed['numpy'].split('.')[0]) + 1}"
    tensorflow = [same_minor(name, installed[name])
                  for name in TENSORFLOW_DISTRIBUTIONS if name in installed]
    return [tfds, numpy, *tensorflow, *(TFDS_COMMAND if tensorflow else [])]


setup(
    install_requires=[
        *stack_requirements(),
        "etils[epath]",
        # A build lock that works wherever TensorFlow does (fcntl is POSIX-only).
        "filelock>=3.12",
        # With protobuf 5 (TensorFlow 2.18, 2.19), tensorflow-metadata 1.21's
        # generated code fails at import although its metadata allows it.
        "tensorflow-metadata<1.21",
        # Needed by TFDS's download_and_prepare, not declared by it.
        "importlib_resources",
    ],
)
