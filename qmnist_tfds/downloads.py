"""Where the QMNIST files come from: upstream URLs, file names, mirrors.

Kept apart from the builder module so that it reads the environment with the
real `os` even inside TFDS's test case, which mocks `os` in the builder module.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import TypeVar

from etils import epath

# Every data file was added by this upstream commit and never changed since;
# pinning it keeps the URLs valid whatever happens to the branch names.
UPSTREAM_COMMIT = "c5d0468d749822b3dfc4fcb7110a1e94d541b1c1"
BASE_URL = f"https://raw.githubusercontent.com/facebookresearch/qmnist/{UPSTREAM_COMMIT}/"
FILES = {
    "train_images": "qmnist-train-images-idx3-ubyte.gz",
    "train_labels": "qmnist-train-labels-idx2-int.gz",
    "test_images": "qmnist-test-images-idx3-ubyte.gz",
    "test_labels": "qmnist-test-labels-idx2-int.gz",
    "nist_images": "xnist-images-idx3-ubyte.xz",
    "nist_labels": "xnist-labels-idx2-int.xz",
}
CONFIG_FILES = {
    "qmnist": ("train_images", "train_labels", "test_images", "test_labels"),
    "nist": ("nist_images", "nist_labels"),
}
# A folder URL serving the upstream files under their upstream names.
MIRROR_ENV = "QMNIST_TFDS_MIRROR"

Info = TypeVar("Info")


def mirror_base_url(mirror_url: str | None = None) -> str | None:
    """The mirror to download from: the argument, else $QMNIST_TFDS_MIRROR, else None."""
    mirror = mirror_url or os.environ.get(MIRROR_ENV) or None
    return None if mirror is None else mirror.rstrip("/") + "/"


def file_urls(config: str, base_url: str) -> dict[str, str]:
    """Download key -> URL of every file the config needs, under `base_url`."""
    return {key: base_url + FILES[key] for key in CONFIG_FILES[config]}


def mirrored_url_infos(registered: Mapping[str, Info], base_url: str) -> dict[str, Info]:
    """`registered` plus, for every upstream URL in it, the same record under `base_url`.

    A mirror's files are thus verified against exactly the upstream sizes and digests.
    """
    mirrored = dict(registered)
    for url, info in registered.items():
        if url.startswith(BASE_URL):
            mirrored[base_url + url[len(BASE_URL):]] = info
    return mirrored


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and every exception it wraps (causes, contexts, arguments, urllib3 reasons)."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        wrapped = [e.__cause__, e.__context__, getattr(e, "reason", None),
                   getattr(e, "original_error", None), *e.args]
        todo += [w for w in wrapped if isinstance(w, BaseException)]


def connection_failure(error: BaseException, url: str) -> str | None:
    """In a few words, why no connection to `url`'s host could be made: its name did
    not resolve, it refused, or it did not answer in time; None for any other error."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or url
    address = f"{host}:{parts.port or {'http': 80, 'https': 443}.get(parts.scheme, '')}"
    chain = list(_chain(error))
    if any(type(e).__name__ == "ProxyError" for e in chain):
        return None  # the proxy's failure, not the host's: keep the full error
    for e in chain:
        if isinstance(e, socket.gaierror):
            return f"cannot resolve the host name {host}: {e.strerror or e}"
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return f"connection refused by {address}"
    for e in chain:
        if type(e).__name__ == "ConnectTimeoutError" or isinstance(e, socket.timeout):
            return f"no answer from {address} in time"
    return None


def short_cause(error: BaseException, url: str) -> str:
    """`connection_failure`, else the error's type and the first line of its message."""
    known = connection_failure(error, url)
    if known is not None:
        return known
    lines = str(error).strip().splitlines() or [""]
    text = lines[0] if len(lines[0]) <= 300 else lines[0][:297] + "..."
    return f"{type(error).__name__}: {text}"


def failure_help(config: str, urls: Mapping[str, str], error: BaseException, *,
                 caller: str | None = None) -> str:
    """The message of a failed download: what failed, and the three ways out.

    The ways out are a build's, or, with `caller`, the arguments of that function.
    """
    names = [FILES[key] for key in urls]
    base = next(iter(urls.values())).rsplit("/", 1)[0] + "/"
    if caller is None:
        manual = (f"run\n     tfds build --imports qmnist_tfds qmnist/{config} --manual_dir DIR\n")
        mirror = (f"run\n     {MIRROR_ENV}=URL tfds build --imports qmnist_tfds qmnist/{config}\n"
                  f"     (in Python: tfds.load('qmnist/{config}', "
                  "builder_kwargs={'mirror_url': URL})).")
    else:
        manual = f"pass manual_dir=DIR to {caller}.\n"
        mirror = f"set {MIRROR_ENV}=URL."
    return (
        f"Could not download the files of qmnist/{config} from {base} "
        f"({short_cause(error, base)}).\n"
        f"It needs: {', '.join(names)}. Any of these gets them:\n"
        f"  1. Retry where {base} is reachable.\n"
        "  2. Copy the files into a folder DIR (from any source: they are checked "
        f"against the same checksums) and {manual}"
        f"  3. Serve them under their names from a mirror URL and {mirror}"
    )


CHECKSUMS_NAME = "qmnist.tsv"
_PACKAGE_DIR = epath.Path(__file__).parent


def checksums_file() -> epath.Path:
    """The checksums file: `checksums/` of a source checkout, else the installed copy.

    A wheel carries the top-level `checksums/` folder as `qmnist_tfds/checksums/`;
    an editable install or a checkout has no such folder inside the package
    and uses the checkout's own, which `tfds build --register_checksums` updates.
    """
    installed = _PACKAGE_DIR / "checksums" / CHECKSUMS_NAME
    if installed.exists():
        return installed
    return _PACKAGE_DIR.parent / "checksums" / CHECKSUMS_NAME


def download_size(records: Mapping[str, object] | None, config: str,
                  base_url: str) -> int | None:
    """Bytes the config downloads, from the checksums `records`; None if one is missing."""
    urls = file_urls(config, base_url).values()
    if not records or not all(url in records for url in urls):
        return None
    return sum(int(records[url].size) for url in urls)
