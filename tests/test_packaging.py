"""Packaging: the checksums in checksums/ are the ones every kind of install uses;
the requirements are declared in setup.cfg, the same for every installer."""

from __future__ import annotations

import configparser
import os
import re
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


# `pip wheel` of the checkout builds in its build/ folder: one at a time (pytest-xdist).
@pytest.mark.xdist_group("pip_wheel")
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


def _declared() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / "setup.cfg")
    return cfg


def _lines(value: str) -> list[str]:
    """A setup.cfg list: one requirement a line, comment lines left out."""
    return [line.strip() for line in value.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9._-]+", r).group().lower().replace("_", "-")
            for r in requirements}


def test_the_metadata_is_declared_not_computed():
    """No setup.py reads the environment: setup.cfg declares what every installer gets."""
    assert not (REPO_ROOT / "setup.py").exists()
    options = _declared()["options"]
    assert "install_requires" in options


def test_no_tensorflow_tfds_or_tfds_command_requirement_outside_the_extras():
    """A stack keeps its own TensorFlow and TFDS distributions (tensorflow-cpu,
    tf-nightly, tfds-nightly), and a JAX venv gets no TensorFlow or Beam."""
    cfg = _declared()
    base = _names(_lines(cfg["options"]["install_requires"]))
    assert not base & {"tensorflow", "tensorflow-cpu", "tf-nightly", "tensorflow-datasets",
                       "tfds-nightly", "apache-beam", "mlcroissant", "jax", "grain"}
    # Pinned below 1.21 for protobuf-5 stacks, it would move every other stack's 1.21.0.
    assert "tensorflow-metadata" not in base
    extras = {name: _lines(value) for name, value in cfg["options.extras_require"].items()}
    assert _names(extras["tfds"]) == {"tensorflow-datasets"}
    assert _names(extras["cli"]) == {"apache-beam", "mlcroissant"}
    assert _names(extras["tensorflow"]) == {"tensorflow", "tensorflow-datasets", "apache-beam",
                                            "mlcroissant"}
    assert [r for r in extras["tensorflow"] if r.startswith("tensorflow-datasets")] == \
        extras["tfds"]
    assert not _names(extras["test"]) & {"tensorflow", "tensorflow-datasets", "tfds-nightly"}


@pytest.mark.xdist_group("pip_wheel")
def test_a_wheel_built_beside_tensorflow_requires_what_setup_cfg_declares(tmp_path):
    """`pip wheel` in this environment (which holds TensorFlow and TFDS) writes exactly the
    declared requirements, each extra's under its marker."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", os.fspath(tmp_path), os.fspath(REPO_ROOT)], check=True,
                   cwd=tmp_path)
    (wheel,) = tmp_path.glob("qmnist_tfds-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(name).decode()
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ")]
    cfg = _declared()
    declared = [Requirement(r) for r in _lines(cfg["options"]["install_requires"])]
    for extra, value in cfg["options.extras_require"].items():
        declared += [Requirement(f'{r}; extra == "{extra}"') for r in _lines(value)]
    def key(requirement: Requirement) -> tuple:
        return (canonicalize_name(requirement.name), sorted(requirement.extras),
                str(requirement.specifier), str(requirement.marker))

    assert sorted(map(key, map(Requirement, requires))) == sorted(map(key, declared))
