"""Compares `pip freeze` before and after an install step of `.ci/stack`.

    python stack_check.py STACK_FILE FREEZE_BEFORE FREEZE_AFTER CHECK_BEFORE CHECK_AFTER
                          [--keep-all] [--may-move "NAME ..."] [--absent "NAME ..."]
    python stack_check.py --pins FREEZE
    python stack_check.py --tensorflow FREEZE

FREEZE_* hold `pip freeze`, CHECK_* `pip check` output. Prints what pip changed.
Fails (exit 1) if a distribution named in the stack file, protobuf or numpy
changed version or went away; if the TensorFlow or TFDS distributions changed
(a second one beside the stack's, such as `tensorflow` beside `tensorflow-cpu`
or `tensorflow-datasets` beside `tfds-nightly`, or another version); if
`pip check` finds a broken requirement it did not find before (pip's resolver
ignores the requirements of installed distributions it is not asked about,
e.g. TensorFlow's protobuf bound); with `--keep-all`, if any distribution
installed before changed; if one of the `--absent` distributions is installed
after. The `--may-move` names are exempt from the version checks (the stack
file says why), not from `pip check`.

`--pins FREEZE` prints the TensorFlow and TFDS distributions of FREEZE as pip
requirements pinned to their versions (`tensorflow-cpu==2.19.1
tensorflow-datasets==4.9.9`), or nothing; `--tensorflow FREEZE` the TensorFlow one alone.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

FAMILIES = {
    "TensorFlow": {"tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos",
                   "tf-nightly", "tf-nightly-cpu"},
    "TFDS": {"tensorflow-datasets", "tfds-nightly"},
}
# Moved from under TensorFlow, they break it; kept by every step.
ALWAYS_KEPT = {"protobuf", "numpy"}


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


def pins(freeze_path: str, families: tuple[str, ...] = ("TensorFlow", "TFDS")) -> str:
    """The stack's TensorFlow and TFDS, pinned: named in an install command, they make pip
    keep them and honour what they require (protobuf, numpy, tensorflow-metadata)."""
    names = set().union(*(FAMILIES[family] for family in families))
    return " ".join(f"{name}=={version}" for name, version in sorted(freeze(freeze_path).items())
                    if name in names)


def problems(stack_path: str, before: dict[str, str], after: dict[str, str],
             known_breaks: set[str], new_breaks: list[str], *, keep_all: bool,
             may_move: set[str], absent: set[str]) -> list[str]:
    errors = []
    kept = stack_names(stack_path) | (ALWAYS_KEPT & before.keys())
    if keep_all:
        kept |= before.keys()
    for name in sorted(kept - may_move):
        if before.get(name) != after.get(name):
            errors.append(f"{name} changed: {before.get(name)} -> {after.get(name)}")
    for family, names in FAMILIES.items():
        old = {n: v for n, v in before.items() if n in names}
        new = {n: v for n, v in after.items() if n in names}
        if len(new) > 1:
            errors.append(f"{len(new)} {family} distributions after the install: {new}")
        if old and old != new:
            errors.append(f"{family} distributions changed: {old} -> {new}")
    errors += [f"{name} is installed" for name in sorted(absent & after.keys())]
    errors += ["pip check: " + line for line in new_breaks
               if line not in known_breaks and not line.startswith("No broken requirements")]
    return errors


def main(argv: list[str]) -> int:
    if argv[:1] == ["--pins"]:
        print(pins(argv[1]))
        return 0
    if argv[:1] == ["--tensorflow"]:
        print(pins(argv[1], ("TensorFlow",)))
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("stack")
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("check_before")
    parser.add_argument("check_after")
    parser.add_argument("--keep-all", action="store_true")
    parser.add_argument("--may-move", default="")
    parser.add_argument("--absent", default="")
    args = parser.parse_args(argv)
    before, after = freeze(args.before), freeze(args.after)
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            print(f"  pip changed: {name} {old or '(none)'} -> {new or '(removed)'}")
    errors = problems(
        args.stack, before, after,
        set(Path(args.check_before).read_text().splitlines()),
        Path(args.check_after).read_text().splitlines(),
        keep_all=args.keep_all, may_move={norm(n) for n in args.may_move.split()},
        absent={norm(n) for n in args.absent.split()})
    for error in errors:
        print("  STACK BROKEN: " + error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
