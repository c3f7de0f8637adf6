"""Checks that wheels carry the same metadata, whoever built them and wherever.

    python same_metadata.py WHEEL [WHEEL ...]

Prints the first wheel's Requires-Dist lines; fails (exit 1), showing the
difference, if the METADATA file of any other wheel differs from the first's.
"""

from __future__ import annotations

import difflib
import sys
import zipfile


def metadata(wheel: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode()


def main(wheels: list[str]) -> int:
    first = metadata(wheels[0])
    for line in first.splitlines():
        if line.startswith("Requires-Dist:"):
            print(line)
    failed = False
    for wheel in wheels[1:]:
        other = metadata(wheel)
        if other != first:
            failed = True
            print(f"METADATA of {wheel} differs from {wheels[0]}:", file=sys.stderr)
            sys.stderr.writelines(difflib.unified_diff(
                first.splitlines(True), other.splitlines(True), wheels[0], wheel))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
