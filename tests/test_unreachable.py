"""An unreachable source ends `tfds build` in seconds with the package's message last.

Only a `.invalid` name (never resolved by anyone, RFC 6761) and a closed port of
127.0.0.1 are used: no traffic leaves the machine.
"""

from __future__ import annotations

import csv
import logging
import os
import socket
import subprocess
import threading
import time

import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import downloader

from qmnist_tfds import fail_fast
from tests.conftest import REPO_ROOT
from tests.test_cli import _tfds_command, tfds_in_process

CHECKSUMS = REPO_ROOT / "checksums" / "qmnist.tsv"
LIMIT = 24  # seconds, TensorFlow's import (about 6 of them) included


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _qmnist_files() -> list[str]:
    with open(CHECKSUMS, newline="") as f:
        return [row[3] for row in csv.reader(f, delimiter="\t") if row[3].startswith("qmnist-")]


def _source(kind: str) -> tuple[str, str]:
    """(mirror URL, the cause the message gives) of an unreachable source of `kind`."""
    if kind == "unresolvable":
        host = "qmnist-tfds.invalid"
        return f"http://{host}/qmnist/", f"(cannot resolve the host name {host}: "
    port = _closed_port()
    return f"http://127.0.0.1:{port}/qmnist/", f"(connection refused by 127.0.0.1:{port})."


def _assert_message_then_help(lines: list[str], url: str, cause: str) -> None:
    """The package's message in `lines`, followed by its help and nothing else."""
    first = next(i for i, line in enumerate(lines) if "Could not download the files" in line)
    error, message = lines[first].split(": ", 1)
    assert error.endswith("DownloadError")
    assert message.startswith(f"Could not download the files of qmnist/qmnist from {url} {cause}")
    assert len(message) < 200, message  # the cause in a few words
    assert lines[first + 1:] == [
        f"It needs: {', '.join(sorted(_qmnist_files(), key=_upstream_order))}. "
        "Any of these gets them:",
        f"  1. Retry where {url} is reachable.",
        "  2. Copy the files into a folder DIR (from any source: they are checked against "
        "the same checksums) and run",
        "     tfds build --imports qmnist_tfds qmnist/qmnist --manual_dir DIR",
        "  3. Serve them under their names from a mirror URL and run",
        "     QMNIST_TFDS_MIRROR=URL tfds build --imports qmnist_tfds qmnist/qmnist",
        "     (in Python: tfds.load('qmnist/qmnist', builder_kwargs={'mirror_url': URL})).",
    ]


def _assert_nothing_left(data_dir) -> None:
    assert list(data_dir.rglob("*.tmp.*")) == []
    assert not list(data_dir.glob("qmnist/qmnist/1.0.0*"))


def test_tfds_build_fails_fast_with_the_message_last(tmp_path, monkeypatch):
    """The `tfds` command as a user runs it, on a closed port: its output as a terminal
    shows it, the package's message and help last."""
    url, cause = _source("refused")
    monkeypatch.setenv("QMNIST_TFDS_MIRROR", url)
    data_dir = tmp_path / "data"
    command, env = _tfds_command("qmnist/qmnist", "--data_dir", os.fspath(data_dir))
    env["PYTHONUNBUFFERED"] = "1"  # stdout and stderr in the order a terminal shows them
    start = time.monotonic()
    result = subprocess.run(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300)
    elapsed = time.monotonic() - start
    output = result.stdout
    assert result.returncode != 0
    assert elapsed < LIMIT, (elapsed, output[-3000:])
    _assert_message_then_help(output.rstrip().splitlines(), url, cause)
    assert "Retrying" not in output
    assert "urllib3" not in output  # no chain of nested connection errors
    assert ("Downloading and preparing dataset 19.49 MiB (download: 19.49 MiB, generated: "
            "Unknown size, total: 19.49 MiB)") in output
    _assert_nothing_left(data_dir)


@pytest.mark.parametrize("kind", ["unresolvable", "refused"])
def test_each_cause_is_named_in_a_few_words(tmp_path, monkeypatch, caplog, kind):
    """The same command through its code in this process: the error it raises, for a
    host no resolver knows and for a closed port, with no retry logged."""
    url, cause = _source(kind)
    monkeypatch.setenv("QMNIST_TFDS_MIRROR", url)
    caplog.set_level(logging.WARNING)
    data_dir = tmp_path / "data"
    start = time.monotonic()
    with pytest.raises(tfds.download.DownloadError) as error:
        tfds_in_process("build", "--imports", "qmnist_tfds", "qmnist/qmnist",
                        "--data_dir", os.fspath(data_dir))
    assert time.monotonic() - start < LIMIT
    _assert_message_then_help(f"{type(error.value).__name__}: {error.value}".splitlines(),
                              url, cause)
    assert not any("Retrying" in record.getMessage() for record in caplog.records)
    _assert_nothing_left(data_dir)


def _upstream_order(name: str) -> tuple[int, int]:
    """train before test, images before labels: the order the message lists them in."""
    return ("-test-" in name, "-labels-" in name)


def test_other_datasets_keep_tfds_retries(monkeypatch, caplog):
    """Only the registered URLs skip retries; another URL on the same closed port is
    retried as TFDS does (two retries here instead of ten)."""
    port = _closed_port()
    ours, theirs = (f"http://127.0.0.1:{port}/{name}" for name in ("ours.gz", "theirs.gz"))
    assert fail_fast.register([ours])
    monkeypatch.setattr(downloader, "MAX_RETRIES", 2)
    caplog.set_level(logging.WARNING, logger="urllib3")
    for url, retries in ((ours, 0), (theirs, 2)):
        caplog.clear()
        with pytest.raises(Exception, match="Connection refused"), downloader._open_url(url):
            pass
        assert sum("Retrying" in r.getMessage() for r in caplog.records) == retries, url


def test_a_failed_build_waits_until_tfds_clears_the_finished_downloads(tmp_path):
    """When a download ends, TFDS moves its file out of the temporary folder and removes
    the folder in a callback just after: a failed build waits for that too, so that it
    leaves no temporary folder behind."""
    url = "http://127.0.0.1:9/qmnist/finished-file"
    folder = tmp_path / "finished-file.tmp.0"
    folder.mkdir()
    with fail_fast._lock:
        fail_fast._finished_dirs[url].add(os.fspath(folder))
    try:
        assert not fail_fast.wait_for_running([url], timeout=0.2)
        threading.Timer(0.5, folder.rmdir).start()
        start = time.monotonic()
        assert fail_fast.wait_for_running([url], timeout=30)
        assert not folder.exists() and time.monotonic() - start > 0.4
    finally:
        with fail_fast._lock:
            fail_fast._finished_dirs.pop(url, None)
