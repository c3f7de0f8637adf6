"""Train train_jax.py's MLP on QMNIST's `train`, then report its error on all 60,000
test digits, by part (MNIST's test set, the lost digits) and by writer population.

    pip install ".[jax]"
    python docs/examples/evaluate_jax.py --steps 2000 [--data_dir DIR] [--manual_dir DIR]

The intervals are the paper's (`qmnist_tfds.evaluation`); the labels come from
the test label file, fetched into `<data_dir>/downloads/` unless it is there
already (a build that downloaded left it) or in `--manual_dir`.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np
import train_jax

import qmnist_tfds
from qmnist_tfds import evaluation


def predict(params: dict, split: str, data_dir: str | None = None) -> np.ndarray:
    """The model's class for every digit of `split`, in the split's upstream order."""
    images = qmnist_tfds.load_arrays(split, data_dir=data_dir)["image"]
    return np.asarray(jnp.argmax(train_jax.logits_fn(params, images), axis=1))


def evaluate(steps: int = 2000, batch_size: int = 128, data_dir: str | None = None,
             manual_dir: str | None = None) -> evaluation.Report:
    params, _ = train_jax.train(steps, batch_size, data_dir)
    return evaluation.report(predict(params, "test", data_dir), "test", data_dir=data_dir,
                             manual_dir=manual_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--manual_dir", default=None, help="folder holding the label files")
    args = parser.parse_args()
    print(evaluate(args.steps, args.batch_size, args.data_dir, args.manual_dir))


if __name__ == "__main__":
    main()
