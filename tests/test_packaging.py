"""Packaging: the checksums in checksums/ are the ones every kind of install uses;
the requirements setup.py computes for the environment it installs into."""

from __future__ import annotations

import configparser
import os
import re
import runpy
import subprocess
import sys
import zipfile
from types import SimpleNamespace
from unittest import mock

import pytest

import qmnist_tfds
from qmnist_tfds import QMNIST, downloads
from tests.conftest import REPO_ROOT

CHECKSUMS = REPO_ROOT / "checksums" / "qmnist.tsv"


def test_checksums_register_the_six_files_under_pinned_urls():
    infos = QMNIST.url_infos
    assert set(infos) == {downloads.BASE_URL + name for name in downloads.FILES.values()}
    assert re.fullmatch(r"https://raw\.githubusercontent\.com/facebookresearch/qmnist/"
                        r"[0-9a-f]{40}/", downloads.BASE_URL)
    for url, info in infos.items():
        assert info.filename == url.rsplit("/", 1)[1]
        assert re.fullmatch(r"[0-9a-f]{64}", info.checksum)
    md5_names = [line.split("  ")[1] for line in
                 (REPO_ROOT / "checksums" / "qmnist.md5").read_text().splitlines()]
    assert sorted(md5_names) == sorted(downloads.FILES.values())


def test_checksums_agree_with_the_upstream_readme(upstream_dir):
    """Sizes and digests against the table of every upstream file's size, MD5 and SHA-256."""
    table = {}
    for line in (upstream_dir / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[0-9a-f]{64}", cells[3]):
            table[cells[0]] = (int(cells[1]), cells[2], cells[3])
    md5s = dict(line.split("  ")[::-1] for line in
                (REPO_ROOT / "checksums" / "qmnist.md5").read_text().splitlines())
    for name in downloads.FILES.values():
        info = QMNIST.url_infos[downloads.BASE_URL + name]
        assert (info.size, md5s[name], info.checksum) == table[name], name


def test_a_checkout_uses_its_own_checksums_folder():
    """Editable installs and checkouts read (and --register_checksums writes) checksums/."""
    if not os.fspath(qmnist_tfds.__file__).startswith(os.fspath(REPO_ROOT)):
        pytest.skip("qmnist_tfds is imported from an installed copy, not this checkout")
    assert os.fspath(QMNIST._checksums_path) == os.fspath(CHECKSUMS)


def test_a_wheel_install_uses_the_packaged_checksums(tmp_path):
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", os.fspath(wheel_dir), os.fspath(REPO_ROOT)], check=True,
                   cwd=tmp_path)
    (wheel,) = wheel_dir.glob("qmnist_tfds-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert zf.read("qmnist_tfds/checksums/qmnist.tsv") == CHECKSUMS.read_bytes()
    for data_file in ("README.md", "CITATIONS.bib", "TAGS.txt"):
        assert f"qmnist_tfds/qmnist/{data_file}" in names
    assert not any("dummy_data" in n for n in names)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    os.fspath(site), os.fspath(wheel)], check=True, cwd=tmp_path)
    code = ("import qmnist_tfds\n"
            "from qmnist_tfds import QMNIST\n"
            "print(qmnist_tfds.__file__)\n"
            "print(QMNIST._checksums_path)\n"
            "print(len(QMNIST.url_infos))\n"
            "print(QMNIST(data_dir='.').info.citation[:40])\n")
    env = dict(os.environ, PYTHONPATH=os.fspath(site))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    assert out[0].startswith(os.fspath(site))
    assert out[1] == os.fspath(site / "qmnist_tfds" / "checksums" / "qmnist.tsv")
    assert out[2] == "6"
    assert out[3].startswith("@inproceedings{yadav2019coldcase")


def test_dummy_data_is_what_the_generator_writes(tmp_path):
    from qmnist_tfds import synthetic

    synthetic.write_dummy_data(tmp_path)
    committed = sorted(p.name for p in synthetic.DUMMY_DATA_DIR.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (synthetic.DUMMY_DATA_DIR / name).read_bytes()


def _computed_requirements(installed: dict[str, str]) -> list[str]:
    """setup.py's install_requires in an environment holding `installed` (name: version)."""
    dists = [SimpleNamespace(metadata={"Name": name}, version=version)
             for name, version in installed.items()]
    captured = {}
    with mock.patch("setuptools.setup", lambda **kwargs: captured.update(kwargs)), \
            mock.patch("importlib.metadata.distributions", lambda path: dists):
        runpy.run_path(os.fspath(REPO_ROOT / "setup.py"))
    return captured["install_requires"]


def test_the_tfds_commands_imports_come_only_where_tensorflow_is_installed():
    """apache-beam and mlcroissant, which `tfds` imports undeclared, need TensorFlow's presence."""
    without_tf = _computed_requirements({"numpy": "2.1.0", "pip": "25.0"})
    assert not {"apache-beam", "mlcroissant"} & set(without_tf)
    assert "tensorflow-datasets>=4.9.7,<4.10" in without_tf
    assert "numpy>=1.26,<3" in without_tf
    assert not any(r.startswith(("tensorflow>", "tensorflow-cpu")) for r in without_tf)
    with_tf = _computed_requirements({"tensorflow-cpu": "2.19.1", "tfds-nightly": "4.9.9.dev1",
                                      "numpy": "1.26.4"})
    assert set(with_tf) - set(without_tf) == {"apache-beam", "mlcroissant", "tfds-nightly",
                                              "numpy>=1.26,<2", "tensorflow-cpu>=2.19.1,<2.20"}
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    extra = cfg["options.extras_require"]["tensorflow"].split()
    assert {"apache-beam", "mlcroissant"} <= set(extra)
    assert any(r.startswith("tensorflow>=") for r in extra)
