"""One build at a time per dataset version folder.

Two builds of the same config into the same data_dir would each stage their
own `incomplete.*` folder and race to rename it; TFDS lets the loser fail on
the rename. With this lock the second build waits, then finds the dataset
prepared and reuses it. Kept out of the builder module, whose `os` and `open`
TFDS's test case mocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator


@contextlib.contextmanager
def exclusive(version_dir: str | os.PathLike) -> Iterator[None]:
    """Holds an exclusive lock beside `version_dir` (local file systems only).

    Remote data dirs (gs://, s3://...) are not locked: TFDS's own staging then
    decides, as without this module.
    """
    version_dir = os.fspath(version_dir)
    if "://" in version_dir:
        yield
        return
    parent, version = os.path.split(version_dir.rstrip("/"))
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, f".{version}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
