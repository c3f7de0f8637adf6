"""`subprocess.run` for commands that import TensorFlow, without paying for the import.

Tests run the `tfds` command and `python -c` programs in processes of their own,
as users do. Each such process would spend about 6 CPU seconds importing
TensorFlow before doing a second of work; a few dozen of them were most of the
suite's time. Here one server process per test process imports TensorFlow once
and forks a child per command. The child starts as a fresh interpreter would
(its own argv, environment, working directory, `sys.path` from the command's
PYTHONPATH, stdin from /dev/null, stdout and stderr to files) and then runs the
program and ends as the interpreter would (exit code, traceback, non-daemon
threads joined, atexit handlers run, output flushed). The differences:
TensorFlow (with numpy, absl and protobuf) is already in `sys.modules`,
imported under the test process's environment, and the interpreter's final
teardown of every module is skipped. Tests whose subject is the process itself
(what it imports or holds, what its environment changes) use `subprocess`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence

_SERVER = r"""
import atexit, importlib, io, json, os, runpy, signal, sys, threading, types

# `python -c` puts the working directory first on sys.path; what lies there
# (a stray nt.py, say) must not shadow what the server imports.
del sys.path[0]

# What every child would otherwise import itself: TensorFlow, and the `tfds`
# command's other heavy import. Where one is not installed, children import
# what they need as usual.
for name in ("tensorflow", "apache_beam"):
    try:
        importlib.import_module(name)
    except Exception as error:  # noqa: BLE001  (a child's own import shows what is wrong)
        print(f"not preloaded: {name}: {error!r}", file=sys.stderr, flush=True)

base_path = [p for p in sys.path
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

# Runs the command, then ends as the interpreter does (non-daemon threads
# joined, atexit handlers run, stdout and stderr flushed), less its teardown of
# every module: a second of CPU with TensorFlow loaded.
def run_and_exit(request):
    try:
        child(request)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
        if not isinstance(stop.code, (int, type(None))):
            print(stop.code, file=sys.stderr)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)

def write_atomically(path, text):
    with open(path + ".part", "w") as f:
        f.write(text)
    os.rename(path + ".part", path)

# Each command gets a supervisor, forked from this server, which forks the
# command's process, writes its pid, waits for it and writes its exit status.
# The server never waits, so commands may run side by side.
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
for line in sys.stdin:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        pid = os.fork()
        if pid == 0:
            run_and_exit(request)
        write_atomically(request["pid"], str(pid))
        _, status = os.waitpid(pid, 0)
        write_atomically(request["status"], str(os.waitstatus_to_exitcode(status)))
        os._exit(0)
"""

_lock = threading.Lock()
_server: subprocess.Popen | None = None
_server_log = None  # the server's own stderr, for the reason should it end


def _start() -> subprocess.Popen:
    global _server, _server_log
    if _server is None or _server.poll() is not None:
        if _server_log is None:
            _server_log = tempfile.NamedTemporaryFile(prefix="prewarmed-", suffix=".log")  # noqa: SIM115
        _server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                   stderr=_server_log, text=True, cwd=tempfile.gettempdir())
        atexit.register(_server.kill)
    return _server


def _server_ended(server: subprocess.Popen) -> RuntimeError:
    with open(_server_log.name, errors="replace") as f:
        log = f.read()[-3000:]
    return RuntimeError(f"the prewarmed server {server.pid} ended (exit code "
                        f"{server.poll()}):\n{log}")


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


class Process:
    """A command started by `start`: its pid, `poll`, `wait`, `kill` and `communicate`,
    as `subprocess.Popen(..., stdout=PIPE, stderr=PIPE, text=True)` gives them."""

    def __init__(self, command: Sequence[str], folder: tempfile.TemporaryDirectory,
                 merge_stderr: bool):
        self.args, self._folder, self._merge = list(command), folder, merge_stderr
        self.returncode: int | None = None
        with open(self._path("pid")) as f:
            self.pid = int(f.read())

    def _path(self, name: str) -> str:
        return os.path.join(self._folder.name, name)

    def poll(self) -> int | None:
        if self.returncode is None and os.path.exists(self._path("status")):
            with open(self._path("status")) as f:
                self.returncode = int(f.read())
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(0.02)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def communicate(self, timeout: float | None = None) -> tuple[str, str | None]:
        self.wait(timeout)
        with open(self._path("stdout"), errors="replace") as f:
            out = f.read()
        err = None
        if not self._merge:
            with open(self._path("stderr"), errors="replace") as f:
                err = f.read()
        self._folder.cleanup()
        return out, err


def start(command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd=None,
          merge_stderr: bool = False) -> Process:
    """Starts `command` (the interpreter or a Python script, such as the `tfds` command)
    in a process forked from one that has imported TensorFlow. With `merge_stderr`,
    stderr goes into stdout, as `stderr=subprocess.STDOUT` would."""
    argv = _program_argv(command)
    folder = tempfile.TemporaryDirectory()
    out, err = os.path.join(folder.name, "stdout"), os.path.join(folder.name, "stderr")
    for path in (out, err):
        open(path, "w").close()
    request = json.dumps({
        "argv": argv, "env": dict(os.environ if env is None else env),
        "cwd": os.fspath(cwd or os.getcwd()), "stdout": out,
        "stderr": None if merge_stderr else err, "pid": os.path.join(folder.name, "pid"),
        "status": os.path.join(folder.name, "status")}) + "\n"
    with _lock:
        server = _start()
        try:
            server.stdin.write(request)
            server.stdin.flush()
        except BrokenPipeError:
            raise _server_ended(server) from None
    deadline = time.monotonic() + 600
    while not os.path.exists(os.path.join(folder.name, "pid")):
        if server.poll() is not None:
            raise _server_ended(server)
        if time.monotonic() > deadline:
            raise RuntimeError("the prewarmed server did not start the command in 600 s")
        time.sleep(0.01)
    return Process(command, folder, merge_stderr)


def run(command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd=None,
        timeout: float | None = None, merge_stderr: bool = False,
        check: bool = False) -> subprocess.CompletedProcess:
    """`start(...)`, then its outputs, as `subprocess.run(..., capture_output=True,
    text=True)` gives them; past `timeout` the process is killed."""
    process = start(command, env=env, cwd=cwd, merge_stderr=merge_stderr)
    try:
        out, err = process.communicate(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    done = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    if check:
        done.check_returncode()
    return done
