"""Downloads from a mirror on 127.0.0.1: verified like upstream, and interrupted ones."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

from qmnist_tfds import downloads, idx
from tests.conftest import DUMMY_DATA, registered_checksums
from tests.test_cli import _tfds_build


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; files named in `server.cut` are cut off halfway through, and
    the first `server.drop[name]` requests of a file get no answer (connection closed)."""

    def log_message(self, *args):
        pass

    def send_head(self):
        name = os.path.basename(self.path)
        with self.server.lock:
            dropped = self.server.drop.get(name, 0)
            if dropped:
                self.server.drop[name] = dropped - 1
        if dropped:
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        return super().send_head()

    def copyfile(self, source, outputfile):
        if os.path.basename(self.path) in self.server.cut:
            data = source.read()
            outputfile.write(data[: len(data) // 2])
            outputfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        super().copyfile(source, outputfile)


@pytest.fixture()
def mirror(tmp_path):
    """A local HTTP server with the dummy files under /qmnist/; yields (folder, url, server)."""
    folder = tmp_path / "mirror" / "qmnist"
    shutil.copytree(DUMMY_DATA, folder)
    handler = functools.partial(_Handler, directory=os.fspath(folder.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.cut = set()
    server.drop = {}
    server.lock = threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/qmnist/", server
    finally:
        server.shutdown()
        server.server_close()


def _build_from(url, data_dir, config="nist"):
    with registered_checksums(DUMMY_DATA / "checksums.tsv"):
        builder = tfds.builder("qmnist", config=config, data_dir=os.fspath(data_dir),
                               mirror_url=url)
        builder.download_and_prepare()
    return builder


def test_mirror_builds_and_is_verified(tmp_path, mirror):
    _, url, _ = mirror
    # As the README shows it: tfds.load with the builder argument.
    with registered_checksums(DUMMY_DATA / "checksums.tsv"):
        ds = tfds.load("qmnist/nist", split="nist", data_dir=os.fspath(tmp_path / "data"),
                       builder_kwargs={"mirror_url": url.rstrip("/")}, batch_size=-1)
    nist = tfds.as_numpy(ds)
    np.testing.assert_array_equal(nist["image"][..., 0],
                                  idx.read_idx(DUMMY_DATA / downloads.FILES["nist_images"]))


def test_mirror_serving_other_bytes_is_rejected(tmp_path, mirror):
    folder, url, _ = mirror
    labels = folder / downloads.FILES["nist_labels"]
    labels.write_bytes(labels.read_bytes()[:-1] + b"\0")
    with pytest.raises(download_manager.NonMatchingChecksumError, match="has wrong checksum"
                       ) as error:
        _build_from(url, tmp_path / "data")
    assert f"{url}{downloads.FILES['nist_labels']}" in str(error.value)
    builder = tfds.builder("qmnist", config="nist", data_dir=os.fspath(tmp_path / "data"))
    assert not builder.is_prepared()


def test_mirror_from_the_environment_through_the_cli(tmp_path, mirror, monkeypatch):
    _, url, _ = mirror
    monkeypatch.setenv(downloads.MIRROR_ENV, url)
    _tfds_build("qmnist/nist", "--data_dir", os.fspath(tmp_path / "data"),
                checksums=DUMMY_DATA / "checksums.tsv")
    builder = tfds.builder("qmnist/nist", data_dir=os.fspath(tmp_path / "data"))
    assert builder.info.splits["nist"].num_examples == 30


def test_interrupted_download_fails_clearly_then_a_rerun_succeeds(tmp_path, mirror):
    _, url, server = mirror
    server.cut.add(downloads.FILES["nist_images"])
    with pytest.raises(tfds.download.DownloadError) as error:
        _build_from(url, tmp_path / "data")
    message = str(error.value)
    assert f"Could not download the files of qmnist/nist from {url} (" in message
    assert "ChunkedEncodingError" in message
    assert downloads.FILES["nist_images"] in message
    assert not tfds.builder("qmnist", config="nist",
                            data_dir=os.fspath(tmp_path / "data")).is_prepared()
    assert _tmp_folders(tmp_path / "data") == []  # nor the cut-off part of the file
    server.cut.clear()
    assert _build_from(url, tmp_path / "data").is_prepared()


def _tmp_folders(data_dir):
    return sorted(p.name for p in data_dir.rglob("*.tmp.*"))


def test_connection_dropped_before_the_response_is_retried(tmp_path, mirror):
    """A failed connection is not retried, but a connection closed without an answer is,
    as TFDS retries it."""
    _, url, server = mirror
    server.drop[downloads.FILES["nist_images"]] = 2
    assert _build_from(url, tmp_path / "data").is_prepared()
    assert server.drop[downloads.FILES["nist_images"]] == 0
    assert _tmp_folders(tmp_path / "data") == []


def test_unreachable_source_names_the_three_ways_out(tmp_path):
    with socket.socket() as probe:  # a port of 127.0.0.1 where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/qmnist/"
    start = time.monotonic()
    with pytest.raises(tfds.download.DownloadError) as error:
        _build_from(url, tmp_path / "data", config="qmnist")
    assert time.monotonic() - start < 5  # no retries: TFDS's backoff alone takes minutes
    message = str(error.value)
    assert message.startswith(f"Could not download the files of qmnist/qmnist from {url} "
                              f"(connection refused by 127.0.0.1:{port}).\n")
    assert ", ".join(downloads.FILES[k] for k in downloads.CONFIG_FILES["qmnist"]) in message
    assert "tfds build --imports qmnist_tfds qmnist/qmnist --manual_dir DIR" in message
    assert "QMNIST_TFDS_MIRROR=URL tfds build --imports qmnist_tfds qmnist/qmnist" in message
    # The cause is in the message; urllib3's chain of errors is not printed under it.
    assert error.value.__suppress_context__ and error.value.__cause__ is None
    assert _tmp_folders(tmp_path / "data") == []
