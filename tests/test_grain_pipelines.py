"""The Grain pipelines JAX users copy, with the name changed, on the README's build
(`tfds build`, default format): each delivers its split exactly once, and every
image is checked against the upstream IDX file decoded here independently."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qmnist_tfds import downloads
from tests.conftest import DUMMY_DATA, REPO_ROOT, shared_build
from tests.test_cli import _tfds_build
from tests.test_data_source import read_idx_independently

grain = pytest.importorskip("grain", reason="needs grain: pip install '.[grain]'")
sys.path.insert(0, os.fspath(REPO_ROOT / "docs" / "examples"))
import grain_loader  # noqa: E402

SPLIT = "test"  # 10,010 rows of the dummy data, with distinct NIST indices


@pytest.fixture(scope="module")
def readme_build(tmp_path_factory):
    def make(data_dir):
        _tfds_build("qmnist/qmnist", "--manual_dir", os.fspath(DUMMY_DATA),
                    "--data_dir", os.fspath(data_dir), checksums=DUMMY_DATA / "checksums.tsv")

    return os.fspath(shared_build(tmp_path_factory, "readme_build", make))


@pytest.fixture(scope="module")
def upstream():
    """nist_index -> (pixels, label) of every row of the split, from the IDX files."""
    images = read_idx_independently(DUMMY_DATA / downloads.FILES[f"{SPLIT}_images"])
    labels = read_idx_independently(DUMMY_DATA / downloads.FILES[f"{SPLIT}_labels"])
    rows = {int(row[5]): (image, int(row[0])) for image, row in zip(images, labels, strict=True)}
    assert len(rows) == len(labels)
    return rows


def _check_once(upstream, nist_indices, images, labels) -> None:
    """The examples are the split's rows, each exactly once, with their own pixels."""
    assert sorted(nist_indices) == sorted(upstream)
    for index, image, label in zip(nist_indices, images, labels, strict=True):
        expected_image, expected_label = upstream[index]
        np.testing.assert_array_equal(image[..., 0], expected_image)
        assert label == expected_label


def test_grain_documented_map_dataset(readme_build, upstream):
    examples = list(grain_loader.map_dataset(SPLIT, seed=45, data_dir=readme_build))
    indices = [e["nist_index"] for e in examples]
    _check_once(upstream, indices, [e["image"] for e in examples], [e["label"] for e in examples])
    assert indices != sorted(indices)  # shuffled
    again = [e["nist_index"] for e in grain_loader.map_dataset(SPLIT, 45, readme_build)]
    assert again == indices  # and reproducible by its seed


def test_jax_ai_stack_pipeline(readme_build, upstream):
    batches = list(grain_loader.jax_ai_stack_batches(SPLIT, data_dir=readme_build))
    assert len(batches) == len(upstream) // 128
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    assert images.shape == (len(batches) * 128, 28, 28, 1) and images.dtype == np.float64
    assert images.min() >= 0 and images.max() <= 1
    # Every delivered (image, label) pair is a row of the split, none delivered twice:
    # the split once, less the last partial batch.
    pixels = np.rint(images * 255).astype(np.uint8)
    delivered = collections.Counter(
        (p.tobytes(), int(label)) for p, label in zip(pixels[..., 0], labels, strict=True))
    available = collections.Counter((p.tobytes(), label) for p, label in upstream.values())
    assert not delivered - available


def test_data_loader_with_two_workers(readme_build, upstream, tmp_path):
    """The example script's DataLoader, run as a program: spawned workers, absl flags."""
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from absl import app
        sys.path.insert(0, {os.fspath(REPO_ROOT / "docs" / "examples")!r})
        import grain_loader

        def main(argv):
            batches = list(grain_loader.data_loader({SPLIT!r}, seed=3, worker_count=2,
                                                    data_dir={readme_build!r}))
            np.savez({os.fspath(tmp_path / "out.npz")!r},
                     **{{key: np.concatenate([b[key] for b in batches])
                        for key in ("nist_index", "image", "label")}})

        if __name__ == "__main__":
            app.run(main)
    """)
    (tmp_path / "loader.py").write_text(script)
    done = subprocess.run([sys.executable, os.fspath(tmp_path / "loader.py")],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    _check_once(upstream, out["nist_index"].tolist(), out["image"], out["label"].tolist())


def _host_batches(readme_build, **kwargs) -> dict[str, np.ndarray]:
    batches = list(grain_loader.data_loader(seed=0, worker_count=0, data_dir=readme_build,
                                            **kwargs))
    return {key: np.concatenate([b[key] for b in batches])
            for key in ("nist_index", "image", "label")}


def test_hosts_with_shard_options_read_disjoint_even_shards(readme_build, upstream):
    """Grain's DataLoader with ShardOptions: every host as many rows, none read twice."""
    hosts = [_host_batches(readme_build, split=SPLIT, shard_index=host, shard_count=3)
             for host in range(3)]
    indices = [h["nist_index"].tolist() for h in hosts]
    assert [len(part) for part in indices] == [len(upstream) // 3] * 3
    every = sum(indices, [])
    assert len(set(every)) == len(every) and set(every) <= set(upstream)
    for host in hosts:
        for index, image, label in zip(*host.values(), strict=True):
            np.testing.assert_array_equal(image[..., 0], upstream[index][0])
            assert label == upstream[index][1]


def test_hosts_with_split_for_jax_process_cover_the_split_once(readme_build, upstream):
    import tensorflow_datasets as tfds

    hosts = [_host_batches(readme_build, split=tfds.split_for_jax_process(
        SPLIT, process_index=host, process_count=3)) for host in range(3)]
    _check_once(upstream, np.concatenate([h["nist_index"] for h in hosts]).tolist(),
                np.concatenate([h["image"] for h in hosts]),
                np.concatenate([h["label"] for h in hosts]).tolist())
