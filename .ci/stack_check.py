"""Compares `pip freeze` before and after installing this package into a stack.

    python stack_check.py STACK_FILE FREEZE_BEFORE FREEZE_AFTER CHECK_BEFORE CHECK_AFTER

FREEZE_* hold `pip freeze`, CHECK_* `pip check` output. Prints what pip changed.
Fails (exit 1) if a distribution named in the stack file changed version or went
away; if the TensorFlow or TFDS distributions changed: a second one added beside
the stack's (`tensorflow` beside `tensorflow-cpu`, `tensorflow-datasets` beside
`tfds-nightly`), or another version; or if `pip check` finds a broken requirement
that it did not find before (pip's resolver ignores the requirements of installed
distributions it is not asked about, e.g. TensorFlow's protobuf bound).
"""

import re
import sys
from pathlib import Path

FAMILIES = {
    "TensorFlow": {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos",
                   "tf-nightly", "tf-nightly-cpu"},
    "TFDS": {"tensorflow-datasets", "tfds-nightly"},
}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def freeze(path: str) -> dict[str, str]:
    dists = {}
    for line in Path(path).read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            dists[norm(name)] = version
        elif " @ " in line:
            name, _, url = line.strip().partition(" @ ")
            dists[norm(name)] = "@ " + url
    return dists


def stack_names(path: str) -> set[str]:
    names = set()
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(norm(re.match(r"[A-Za-z0-9._-]+", line).group()))
    return names


def main(stack_path: str, before_path: str, after_path: str,
         check_before_path: str, check_after_path: str) -> int:
    before, after = freeze(before_path), freeze(after_path)
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            print(f"  pip changed: {name} {old or '(none)'} -> {new or '(removed)'}")
    errors = []
    for name in sorted(stack_names(stack_path)):
        if before.get(name) != after.get(name):
            errors.append(f"{name} of the stack changed: {before.get(name)} -> {after.get(name)}")
    for family, names in FAMILIES.items():
        old = {n: v for n, v in before.items() if n in names}
        new = {n: v for n, v in after.items() if n in names}
        if len(new) != 1:
            errors.append(f"{len(new)} {family} distributions after the install: {new}")
        if old and old != new:
            errors.append(f"{family} distributions changed: {old} -> {new}")
    known = set(Path(check_before_path).read_text().splitlines())
    for line in Path(check_after_path).read_text().splitlines():
        if line not in known and not line.startswith("No broken requirements"):
            errors.append("pip check: " + line)
    for error in errors:
        print("  STACK BROKEN: " + error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
