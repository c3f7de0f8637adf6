"""Train a small MLP on QMNIST with JAX, from whole splits held in device memory.

    pip install ".[jax]"
    python docs/examples/train_jax.py --steps 500 [--data_dir DIR]

`qmnist_tfds.load_arrays` reads a split into numpy arrays once (60,000 train
images are 47 MB); every epoch then draws shuffled batches by a permuted
index, on the device, with no input pipeline left to wait for
(`benchmarks/jax_inputs.py` compares this with streaming and Grain).
Evaluates on `test10k` (MNIST's test set) and `test50k` (the lost digits).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

import qmnist_tfds


def init_params(key: jax.Array, hidden: int = 128) -> dict[str, jax.Array]:
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (784, hidden)) * 784**-0.5,
        "b1": jnp.zeros(hidden),
        "w2": jax.random.normal(k2, (hidden, 10)) * hidden**-0.5,
        "b2": jnp.zeros(10),
    }


def logits_fn(params: dict, images: jax.Array) -> jax.Array:
    x = images.reshape(images.shape[0], -1).astype(jnp.float32) / 255.0
    x = jax.nn.relu(x @ params["w1"] + params["b1"])
    return x @ params["w2"] + params["b2"]


def loss_fn(params: dict, images: jax.Array, labels: jax.Array) -> jax.Array:
    log_probs = jax.nn.log_softmax(logits_fn(params, images))
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


@jax.jit
def update(params: dict, images: jax.Array, labels: jax.Array, lr: float = 0.1):
    loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
    return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), loss


def batches(split: str, batch_size: int, data_dir: str | None,
            seed: int = 0) -> Iterator[tuple[jax.Array, jax.Array]]:
    """Shuffled batches of images and labels, epoch after epoch, without end.

    Builds the dataset first if it is not prepared (a no-op when it is). Each
    epoch is a new permutation; its last incomplete batch is dropped.
    """
    tfds.builder("qmnist", data_dir=data_dir).download_and_prepare()
    arrays = qmnist_tfds.load_arrays(split, data_dir=data_dir)
    images, labels = jax.device_put(arrays["image"]), jax.device_put(arrays["label"])
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(arrays["label"]))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            index = order[start:start + batch_size]
            yield images[index], labels[index]


def train(steps: int = 500, batch_size: int = 128, data_dir: str | None = None):
    """Returns the trained parameters and the loss of every step."""
    params = init_params(jax.random.PRNGKey(0))
    losses = []
    stream = batches("train", batch_size, data_dir)
    for _, (images, labels) in zip(range(steps), stream, strict=False):
        params, loss = update(params, images, labels)
        losses.append(float(loss))
    return params, losses


def accuracy(params: dict, split: str, data_dir: str | None = None) -> float:
    """Accuracy on a whole split, loaded at once as arrays."""
    arrays = qmnist_tfds.load_arrays(split, data_dir=data_dir)
    predictions = jnp.argmax(logits_fn(params, arrays["image"]), axis=1)
    return float(np.mean(np.asarray(predictions) == arrays["label"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--data_dir", default=None)
    args = parser.parse_args()
    params, losses = train(args.steps, args.batch_size, args.data_dir)
    print(f"loss: first {losses[0]:.3f}, last {losses[-1]:.3f}")
    for split in ("test10k", "test50k"):
        print(f"{split} accuracy: {accuracy(params, split, args.data_dir):.4f}")


if __name__ == "__main__":
    main()
