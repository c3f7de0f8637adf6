"""The README's JAX, Grain and random-access recipes, run as written on dummy data."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from qmnist_tfds import downloads, idx
from tests.conftest import DUMMY_DATA, REPO_ROOT, TESTS_DIR, registered_checksums

sys.path.insert(0, os.fspath(REPO_ROOT / "docs" / "examples"))


def test_jax_training_loop_lowers_the_loss(dummy_build):
    train_jax = pytest.importorskip("train_jax", reason="needs jax: pip install '.[jax]'")
    params, losses = train_jax.train(steps=40, batch_size=8, data_dir=os.fspath(dummy_build))
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < 0.75 * np.mean(losses[:5])
    assert 0.0 <= train_jax.accuracy(params, "test10k", os.fspath(dummy_build)) <= 1.0


def test_jax_batches_cover_the_split_once_an_epoch(dummy_build):
    train_jax = pytest.importorskip("train_jax", reason="needs jax: pip install '.[jax]'")
    labels = idx.read_idx(DUMMY_DATA / downloads.FILES["train_labels"])[:, 0]
    stream = train_jax.batches("train", 4, os.fspath(dummy_build), seed=3)
    epochs = [[next(stream) for _ in range(len(labels) // 4)] for _ in range(2)]
    for epoch in epochs:
        assert all(images.shape == (4, 28, 28, 1) for images, _ in epoch)
        seen = np.concatenate([np.asarray(batch_labels) for _, batch_labels in epoch])
        assert sorted(seen.tolist()) == sorted(labels.tolist())
    # Each image comes with a label it has in the files (the dummy images repeat).
    images = idx.read_idx(DUMMY_DATA / downloads.FILES["train_images"])
    labels_of: dict[bytes, set] = {}
    for image, label in zip(images, labels.tolist(), strict=True):
        labels_of.setdefault(image.tobytes(), set()).add(label)
    for batch_images, batch_labels in (batch for epoch in epochs for batch in epoch):
        for image, label in zip(np.asarray(batch_images), np.asarray(batch_labels).tolist(),
                                strict=True):
            assert label in labels_of[image[..., 0].tobytes()]
    # A new order every epoch, neither that of the files.
    first, second = (np.concatenate([np.asarray(b) for _, b in epoch]).tolist()
                     for epoch in epochs)
    assert first != second and labels.tolist() not in (first, second)


def test_data_source_reads_decoded_examples(dummy_build):
    source = tfds.data_source("qmnist", split="test", data_dir=os.fspath(dummy_build))
    labels = idx.read_idx(DUMMY_DATA / downloads.FILES["test_labels"])
    images = idx.read_idx(DUMMY_DATA / downloads.FILES["test_images"])
    assert len(source) == len(labels)
    for i in (0, 9_999, 10_000, len(labels) - 1):
        example = source[i]
        np.testing.assert_array_equal(example["image"][..., 0], images[i])
        assert example["label"] == labels[i, 0]
        assert example["writer_id"] == labels[i, 2]
    # Multi-host blocks of a data source are contiguous and cover the split once.
    parts = [tfds.data_source("qmnist", data_dir=os.fspath(dummy_build),
                              split=tfds.split_for_jax_process("test", process_index=i,
                                                               process_count=3))
             for i in range(3)]
    assert sum(len(p) for p in parts) == len(labels)
    assert [p[0]["nist_index"] for p in parts] == [
        labels[0, 5], labels[len(parts[0]), 5], labels[len(parts[0]) + len(parts[1]), 5]]


DOCUMENTS = [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md",
             *sorted((REPO_ROOT / "docs").glob("*.md"))]


def _snippets() -> list[tuple[str, str]]:
    """(where, code) of every python block of the README and the docs."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        for number, match in enumerate(re.finditer(r"```python\n(.*?)```", text, re.S)):
            found.append((f"{document.relative_to(REPO_ROOT)}#{number}", match.group(1)))
    return found


def _mnist_environment(request) -> dict[str, str]:
    """For blocks about MNIST itself: TFDS's `mnist` built by TFDS from MNIST's labels
    (`mnist_standin`) where TFDS looks by default, and the real label files served as
    the package's mirror, verified against the real checksums."""
    upstream = request.getfixturevalue("upstream_dir")
    standin = request.getfixturevalue("mnist_standin")
    return {"TFDS_DATA_DIR": os.fspath(standin), downloads.MIRROR_ENV: upstream.as_uri() + "/",
            "MNIST_STANDIN_FILES": os.fspath(standin / "files")}


@pytest.mark.parametrize(("where", "code"), _snippets(), ids=[w for w, _ in _snippets()])
def test_snippet_runs_as_written(request, dummy_build, where, code, tmp_path):
    """Each python block, unchanged, against the default build of the dummy data put
    where TFDS looks by default; blocks about MNIST against `_mnist_environment`."""
    env = dict(os.environ, TFDS_DATA_DIR=os.fspath(dummy_build))
    if "mnist_metadata" in code or '"mnist"' in code:
        env.update(_mnist_environment(request))
    if "keras.datasets.mnist.load_data()" in code:  # which downloads: the stand-in's files
        code = "import keras_mnist_standin\n" + code
        env["PYTHONPATH"] = os.pathsep.join([os.fspath(TESTS_DIR), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{where}:\n{code}\n{result.stderr[-3000:]}"


def test_jax_evaluation_reports_on_the_data_it_trained_on(dummy_build, tmp_path):
    """docs/examples/evaluate_jax.py on the dummy data; the labels for the report come
    from the dummy test label file (manual_dir), verified against the dummy checksums.
    The dummy labels are random, so the model errs on about 90% of the digits."""
    evaluate_jax = pytest.importorskip("evaluate_jax", reason="needs jax: pip install '.[jax]'")
    data_dir = tmp_path / "data"  # the shared build, read only; downloads/ goes here
    data_dir.mkdir()
    (data_dir / "qmnist").symlink_to(dummy_build / "qmnist")
    with registered_checksums(DUMMY_DATA / "checksums.tsv"):
        report = evaluate_jax.evaluate(steps=40, batch_size=8, data_dir=os.fspath(data_dir),
                                       manual_dir=os.fspath(DUMMY_DATA))
    labels = idx.read_idx(DUMMY_DATA / downloads.FILES["test_labels"])
    rows = {row.name: row.error for row in report.rows}
    series = {f"test10k hsf{s}": n for s, n in enumerate(np.bincount(labels[:10_000, 1])) if n}
    series.update({f"test50k hsf{s}": n for s, n in enumerate(np.bincount(labels[10_000:, 1]))
                   if n})
    assert {name: error.n for name, error in rows.items()} == {
        "test": len(labels), "test10k": 10_000, "test50k": len(labels) - 10_000, **series}
    assert rows["test"].errors == rows["test10k"].errors + rows["test50k"].errors
    assert rows["test10k"].errors == sum(rows[name].errors for name in series
                                         if name.startswith("test10k"))
    # Training is deterministic: the same model again, its errors counted here.
    params, _ = evaluate_jax.train_jax.train(40, 8, os.fspath(data_dir))
    predictions = evaluate_jax.predict(params, "test", os.fspath(data_dir))
    assert rows["test"].errors == np.count_nonzero(predictions != labels[:, 0])
    assert rows["test10k"].errors == np.count_nonzero(predictions[:10_000] != labels[:10_000, 0])
    print(report)
