"""One build at a time per dataset version folder.

Two builds of the same config into the same data_dir would each stage their
own `incomplete.*` folder and race to rename it; TFDS lets the loser fail on
the rename. With this lock the second build waits, then finds the dataset
prepared and reuses it. Kept out of the builder module, whose `os` and `open`
TFDS's test case mocks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def exclusive(version_dir: str | os.PathLike) -> Iterator[None]:
    """Holds an exclusive lock on a file beside `version_dir` (local file systems only).

    `filelock` locks with fcntl on POSIX and msvcrt on Windows; where neither
    exists it falls back to a lock file created exclusively. Remote data dirs
    (gs://, s3://...) are not locked: TFDS's own staging then decides, as
    without this module.
    """
    version_dir = os.fspath(version_dir)
    if "://" in version_dir:
        yield
        return
    import filelock  # here, not at import: only a build needs it

    parent, version = os.path.split(version_dir.rstrip("/\\"))
    os.makedirs(parent, exist_ok=True)
    with filelock.FileLock(os.path.join(parent, f".{version}.lock")):
        yield
