"""Test errors with confidence intervals, and paired comparisons, as in the QMNIST paper.

Section 3.1 of "Cold Case: The Lost MNIST Digits" (Yadav and Bottou, 2019):

- a test error nu = n1 / n is reported as nu +- z * sqrt(nu * (1 - nu) / n),
  z the two-sided normal quantile of eta = 1 - confidence (about 1.96 at 95%);
- classifier A is worse than B on the same digits, with confidence
  1 - eta, when (n12 - n21) / n >= z * sqrt(n12 + n21) / n, z the one-sided
  quantile of eta (about 1.645 at 95%), n12 counting the digits only A gets
  wrong and n21 those only B gets wrong.

A test set used for K experiments (or K comparisons) divides eta by K
(Bonferroni). Intervals are clipped to [0, 1], as statsmodels'
`proportion_confint(method="normal")` clips them.

`report` gives these rows for a QMNIST test split and for its parts (MNIST's
test set, the 50,000 lost digits) and their writer populations; it reads the
labels from the extended-label files (`qmnist_tfds.metadata.label_files`).
Numpy only: no TensorFlow.

    python -m qmnist_tfds.evaluation PREDICTIONS.npy --split test
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
from collections.abc import Sequence

import numpy as np

from qmnist_tfds import examples, metadata
from qmnist_tfds.qmnist import qmnist_dataset_builder

TEST10K_SIZE = qmnist_dataset_builder.TEST10K_SIZE
SPLITS = ("test", "test10k", "test50k")
# The writers of each NIST Handprinted Sample Form series.
HSF_WRITERS = {0: "Census Bureau employees", 1: "Census Bureau employees",
               2: "Census Bureau employees", 3: "Census Bureau employees",
               4: "high-school students"}


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1; got {confidence!r}")


def _check_count(argument: str, count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"{argument} must be a positive integer; got {count!r}")


def z_two_sided(confidence: float, experiments: int = 1) -> float:
    """The normal quantile of Eq. 1: P(|Z| > z) = (1 - confidence) / experiments."""
    _check_confidence(confidence)
    _check_count("experiments", experiments)
    return statistics.NormalDist().inv_cdf(1 - (1 - confidence) / experiments / 2)


def z_one_sided(confidence: float, comparisons: int = 1) -> float:
    """The normal quantile of Eq. 2: P(Z > z) = (1 - confidence) / comparisons."""
    _check_confidence(confidence)
    _check_count("comparisons", comparisons)
    return statistics.NormalDist().inv_cdf(1 - (1 - confidence) / comparisons)


def classes(argument: str, values, length: int | None = None) -> np.ndarray:
    """`values` as a 1-D int64 array of classes 0-9; ValueError naming `argument` if not."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{argument} must be one class per digit (1-D); got shape {array.shape}")
    if length is not None and len(array) != length:
        raise ValueError(f"{argument} has {len(array)} entries; expected {length}")
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(f"{argument} must hold integer classes; got dtype {array.dtype} "
                         "(take the argmax of scores first)")
    bad = np.flatnonzero((array < 0) | (array >= examples.NUM_CLASSES))
    if bad.size:
        raise ValueError(f"{argument}[{bad[0]}] is {array[bad[0]]}, not a class "
                         f"0-{examples.NUM_CLASSES - 1} ({bad.size} such entries)")
    return array.astype(np.int64, copy=False)


@dataclasses.dataclass(frozen=True)
class ErrorRate:
    """A test error and its interval: `rate` = `errors` / `n`, within [`low`, `high`]."""

    errors: int
    n: int
    rate: float
    low: float
    high: float
    confidence: float

    def __str__(self) -> str:
        return (f"{100 * self.rate:.2f}% +- {100 * (self.high - self.low) / 2:.2f}% "
                f"({self.errors} errors in {self.n})")


def interval(errors: int, n: int, *, confidence: float = 0.95,
             experiments: int = 1) -> ErrorRate:
    """Eq. 1 for `errors` in `n` digits, Bonferroni-corrected over `experiments`."""
    if n < 1:
        raise ValueError(f"n must be at least 1; got {n}")
    rate = errors / n
    margin = z_two_sided(confidence, experiments) * math.sqrt(rate * (1 - rate) / n)
    return ErrorRate(errors=int(errors), n=int(n), rate=rate, low=max(rate - margin, 0.0),
                     high=min(rate + margin, 1.0), confidence=confidence)


def error_rate(predictions, labels, *, confidence: float = 0.95,
               experiments: int = 1) -> ErrorRate:
    """The test error of `predictions` against `labels` with its Eq. 1 interval.

    `experiments`: how many uses of this test set the interval must hold over.
    """
    labels = classes("labels", labels)
    predictions = classes("predictions", predictions, len(labels))
    if not len(labels):
        raise ValueError("labels is empty")
    errors = int(np.count_nonzero(predictions != labels))
    return interval(errors, len(labels), confidence=confidence, experiments=experiments)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Eq. 2 for classifiers A and B on the same `n` digits.

    `significant`: A is worse than B with the confidence asked for
    (`difference` >= `margin` > 0); it says nothing of B being worse than A.
    """

    a_only: int
    b_only: int
    n: int
    difference: float
    margin: float
    significant: bool


def compare(predictions_a, predictions_b, labels, *, confidence: float = 0.95,
            comparisons: int = 1) -> Comparison:
    """Whether classifier A makes significantly more errors than B on the same digits.

    `comparisons`: how many comparisons on this test set the answer must hold over.
    """
    labels = classes("labels", labels)
    predictions_a = classes("predictions_a", predictions_a, len(labels))
    predictions_b = classes("predictions_b", predictions_b, len(labels))
    if not len(labels):
        raise ValueError("labels is empty")
    wrong_a, wrong_b = predictions_a != labels, predictions_b != labels
    a_only = int(np.count_nonzero(wrong_a & ~wrong_b))
    b_only = int(np.count_nonzero(wrong_b & ~wrong_a))
    n = len(labels)
    margin = z_one_sided(confidence, comparisons) * math.sqrt(a_only + b_only) / n
    difference = (a_only - b_only) / n
    return Comparison(a_only=a_only, b_only=b_only, n=n, difference=difference,
                      margin=margin, significant=bool(margin > 0 and difference >= margin))


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a report: which digits, who wrote them, and the error on them."""

    name: str
    writers: str
    error: ErrorRate


@dataclasses.dataclass(frozen=True)
class Report:
    """The rows of `report`, printable as a plain-text table."""

    split: str
    confidence: float
    rows: tuple[Row, ...]

    def __str__(self) -> str:
        header = ("digits", "writers", "n", "errors", "error", f"{self.confidence:.0%} interval")
        lines = [(row.name, row.writers, f"{row.error.n:,}", f"{row.error.errors:,}",
                  f"{100 * row.error.rate:.2f}%",
                  f"{100 * row.error.low:.2f}% - {100 * row.error.high:.2f}%")
                 for row in self.rows]
        widths = [max(len(cells[i]) for cells in (header, *lines)) for i in range(len(header))]

        def line(cells: Sequence[str]) -> str:
            left = [cell.ljust(width) for cell, width in zip(cells[:2], widths, strict=False)]
            right = [cell.rjust(width) for cell, width in zip(cells[2:], widths[2:], strict=True)]
            return "  ".join(left + right).rstrip()

        return "\n".join([line(header), "  ".join("-" * w for w in widths),
                          *map(line, lines)])


def split_rows(split: str, count: int) -> slice:
    """The rows of the QMNIST test file that `split` holds, the file having `count` rows."""
    metadata.check_choice("split", split, SPLITS)
    return {"test": slice(0, count), "test10k": slice(0, min(TEST10K_SIZE, count)),
            "test50k": slice(min(TEST10K_SIZE, count), count)}[split]


def report(predictions, split: str, *, data_dir=None, manual_dir=None,
           confidence: float = 0.95) -> Report:
    """Error rates with Eq. 1 intervals of `predictions` on a QMNIST test split.

    `predictions`: one class per digit of `split` ("test", "test10k" or
    "test50k"), in the split's upstream order (that of `load_arrays` and of
    the default reads). Rows: the whole split; then, for each of test10k
    (MNIST's test set) and test50k that it covers, that part and each HSF
    series in it. Each interval holds at `confidence` on its own (no
    correction over rows). The labels come from the test label file, fetched
    as `qmnist_tfds.mnist_metadata` fetches it (`data_dir`, `manual_dir`).
    """
    metadata.check_choice("split", split, SPLITS)
    _check_confidence(confidence)
    path = metadata.label_files(["test_labels"], data_dir=data_dir,
                                manual_dir=manual_dir)["test_labels"]
    labels = examples.read_checked_labels(path)
    rows_of = {name: split_rows(name, len(labels)) for name in SPLITS}
    chosen = labels[rows_of[split]]
    predictions = classes("predictions", predictions, len(chosen))
    wrong = predictions != chosen[:, examples.CLASS_COLUMN]
    series = chosen[:, examples.METADATA_COLUMNS["hsf_series"][0]]

    def row(name: str, writers: str, mask: np.ndarray) -> Row:
        return Row(name, writers, interval(int(np.count_nonzero(wrong[mask])),
                                           int(np.count_nonzero(mask)), confidence=confidence))

    rows = [row(split, "all", np.ones(len(chosen), dtype=bool))]
    for part in ("test10k", "test50k") if split == "test" else (split,):
        inside = np.zeros(len(labels), dtype=bool)
        inside[rows_of[part]] = True
        inside = inside[rows_of[split]]
        if not inside.any():
            continue
        if part != split:
            rows.append(row(part, "all", inside))
        for hsf in np.unique(series[inside]).tolist():
            rows.append(row(f"{part} hsf{hsf}", HSF_WRITERS.get(hsf, "unknown"),
                            inside & (series == hsf)))
    return Report(split=split, confidence=confidence, rows=tuple(rows))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m qmnist_tfds.evaluation",
        description="Error rates with confidence intervals on a QMNIST test split, by "
        "part and by writer population.")
    parser.add_argument("predictions", help=".npy file: one predicted class per digit "
                        "of the split, in upstream order")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--data_dir", default=None,
                        help="TFDS data dir whose downloads/ holds or receives the label files")
    parser.add_argument("--manual_dir", default=None,
                        help="folder holding the upstream label files")
    args = parser.parse_args(argv)
    print(report(np.load(args.predictions), args.split, data_dir=args.data_dir,
                 manual_dir=args.manual_dir, confidence=args.confidence))


if __name__ == "__main__":
    main()
