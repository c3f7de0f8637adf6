"""`subprocess.run` for commands that import TensorFlow, without paying for the import.

Tests run the `tfds` command and `python -c` programs in processes of their own,
as users do. Each such process would spend about 6 CPU seconds importing
TensorFlow before doing a second of work; a few dozen of them were most of the
suite's time. Here one server process per test process imports TensorFlow once
and forks a child per command. The child starts as a fresh interpreter would
(its own argv, environment, working directory, `sys.path` from the command's
PYTHONPATH, stdin from /dev/null, stdout and stderr to files) and then runs the
program, ending through the interpreter's usual exit, so exit codes, tracebacks
and atexit handlers are what a real process gives. The difference: TensorFlow
(with numpy, absl and protobuf) is already in `sys.modules`, imported under the
test process's environment. Tests whose subject is the process itself (what it
imports, what its environment changes, being killed) use `subprocess` directly.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence

_SERVER = r"""
import importlib, io, json, os, runpy, sys, types

# What every child would otherwise import itself: TensorFlow, and the `tfds`
# command's other heavy import. Where one is not installed, children import
# what they need as usual.
for name in ("tensorflow", "apache_beam"):
    try:
        importlib.import_module(name)
    except ImportError:
        pass

base_path = [p for p in sys.path[1:]
             if p not in os.environ.get("PYTHONPATH", "").split(os.pathsep)]

def child(request):
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_TRUNC)
    os.dup2(out, 1)
    os.dup2(os.open(request["stderr"], os.O_WRONLY | os.O_TRUNC) if request["stderr"]
            else out, 2)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    if request["env"].get("PYTHONUNBUFFERED"):
        sys.stdout.reconfigure(line_buffering=True, write_through=True)
        sys.stderr.reconfigure(line_buffering=True, write_through=True)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    extra = [p for p in request["env"].get("PYTHONPATH", "").split(os.pathsep) if p]
    argv = request["argv"]
    if argv[0] == "-c":
        sys.path[:] = ["", *extra, *base_path]
        sys.argv = ["-c", *argv[2:]]
        code = compile(argv[1], "<string>", "exec")
        main = sys.modules["__main__"] = types.ModuleType("__main__")
        exec(code, main.__dict__)
    else:
        sys.path[:] = [os.path.dirname(os.path.abspath(argv[0])), *extra, *base_path]
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")

for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        child(request)
        sys.exit(0)  # the loop must not go on in the child
    print(json.dumps({"pid": pid}), flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)
"""

_lock = threading.Lock()
_server: subprocess.Popen | None = None


def _start() -> subprocess.Popen:
    global _server
    if _server is None or _server.poll() is not None:
        _server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, cwd=tempfile.gettempdir())
        atexit.register(_server.kill)
    return _server


def _program_argv(command: Sequence[str]) -> list[str]:
    """The interpreter's view of `command`: ["-c", CODE, ARGS...] or [SCRIPT, ARGS...]."""
    first, *rest = map(os.fspath, command)
    if os.path.realpath(first) == os.path.realpath(sys.executable):
        if rest[0].startswith("-") and rest[0] != "-c":
            raise ValueError(f"interpreter options are not supported here: {rest[0]}")
        return rest
    script = first if os.sep in first else shutil.which(first)
    if script is None:
        raise FileNotFoundError(first)
    with open(script, "rb") as f:
        shebang = f.readline()
    if not (shebang.startswith(b"#!") and b"python" in shebang):
        raise ValueError(f"{script} is not a Python script")
    return [script, *rest]


def run(command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd=None,
        timeout: float | None = None, merge_stderr: bool = False,
        check: bool = False) -> subprocess.CompletedProcess:
    """Runs `command` (the interpreter or a Python script, such as the `tfds` command)
    as `subprocess.run(..., capture_output=True, text=True)` would, in a child forked
    from a process that has imported TensorFlow. With `merge_stderr`, stderr goes
    into stdout, as `stderr=subprocess.STDOUT` would."""
    argv = _program_argv(command)
    with _lock, tempfile.TemporaryDirectory() as folder:
        out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
        for path in (out, err):
            open(path, "w").close()
        server = _start()
        server.stdin.write(json.dumps({
            "argv": argv, "env": dict(os.environ if env is None else env),
            "cwd": os.fspath(cwd or os.getcwd()), "stdout": out,
            "stderr": None if merge_stderr else err}) + "\n")
        server.stdin.flush()
        reply = server.stdout.readline()
        if not reply:
            raise RuntimeError(f"the server process ended (exit code {server.wait()})")
        pid = json.loads(reply)["pid"]
        timer = threading.Timer(timeout, os.kill, (pid, signal.SIGKILL)) if timeout else None
        if timer:
            timer.start()
        try:
            returncode = json.loads(server.stdout.readline())["returncode"]
        finally:
            if timer:
                timer.cancel()
        if timer and returncode == -signal.SIGKILL:
            raise subprocess.TimeoutExpired(list(command), timeout)
        with open(out, errors="replace") as f_out, open(err, errors="replace") as f_err:
            done = subprocess.CompletedProcess(list(command), returncode, f_out.read(),
                                               None if merge_stderr else f_err.read())
    if check:
        done.check_returncode()
    return done
