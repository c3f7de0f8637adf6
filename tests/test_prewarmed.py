"""`tests/prewarmed.py` gives what a fresh interpreter gives: the oracle is `subprocess.run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests import prewarmed

PROGRAMS = {
    "argv, cwd, env, name": """
        import os, sys
        print(sys.argv, os.getcwd(), os.environ.get("PREWARMED_PROBE"), __name__)
        print(repr(sys.stdin.read()))
    """,
    "exit code": "raise SystemExit(3)",
    "exit message": "import sys; sys.exit('went wrong')",
    "exit none": "import sys; print('out'); sys.exit()",
    "exception": "print('before'); 1 / 0",
    "atexit and threads": """
        import atexit, threading, time
        atexit.register(print, "at exit")
        threading.Thread(target=lambda: (time.sleep(0.2), print("thread done"))).start()
        print("main done")
    """,
    "pythonpath": "import probe_module; print(probe_module.VALUE)",
}


def _both(command, **kwargs):
    real = subprocess.run(command, capture_output=True, text=True, timeout=60, **kwargs)
    forked = prewarmed.run(command, timeout=60, **kwargs)
    return real, forked


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1] if text.strip() else ""


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_a_program_runs_as_in_a_fresh_interpreter(name, tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "probe_module.py").write_text("VALUE = 42\n")
    env = dict(os.environ, PREWARMED_PROBE="seen",
               PYTHONPATH=os.pathsep.join([os.fspath(tmp_path / "lib"),
                                           os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-c", textwrap.dedent(PROGRAMS[name]), "first", "second"]
    real, forked = _both(command, env=env, cwd=tmp_path)
    assert (forked.returncode, forked.stdout) == (real.returncode, real.stdout)
    assert _last_line(forked.stderr) == _last_line(real.stderr)


def test_a_script_sees_its_folder_first_on_the_path(tmp_path):
    (tmp_path / "sibling.py").write_text("WHERE = 'beside the script'\n")
    script = tmp_path / "script.py"
    script.write_text("import sys, sibling\nprint(sys.argv[1:], sibling.WHERE, __name__)\n")
    real, forked = _both([sys.executable, os.fspath(script), "x"], cwd=os.sep)
    assert forked.returncode == real.returncode == 0
    assert forked.stdout == real.stdout == "['x'] beside the script __main__\n"


def test_commands_run_side_by_side_and_can_be_killed(tmp_path):
    flag = tmp_path / "flag"
    # The first waits for a file only the second writes: they must overlap.
    waiter = prewarmed.start([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        while not os.path.exists({os.fspath(flag)!r}):
            time.sleep(0.01)
        print("saw it")
    """)])
    writer = prewarmed.run([sys.executable, "-c", f"open({os.fspath(flag)!r}, 'w').close()"])
    assert writer.returncode == 0
    assert waiter.communicate(timeout=60) == ("saw it\n", "")
    sleeper = prewarmed.start([sys.executable, "-c", "import time; time.sleep(600)"])
    assert sleeper.poll() is None
    sleeper.send_signal(signal.SIGKILL)
    sleeper.communicate(timeout=60)
    assert sleeper.returncode == -signal.SIGKILL
    with pytest.raises(subprocess.TimeoutExpired):
        prewarmed.run([sys.executable, "-c", "import time; time.sleep(600)"], timeout=1)
