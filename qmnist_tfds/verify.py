"""`python -m qmnist_tfds.verify FOLDER...`: checks prepared datasets against their digests.

FOLDER is a prepared version folder, such as
`~/tensorflow_datasets/qmnist/qmnist/1.0.0`. Each shard is reported as
`sha256sum -c` reports it; the exit status is 1 if any shard failed or is
missing. A module of its own, so that running it does not re-execute a module
that `import qmnist_tfds` has already loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from qmnist_tfds import shards


def main(argv: Sequence[str] | None = None) -> int:
    folders = sys.argv[1:] if argv is None else list(argv)
    if not folders:
        print("usage: python -m qmnist_tfds.verify DATA_DIR/qmnist/CONFIG/VERSION ...")
        return 2
    failed = False
    for folder in folders:
        try:
            report = shards.check_digests(folder)
        except FileNotFoundError as error:  # not a prepared folder, or built without digests
            print(f"{folder}: {error}", file=sys.stderr)
            return 2
        for line in report:
            print(line)
            failed |= not line.endswith(": OK")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
