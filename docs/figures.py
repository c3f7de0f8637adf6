"""Draws the dataset card's figures from the real upstream label files.

    pip install ".[plots]"
    python docs/figures.py LABELS_DIR [--out docs]

LABELS_DIR holds `qmnist-train-labels-idx2-int.gz` and
`qmnist-test-labels-idx2-int.gz` (from upstream, or beside a torchvision
`QMNIST/raw` download). Writes `class_distribution.png` and
`hsf_composition.png`: counts per split, not images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from qmnist_tfds import examples  # noqa: E402

HSF = examples.METADATA_COLUMNS["hsf_series"][0]
SERIES = {0: "hsf0 (Census employees)", 1: "hsf1 (Census employees)",
          4: "hsf4 (high-school students)"}


def split_labels(labels_dir: Path) -> dict[str, np.ndarray]:
    train = examples.read_checked_labels(labels_dir / "qmnist-train-labels-idx2-int.gz")
    test = examples.read_checked_labels(labels_dir / "qmnist-test-labels-idx2-int.gz")
    return {"train": train, "test10k": test[:10_000], "test50k": test[10_000:]}


def class_distribution(splits: dict[str, np.ndarray], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(splits)
    for i, (name, labels) in enumerate(splits.items()):
        share = np.bincount(labels[:, 0], minlength=10) / len(labels)
        x = np.arange(10) + (i - 1) * width
        ax.bar(x, 100 * share, width, label=f"{name} ({len(labels):,})")
    ax.set(xticks=range(10), xlabel="digit", ylabel="% of split", ylim=(0, 14),
           title="QMNIST: class distribution per split")
    ax.legend(frameon=False, ncol=3, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def hsf_composition(splits: dict[str, np.ndarray], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.4))
    names = list(splits)
    left = np.zeros(len(names))
    for series, label in SERIES.items():
        counts = np.array([(splits[n][:, HSF] == series).sum() for n in names])
        ax.barh(names, counts, left=left, label=label)
        for y, (x, c) in enumerate(zip(left, counts, strict=True)):
            if c:
                ax.text(x + c / 2, y, f"{c:,}", ha="center", va="center", fontsize=8)
        left += counts
    ax.invert_yaxis()
    ax.set(xlabel="digits", title="QMNIST: NIST writer population (HSF series) per split")
    ax.legend(frameon=False, fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labels_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args()
    splits = split_labels(args.labels_dir)
    args.out.mkdir(parents=True, exist_ok=True)
    class_distribution(splits, args.out / "class_distribution.png")
    hsf_composition(splits, args.out / "hsf_composition.png")
    print(f"wrote {args.out / 'class_distribution.png'} and {args.out / 'hsf_composition.png'}")


if __name__ == "__main__":
    main()
