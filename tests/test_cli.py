"""The real `tfds build` command, offline, on the dummy files.

Most runs go through the command's own code in this process (`tfds_in_process`), as
TFDS's own CLI tests run it. Those whose subject needs a process of its own run
the installed `tfds` command: the one that checks what a build writes outside
its data_dir (HOME and TMPDIR included), and the one that imports the package
from a copy of the checkout.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import download_manager

import qmnist_tfds
from qmnist_tfds import downloads, idx
from tests.conftest import DUMMY_DATA, REPO_ROOT, TESTS_DIR, config_files, registered_checksums


def _tfds_command(*args: str, checksums=None) -> tuple[list[str], dict[str, str]]:
    """The `tfds build` command line and environment; `checksums` registers test files."""
    tfds_cli = shutil.which("tfds", path=os.path.dirname(sys.executable)) or shutil.which("tfds")
    assert tfds_cli, "the `tfds` command is not installed"
    env = dict(os.environ)
    imports = "qmnist_tfds"
    if checksums is not None:
        env["QMNIST_TFDS_TEST_CHECKSUMS"] = os.fspath(checksums)
        env["PYTHONPATH"] = os.pathsep.join([os.fspath(TESTS_DIR), env.get("PYTHONPATH", "")])
        imports += ",checksums_plugin"
    return [tfds_cli, "build", "--imports", imports, *args], env


def tfds_in_process(*args: str, checksums=None) -> None:
    """`tfds ARGS` in this process, through the code the `tfds` command runs: its entry
    point is `launch_cli` of `tensorflow_datasets.scripts.cli.main`, which is
    `absl.app.run(main, flags_parser=_parse_flags)`.

    `app.run` parses the process's absl flags, which a process parses once, and
    ends the process with `sys.exit`; this calls `_parse_flags` and `main` as
    TFDS's own CLI tests do. The command line is parsed against absl flags of its
    own, empty, so that the process's are left as they are (other modules of the
    suite define some: docs/examples/grain_loader.py's `--data_dir`). A failing
    command raises its error here, where the `tfds` command would print it and
    exit non-zero. `checksums`, as for `_tfds_command`, makes the builder verify
    against that file, here for the call only.
    """
    from absl import flags
    from absl import logging as absl_logging
    from tensorflow_datasets.scripts.cli import main

    with mock.patch.object(flags, "FLAGS", flags.FlagValues()):
        parsed = main._parse_flags(["tfds", *args])
    verbosity = absl_logging.get_verbosity()  # `main` sets INFO, as for a terminal
    try:
        with (registered_checksums(checksums) if checksums is not None
              else contextlib.nullcontext()):
            main.main(parsed)
    finally:
        absl_logging.set_verbosity(verbosity)


def _tfds_build(*args: str, checksums=None) -> None:
    """`tfds build --imports qmnist_tfds ARGS` in this process (`tfds_in_process`)."""
    tfds_in_process("build", "--imports", "qmnist_tfds", *args, checksums=checksums)


def test_tfds_build_both_configs_offline(tmp_path):
    data_dir = tmp_path / "data"
    for config in ("qmnist", "nist"):
        # Each config's manual dir holds its own files only: building `qmnist`
        # must not need the 51 MB NIST file.
        manual_dir = config_files(config, tmp_path / f"manual_{config}")
        _tfds_build(f"qmnist/{config}", "--manual_dir", os.fspath(manual_dir),
                    "--data_dir", os.fspath(data_dir), checksums=DUMMY_DATA / "checksums.tsv")
    counts = {}
    for config in ("qmnist", "nist"):
        builder = tfds.builder(f"qmnist/{config}", data_dir=os.fspath(data_dir))
        assert builder.is_prepared()
        counts.update({k: v.num_examples for k, v in builder.info.splits.items()})
    assert counts == {"train": 20, "test": 10_010, "test10k": 10_000, "test50k": 10, "nist": 30}
    nist = tfds.as_numpy(tfds.load("qmnist/nist", split="nist", data_dir=os.fspath(data_dir),
                                   batch_size=-1))
    np.testing.assert_array_equal(
        nist["image"][..., 0], idx.read_idx(DUMMY_DATA / downloads.FILES["nist_images"]))


@pytest.mark.parametrize("config", ["qmnist/qmnist", "qmnist/nist"])
def test_tfds_build_rejects_files_failing_the_real_checksums(tmp_path, config):
    data_dir = tmp_path / "data"
    with pytest.raises(download_manager.NonMatchingChecksumError, match="has wrong checksum"):
        _tfds_build(config, "--manual_dir", os.fspath(DUMMY_DATA), "--data_dir",
                    os.fspath(data_dir))
    assert not [p for p in data_dir.rglob("*.tfrecord*") if "incomplete." not in str(p)]


def test_register_checksums_rewrites_the_checkouts_checksums_folder(tmp_path):
    """In a copy of the checkout, so that the real checksums file is never touched.

    The package's code comes from wherever it is imported from (the checkout, or
    an install, which carries its own checksums folder, left out of the copy).
    """
    checkout = tmp_path / "checkout"
    shutil.copytree(pathlib.Path(qmnist_tfds.__file__).parent, checkout / "qmnist_tfds",
                    ignore=shutil.ignore_patterns("__pycache__", "dummy_data", "checksums"))
    shutil.copytree(REPO_ROOT / "checksums", checkout / "checksums")
    real_before = (REPO_ROOT / "checksums" / "qmnist.tsv").read_bytes()
    env = dict(os.environ, PYTHONPATH=os.fspath(checkout))
    tfds_cli = shutil.which("tfds", path=os.path.dirname(sys.executable)) or shutil.which("tfds")
    result = subprocess.run(
        [tfds_cli, "build", "--imports", "qmnist_tfds", "qmnist/nist", "--register_checksums",
         "--manual_dir", os.fspath(DUMMY_DATA), "--data_dir", os.fspath(tmp_path / "data")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    registered = (checkout / "checksums" / "qmnist.tsv").read_text().splitlines()
    dummy = (DUMMY_DATA / "checksums.tsv").read_text().splitlines()
    real = real_before.decode().splitlines()
    assert registered == sorted([line for line in real if "/xnist-" not in line]
                                + [line for line in dummy if "/xnist-" in line])
    assert (REPO_ROOT / "checksums" / "qmnist.tsv").read_bytes() == real_before


def test_a_build_writes_only_inside_its_data_dir(tmp_path):
    """With HOME, TMPDIR and the working directory in a sandbox, nothing lands outside data_dir."""
    sandbox = tmp_path / "sandbox"
    manual = config_files("nist", sandbox / "manual")
    (sandbox / "home").mkdir()
    (sandbox / "tmp").mkdir()
    before = {p for p in sandbox.rglob("*")}
    command, env = _tfds_command("qmnist/nist", "--manual_dir", os.fspath(manual), "--data_dir",
                                 os.fspath(sandbox / "data"),
                                 checksums=DUMMY_DATA / "checksums.tsv")
    env.update(HOME=os.fspath(sandbox / "home"), TMPDIR=os.fspath(sandbox / "tmp"))
    result = subprocess.run(command, env=env, cwd=sandbox, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    created = {p for p in sandbox.rglob("*") if p.is_file()} - before
    # Libraries imported along the way write their own config and caches under HOME:
    # Keras (through TensorFlow) its keras.json, Matplotlib (through TFDS) its font list.
    library_dirs = [sandbox / "home" / ".keras", sandbox / "home" / ".cache" / "matplotlib"]
    assert any(p.name == "dataset_info.json" for p in created)
    outside = [p for p in created if (sandbox / "data") not in p.parents
               and not any(d in p.parents for d in library_dirs)]
    assert outside == []


def test_tfds_build_array_record_for_data_source(tmp_path):
    """The README's random-access build: `--file_format array_record`, read by data_source."""
    data_dir = tmp_path / "data"
    _tfds_build("qmnist/qmnist", "--file_format", "array_record", "--manual_dir",
                os.fspath(DUMMY_DATA), "--data_dir", os.fspath(data_dir),
                checksums=DUMMY_DATA / "checksums.tsv")
    source = tfds.data_source("qmnist", split="test50k", data_dir=os.fspath(data_dir))
    images = idx.read_idx(DUMMY_DATA / downloads.FILES["test_images"])
    assert len(source) == 10
    np.testing.assert_array_equal(source[3]["image"][..., 0], images[10_003])
