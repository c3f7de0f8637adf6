"""The checks CI makes on installs (`.ci/stack_check.py`) and wheels (`.ci/same_metadata.py`),
on hand-made `pip freeze` files and wheels."""

from __future__ import annotations

import importlib.util
import zipfile

import pytest

from tests.conftest import REPO_ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / ".ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stack_check = _load("stack_check")
same_metadata = _load("same_metadata")

STACK = "# a stack\ntensorflow-datasets==4.9.9\ntensorflow-cpu==2.19.1\n"
BEFORE = {"tensorflow-datasets": "4.9.9", "tensorflow-cpu": "2.19.1", "numpy": "2.1.3",
          "protobuf": "5.29.6", "tensorflow-metadata": "1.21.0", "pyarrow": "26.0.1"}


@pytest.fixture
def stack_file(tmp_path):
    path = tmp_path / "stack.txt"
    path.write_text(STACK)
    return str(path)


def _problems(stack_file, after, *, breaks=(), keep_all=False, may_move=(), absent=()):
    return stack_check.problems(stack_file, BEFORE, after, set(), list(breaks),
                                keep_all=keep_all, may_move=set(may_move), absent=set(absent))


def test_additions_pass_and_every_kind_of_move_is_named(stack_file):
    added = dict(BEFORE, filelock="4.3.2")
    assert _problems(stack_file, added, keep_all=True) == []
    moved = dict(added, pyarrow="25.0.1")
    assert _problems(stack_file, moved) == []  # a step that may move what it needs
    assert _problems(stack_file, moved, keep_all=True) == ["pyarrow changed: 26.0.1 -> 25.0.1"]
    assert _problems(stack_file, dict(BEFORE, protobuf="6.33.6")) == [
        "protobuf changed: 5.29.6 -> 6.33.6"]
    assert _problems(stack_file, dict(BEFORE, protobuf="6.33.6"), may_move=["protobuf"]) == []


def test_a_mend_is_allowed_only_where_the_stack_file_says_so(stack_file):
    mended = dict(BEFORE, **{"tensorflow-metadata": "1.17.3"})
    assert _problems(stack_file, mended, keep_all=True) == [
        "tensorflow-metadata changed: 1.21.0 -> 1.17.3"]
    assert _problems(stack_file, mended, keep_all=True, may_move=["tensorflow-metadata"]) == []


def test_a_second_tensorflow_or_tfds_distribution_fails(stack_file):
    second = dict(BEFORE, tensorflow="2.21.0")
    assert _problems(stack_file, second) == [
        "2 TensorFlow distributions after the install: "
        "{'tensorflow-cpu': '2.19.1', 'tensorflow': '2.21.0'}",
        "TensorFlow distributions changed: {'tensorflow-cpu': '2.19.1'} -> "
        "{'tensorflow-cpu': '2.19.1', 'tensorflow': '2.21.0'}"]
    nightly = dict(BEFORE, **{"tfds-nightly": "4.9.9.dev1"})
    assert any(p.startswith("2 TFDS distributions") for p in _problems(stack_file, nightly))


def test_absent_distributions_and_new_broken_requirements_fail(stack_file):
    beam = dict(BEFORE, **{"apache-beam": "2.77.0"})
    assert _problems(stack_file, beam, absent=["apache-beam"]) == ["apache-beam is installed"]
    broken = ["tensorflow-cpu 2.19.1 has requirement protobuf<6, but you have protobuf 6.33.6."]
    assert _problems(stack_file, BEFORE, breaks=broken) == ["pip check: " + broken[0]]
    assert _problems(stack_file, BEFORE, breaks=["No broken requirements found."]) == []


def test_freeze_names_are_normalized_and_tensorflow_and_tfds_pinned(tmp_path):
    path = tmp_path / "freeze.txt"
    path.write_text("tensorflow_cpu==2.19.1\nimportlib_resources==7.1.0\n"
                    "qmnist-tfds @ file:///dist/qmnist_tfds-1.1.0-py3-none-any.whl\n")
    assert stack_check.freeze(str(path)) == {
        "tensorflow-cpu": "2.19.1", "importlib-resources": "7.1.0",
        "qmnist-tfds": "@ file:///dist/qmnist_tfds-1.1.0-py3-none-any.whl"}
    assert stack_check.pins(str(path)) == "tensorflow-cpu==2.19.1"
    path.write_text("numpy==2.4.6\ntfds-nightly==4.9.9.dev1\ntensorflow==2.21.0\n")
    assert stack_check.pins(str(path)) == "tensorflow==2.21.0 tfds-nightly==4.9.9.dev1"
    assert stack_check.pins(str(path), ("TensorFlow",)) == "tensorflow==2.21.0"
    path.write_text("numpy==2.4.6\n")
    assert stack_check.pins(str(path)) == ""


def test_same_metadata_fails_on_any_difference(tmp_path, capsys):
    def wheel(name: str, requires: str) -> str:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("pkg-1.0.dist-info/METADATA",
                             f"Metadata-Version: 2.4\nName: pkg\nRequires-Dist: {requires}\n")
        return str(path)

    first, same = wheel("a.whl", "numpy>=1.26"), wheel("b.whl", "numpy>=1.26")
    other = wheel("c.whl", "numpy>=1.26,<2")
    assert same_metadata.main([first, same]) == 0
    assert capsys.readouterr().out == "Requires-Dist: numpy>=1.26\n"
    assert same_metadata.main([first, same, other]) == 1
    assert "+Requires-Dist: numpy>=1.26,<2" in capsys.readouterr().err
