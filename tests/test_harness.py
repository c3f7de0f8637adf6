"""benchmarks/harness.py: the child protocol and the summaries the benchmarks share."""

from __future__ import annotations

import os
import textwrap

import pytest

from tests.conftest import BENCHMARKS_DIR, REPO_ROOT, load_benchmark

harness = load_benchmark("harness")

# A script with a child mode, as the benchmarks have: it answers with its
# arguments and what it found in its environment, after other output.
CHILD = textwrap.dedent(f"""
    import os, sys
    sys.path.insert(0, {os.fspath(BENCHMARKS_DIR)!r})
    import harness

    kind, *rest = sys.argv[2:]
    print("not the answer")
    if kind == "fail":
        sys.exit("the child's own words")
    if kind == "answer":
        harness.answer({{"args": rest, "log_level": os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
                         "path": os.environ["PYTHONPATH"].split(os.pathsep)}})
""")


@pytest.fixture
def child_script(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return script


def test_child_answers_with_its_last_json_line(child_script, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setenv("PYTHONPATH", "elsewhere")
    result = harness.run_child(child_script, "answer", 1, child_script.parent)
    assert result["args"] == ["1", os.fspath(child_script.parent)]
    assert result["log_level"] == "3"
    assert result["path"] == [os.fspath(REPO_ROOT), "elsewhere"]
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # the caller's own setting stands
    assert harness.run_child(child_script, "answer")["log_level"] == "0"


@pytest.mark.parametrize(("kind", "message"), [
    ("fail", "(?s)exit code 1.*the child's own words"),
    ("silent", "printed no JSON line last:\nnot the answer"),
])
def test_child_failure_shows_its_output(child_script, kind, message):
    with pytest.raises(RuntimeError, match=message):
        harness.run_child(child_script, kind)


def test_spread_is_median_and_range():
    assert harness.spread([3.0, 1.0, 10.0, 2.0]) == {
        "median": 2.5, "min": 1.0, "max": 10.0, "all": [3.0, 1.0, 10.0, 2.0]}
    assert harness.spread([4.0]) == {"median": 4.0, "min": 4.0, "max": 4.0, "all": [4.0]}
    text = harness.ratio_text(harness.spread([1.5, 0.25, 12.0]))
    assert text == " 1.50x  0.25-12.00x"
