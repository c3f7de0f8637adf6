"""Downloads of this package's files that give up at once when the source is unreachable.

TFDS's downloader (`tensorflow_datasets/core/download/downloader.py`) retries
every failed request with urllib3's exponential backoff (10 retries, 0.2 s
doubling): a host name that does not resolve, or a host where nothing
listens, takes about 3.5 minutes to fail, with a warning per retry. For the
URLs given to `register` (this package's files, upstream or on a mirror),
and for no other URL:

- a failed name lookup or a refused connection is not retried, and a
  connection attempt gives up after `CONNECT_TIMEOUT` seconds;
- errors after the connection is made (a reset before the response, HTTP
  500/502/503/504) are retried as TFDS retries them; a transfer cut off in
  the middle fails as it does in TFDS, and the next build downloads again;
- a failed download deletes the temporary folder TFDS made for it
  (`<download dir>/<dataset>/<name>.tmp.<hex>/`), which nothing reads again.

This wraps three private functions of TFDS's downloader
(`tfds_internals.downloader_hooks`); where they are missing, downloads keep
TFDS's own behaviour, and a warning says so.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import requests
import tensorflow_datasets as tfds
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from qmnist_tfds import downloads, tfds_internals

# Seconds to wait for a TCP connection (not for the transfer, which has no limit).
CONNECT_TIMEOUT = 20
# Seconds a failed build waits for the config's other downloads to end.
WAIT_FOR_OTHERS = 30
# As TFDS's downloader: server errors worth retrying, and its backoff.
RETRY_STATUS = (500, 502, 503, 504)
BACKOFF_FACTOR = 0.2

_urls: set[str] = set()
_lock = threading.Lock()
_installed = False
# Downloads of registered URLs submitted and not yet ended, by URL.
_running: collections.Counter[str] = collections.Counter()
_ended = threading.Condition(_lock)
# Temporary folders of downloads that succeeded: TFDS moves the file out and
# removes the folder in a callback that runs just after the download ends.
_finished_dirs: dict[str, set[str]] = collections.defaultdict(set)


def register(urls: Iterable[str]) -> bool:
    """Makes TFDS's downloader fail fast for `urls`; False where its internals differ."""
    with _lock:
        _urls.update(urls)
        return _install()


def download(dl_manager: tfds.download.DownloadManager, config: str,
             urls: Mapping[str, str], *, caller: str | None = None) -> dict[str, Any]:
    """`dl_manager.download(urls)`, failing fast; a failure raises `DownloadError`
    with `downloads.failure_help` (what failed, and the ways out) for `config`,
    or for the function `caller`."""
    if not register(urls.values()):
        logging.warning("TFDS %s's downloader differs from what qmnist_tfds.fail_fast "
                        "wraps: an unreachable source is retried as TFDS retries it.",
                        tfds.__version__)
    try:
        return dl_manager.download(dict(urls))
    except (tfds.download.DownloadError, requests.RequestException, OSError) as e:
        # TFDS raises the first failure; the other files may still be on their way.
        wait_for_running(urls.values(), timeout=WAIT_FOR_OTHERS)
        error = tfds.download.DownloadError(downloads.failure_help(config, urls, e,
                                                                   caller=caller))
        if downloads.connection_failure(e, next(iter(urls.values()))) is None:
            raise error from e
        # The message says why; urllib3's nested errors would bury it (still
        # reachable as the error's __context__).
        raise error from None


def wait_for_running(urls: Iterable[str], timeout: float) -> bool:
    """Waits until no download of `urls` runs and TFDS has removed the temporary
    folders of those that succeeded (at most `timeout` seconds): once TFDS
    reports the first failure, the others may still be running, their temporary
    folders still there. False if some still run or a folder is still there."""
    urls = list(urls)
    deadline = time.monotonic() + timeout
    with _ended:
        if not _ended.wait_for(lambda: not any(_running[url] for url in urls), timeout):
            return False
        folders = {folder for url in urls for folder in _finished_dirs.get(url, ())}
    while any(os.path.exists(folder) for folder in folders):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _count(url: str, change: int) -> None:
    with _ended:
        _running[url] += change
        if _running[url] <= 0:
            del _running[url]
            _ended.notify_all()


def _install() -> bool:
    global _installed
    if _installed:
        return True
    hooks = tfds_internals.downloader_hooks()
    if hooks is None:
        return False
    open_url, download, sync_download, install = hooks

    # Wrapped so that their signatures stay TFDS's (which `tfds_internals` checks).
    @functools.wraps(open_url)
    def _open_url(url: str, **kwargs: Any):
        if url in _urls and url.startswith(("http://", "https://")):
            return _open_failing_fast(url, **kwargs)
        return open_url(url, **kwargs)

    @functools.wraps(download)
    def _download(self, url: str, *args: Any, **kwargs: Any):
        # Submits `_sync_download` to TFDS's download threads.
        if url not in _urls:
            return download(self, url, *args, **kwargs)
        _count(url, +1)
        try:
            return download(self, url, *args, **kwargs)
        except BaseException:
            _count(url, -1)
            raise

    @functools.wraps(sync_download)
    def _sync_download(self, url: str, destination_path, *args: Any, **kwargs: Any):
        if url not in _urls:
            return sync_download(self, url, destination_path, *args, **kwargs)
        try:
            result = sync_download(self, url, destination_path, *args, **kwargs)
        except BaseException:
            # TFDS made this folder for this download alone and only reads it
            # back when the download succeeds.
            shutil.rmtree(os.fspath(destination_path), ignore_errors=True)
            raise
        else:
            with _lock:  # (the folders TFDS has removed are forgotten here)
                _finished_dirs[url] = {folder for folder in _finished_dirs[url]
                                       if os.path.exists(folder)}
                _finished_dirs[url].add(os.fspath(destination_path))
            return result
        finally:
            _count(url, -1)

    install(_open_url, _download, _sync_download)
    _installed = True
    return True


def retry_policy() -> Retry:
    """TFDS's retries, except for failed connections (name lookup, refused, timed out)."""
    return Retry(
        total=tfds_internals.max_retries(),
        connect=0,
        backoff_factor=BACKOFF_FACTOR,
        status_forcelist=list(RETRY_STATUS),
        raise_on_redirect=True,
        raise_on_status=True,
    )


@contextlib.contextmanager
def _open_failing_fast(url: str, **kwargs: Any) -> Iterator[tuple[requests.Response,
                                                                 Iterable[bytes]]]:
    """TFDS's `_open_with_requests` (without its Google Drive handling), with `retry_policy`."""
    with requests.Session() as session:
        adapter = HTTPAdapter(max_retries=retry_policy())
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        with session.get(url, stream=True, timeout=(CONNECT_TIMEOUT, None),
                         **kwargs) as response:
            if response.status_code != 200:
                raise tfds.download.DownloadError(
                    f"Failed to get url {response.url}. HTTP code: {response.status_code}.")
            yield response, response.iter_content(chunk_size=io.DEFAULT_BUFFER_SIZE)
