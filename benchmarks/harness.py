"""What the benchmarks share: the checkout on `sys.path`, child processes, summaries.

Each script imports this module before anything of `qmnist_tfds`: importing it
makes the checkout's package importable where it is not installed. A script
finds it beside itself, its folder being `sys.path[0]` when it runs; whatever
loads a script as a module puts that folder on `sys.path` first
(`tests/conftest.py::load_benchmark`), so that sibling imports work there too.

A script's child mode is `python SCRIPT --child KIND ARGS...`: the child prints
its answer as one JSON line, last (`answer`), and `run_child` returns it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if os.fspath(REPO_ROOT) not in sys.path:  # a checkout that is not installed
    sys.path.insert(0, os.fspath(REPO_ROOT))


def run_child(script: str | os.PathLike, *args: object, timeout: float | None = None) -> Any:
    """`script --child ARGS` (each `str()`-ed) in a fresh interpreter; the JSON it printed last.

    The child gets this process's environment, with the checkout first on
    PYTHONPATH (for the processes it starts in turn) and TensorFlow's C++ logs
    off unless TF_CPP_MIN_LOG_LEVEL says otherwise. A child that fails, or
    whose last line is not JSON, raises RuntimeError with the end of its
    output.
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.fspath(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = [sys.executable, os.fspath(Path(script).resolve()), "--child", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    child = " ".join(command[2:])
    if done.returncode:
        raise RuntimeError(f"child {child} failed (exit code {done.returncode}):\n"
                           f"{done.stderr[-3000:]}")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise RuntimeError(f"child {child} printed no JSON line last:\n{done.stdout[-1000:]}"
                           f"\n{done.stderr[-3000:]}") from None


def answer(result: Any) -> None:
    """The child's side of `run_child`: `result` as one JSON line on stdout."""
    print(json.dumps(result), flush=True)


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min and max of `values`, and `values` themselves under "all"."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "all": values}


def ratio_text(ratio: dict[str, Any], width: int = 5) -> str:
    """A `spread` of ratios as a table prints it: `1.23x  1.10-1.40x`."""
    return f"{ratio['median']:{width}.2f}x {ratio['min']:5.2f}-{ratio['max']:.2f}x"


def argument_parser(doc: str, work_dir: Path | None = None) -> argparse.ArgumentParser:
    """A parser whose description is the first paragraph of `doc` (a script's docstring);
    with `work_dir`, it takes `--work-dir`, defaulting to that folder."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if work_dir is not None:
        parser.add_argument("--work-dir", type=Path, default=work_dir,
                            help="holds the files and builds, reused when present "
                                 "(default: %(default)s)")
    return parser


def parse_args(parser: argparse.ArgumentParser,
               json_help: str = "also write the results here") -> argparse.Namespace:
    """The command line, once `--json FILE` (the last option shown) and the hidden
    `--child KIND ARGS...` are added to `parser`."""
    parser.add_argument("--json", type=Path, help=json_help)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    return parser.parse_args()


def write_json(path: Path | None, result: Any) -> None:
    """`result` as indented JSON into `path` (`--json`), if there is one."""
    if path:
        path.write_text(json.dumps(result, indent=2) + "\n")


def rss_mib(pid: int | str = "self", field: str = "VmRSS") -> float:
    """A field of Linux's `/proc/PID/status` in MiB: `VmRSS` (resident now) or
    `VmHWM` (the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")
