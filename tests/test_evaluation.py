"""`qmnist_tfds.evaluation` against the paper's worked examples, statsmodels' normal
intervals, hand-made predictions and the real test label file."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from qmnist_tfds import downloads, evaluation, idx


def _predictions(labels: np.ndarray, wrong: np.ndarray) -> np.ndarray:
    """`labels`, except at the rows `wrong` (a mask), where another class is predicted."""
    return np.where(wrong, (labels + 1) % 10, labels)


def test_paper_examples_for_one_classifier():
    # "100 errors in 10,000 is 1% +- 0.2%" (section 3.1, Eq. 1 at 95%).
    one = evaluation.interval(100, 10_000)
    assert one.rate == 0.01
    assert round(100 * (one.high - one.low) / 2, 1) == 0.2
    assert str(one) == "1.00% +- 0.20% (100 errors in 10000)"
    # n1 = 200 errors after K = 50 uses of the test set: 2% +- 0.5%.
    used = evaluation.interval(200, 10_000, experiments=50)
    assert round(100 * (used.high - used.low) / 2, 1) == 0.5
    assert evaluation.interval(200, 10_000).high - 0.02 < 0.003  # +- 0.27% for one use


def test_paper_example_for_a_comparison():
    """n = 10,000, n12 = 40, n21 = 10: A is worse at 95% up to K = 4,526 comparisons."""
    labels = np.zeros(10_000, dtype=np.int64)
    a_only, b_only, both = np.zeros((3, 10_000), dtype=bool)
    a_only[:40] = True
    b_only[40:50] = True
    both[50:200] = True  # errors of both classifiers count for neither
    a = _predictions(labels, a_only | both)
    b = _predictions(labels, b_only | both)
    result = evaluation.compare(a, b, labels)
    assert (result.a_only, result.b_only, result.n) == (40, 10, 10_000)
    assert result.difference == 30 / 10_000
    assert math.isclose(result.margin, 1.6448536 * math.sqrt(50) / 10_000, rel_tol=1e-6)
    assert result.significant
    assert evaluation.compare(a, b, labels, comparisons=4526).significant
    assert not evaluation.compare(a, b, labels, comparisons=4527).significant
    assert not evaluation.compare(b, a, labels).significant  # B is not worse than A
    assert not evaluation.compare(labels, labels, labels).significant  # no errors at all
    assert evaluation.error_rate(a, labels).errors == 190


@pytest.mark.parametrize(("errors", "n"), [(0, 100), (3, 100), (82, 10_000), (540, 50_000),
                                           (599, 600), (5_000, 60_000)])
@pytest.mark.parametrize(("confidence", "experiments"), [(0.95, 1), (0.99, 1), (0.9, 1),
                                                         (0.95, 50), (0.8, 7)])
def test_intervals_are_statsmodels_normal_intervals(errors, n, confidence, experiments):
    labels = np.arange(n) % 10
    wrong = np.zeros(n, dtype=bool)
    wrong[np.random.default_rng(errors).permutation(n)[:errors]] = True
    result = evaluation.error_rate(_predictions(labels, wrong), labels, confidence=confidence,
                                   experiments=experiments)
    low, high = proportion_confint(errors, n, alpha=(1 - confidence) / experiments,
                                   method="normal")
    assert (result.errors, result.n) == (errors, n)
    assert result.rate == errors / n
    assert math.isclose(result.low, low, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(result.high, high, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: evaluation.error_rate([1, 2], [1, 2, 3]), "^predictions has 2 entries; expected 3"),
    (lambda: evaluation.error_rate([1.5, 2], [1, 2]), "^predictions must hold integer classes"),
    (lambda: evaluation.error_rate(["1", "2"], [1, 2]), "^predictions must hold integer"),
    (lambda: evaluation.error_rate([1, 10], [1, 2]), r"^predictions\[1\] is 10, not a class"),
    (lambda: evaluation.error_rate([1, 2], [-1, 2]), r"^labels\[0\] is -1, not a class"),
    (lambda: evaluation.error_rate([[1, 2]], [1, 2]), "^predictions must be one class per"),
    (lambda: evaluation.error_rate([], []), "^labels is empty"),
    (lambda: evaluation.error_rate([1], [1], confidence=1), "^confidence must be strictly"),
    (lambda: evaluation.error_rate([1], [1], confidence=0), "^confidence must be strictly"),
    (lambda: evaluation.error_rate([1], [1], confidence=95), "^confidence must be strictly"),
    (lambda: evaluation.error_rate([1], [1], experiments=0), "^experiments must be a positive"),
    (lambda: evaluation.compare([1, 2], [1], [1, 2]), "^predictions_b has 1 entries; expected 2"),
    (lambda: evaluation.compare([1], [1, 2], [1, 2]), "^predictions_a has 1 entries; expected 2"),
    (lambda: evaluation.compare([1], [1], [1], comparisons=1.5), "^comparisons must be a"),
    (lambda: evaluation.compare([1], [1], [1], confidence=-0.1), "^confidence must be"),
])
def test_inputs_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_float_predictions_holding_whole_classes_are_accepted():
    assert evaluation.error_rate(np.array([1.0, 2.0]), np.array([1, 3])).errors == 1


@pytest.fixture(scope="module")
def test_labels(upstream_dir):
    return idx.read_extended_labels(upstream_dir / downloads.FILES["test_labels"])


def _row_table(result: evaluation.Report) -> list[tuple[str, str, int, int]]:
    return [(row.name, row.writers, row.error.n, row.error.errors) for row in result.rows]


def test_report_on_the_real_test_labels(upstream_dir, test_labels, tmp_path):
    labels, series = test_labels[:, 0], test_labels[:, 1]
    # Wrong on every 10th digit of hsf4 in test10k, on every hsf1 digit in test50k.
    rows = np.arange(60_000)
    wrong = (((rows < 10_000) & (series == 4) & (rows % 10 == 0))
             | ((rows >= 10_000) & (series == 1)))
    hsf4_10k = int(np.count_nonzero(wrong[:10_000]))
    predictions = _predictions(labels, wrong)
    result = evaluation.report(predictions, "test", data_dir=tmp_path, manual_dir=upstream_dir)
    census, students = "Census Bureau employees", "high-school students"
    assert _row_table(result) == [
        ("test", "all", 60_000, hsf4_10k + 11_956),
        ("test10k", "all", 10_000, hsf4_10k),
        ("test10k hsf0", census, 4_999, 0),
        ("test10k hsf4", students, 5_001, hsf4_10k),
        ("test50k", "all", 50_000, 11_956),
        ("test50k hsf0", census, 13_450, 0),
        ("test50k hsf1", census, 11_956, 11_956),
        ("test50k hsf4", students, 24_594, 0),
    ]
    assert result.rows[3].error == evaluation.interval(hsf4_10k, 5_001)
    text = str(result).splitlines()
    assert text[0].split() == ["digits", "writers", "n", "errors", "error", "95%", "interval"]
    assert text[5].split()[:6] == ["test10k", "hsf4", "high-school", "students", "5,001",
                                   f"{hsf4_10k:,}"]
    assert text[-2].endswith("11,956  100.00%  100.00% - 100.00%")

    part = evaluation.report(predictions[10_000:], "test50k", data_dir=tmp_path,
                             manual_dir=upstream_dir)
    assert _row_table(part) == [_row_table(result)[i] for i in (4, 5, 6, 7)]
    part = evaluation.report(predictions[:10_000], "test10k", data_dir=tmp_path,
                             manual_dir=upstream_dir)
    assert _row_table(part) == [_row_table(result)[i] for i in (1, 2, 3)]
    with pytest.raises(ValueError, match="^predictions has 10000 entries; expected 50000"):
        evaluation.report(predictions[:10_000], "test50k", data_dir=tmp_path,
                          manual_dir=upstream_dir)
    with pytest.raises(ValueError, match="^split must be one of"):
        evaluation.report(predictions, "train", data_dir=tmp_path, manual_dir=upstream_dir)


def test_command_prints_the_report(upstream_dir, test_labels, tmp_path, capsys):
    path = tmp_path / "predictions.npy"
    np.save(path, test_labels[:10_000, 0])
    evaluation.main([str(path), "--split", "test10k", "--data_dir", str(tmp_path / "data"),
                     "--manual_dir", str(upstream_dir), "--confidence", "0.99"])
    out = capsys.readouterr().out.splitlines()
    assert "99% interval" in out[0]
    assert [line.split()[0] for line in out[2:]] == ["test10k", "test10k", "test10k"]
    assert out[2].split()[2:5] == ["10,000", "0", "0.00%"]
