"""Out-of-core training: shards on disk, read a window at a time, shuffled, with bounded memory."""

import json
import subprocess
import sys

import numpy as np
import pytest

from mnist_softmax import load_dataset
from mnist_softmax.cli import main
from mnist_softmax.errors import DataFormatError, DataNotFoundError
from mnist_softmax.idx import write_idx
from mnist_softmax.outofcore import fit_shards, open_shards, shuffled_blocks, write_shard
from mnist_softmax.recipes import RECIPES


def _numbered(n, start=0):
    """Images whose first two pixels spell their row number, so every row can be traced through a pass."""
    rows = np.arange(start, start + n)
    images = np.zeros((n, 4, 4), np.uint8)
    images[:, 0, 0], images[:, 0, 1] = rows // 256, rows % 256
    return images, (rows % 3).astype(np.int16)


def _ids(images):
    return images[:, 0, 0].astype(int) * 256 + images[:, 0, 1]


def test_every_row_once_per_pass_in_a_mixed_order(tmp_path):
    for i, n in enumerate((1000, 700, 1300)):
        write_shard(tmp_path, i, *_numbered(n, start=sum((1000, 700, 1300)[:i])))
    shards = open_shards(tmp_path)
    assert shards.n == 3000 and shards.image_shape == (4, 4)
    seen = []
    for images, labels in shuffled_blocks(shards, np.random.default_rng(0), block_rows=128, chunk_rows=100, window=4):
        assert len(labels) <= 128
        np.testing.assert_array_equal(labels, _ids(images) % 3)  # images and labels stay paired
        seen.append(_ids(images))
    order = np.concatenate(seen)
    assert sorted(order.tolist()) == list(range(3000))
    # Shuffled: far from the file order, and a block mixes rows from several chunks.
    assert abs(np.corrcoef(order, np.arange(3000))[0, 1]) < 0.2
    assert len(set(seen[0] // 100)) > 1


def test_raw_idx_files_and_their_errors(tmp_path):
    images, labels = _numbered(500)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", labels.astype(np.uint8))
    shards = open_shards(tmp_path)
    got, got_labels = shards.read(0, 100, 300)
    np.testing.assert_array_equal(got, images[100:300])
    np.testing.assert_array_equal(got_labels, labels[100:300])

    gz = tmp_path / "gz"
    gz.mkdir()
    write_idx(gz / "train-images-idx3-ubyte", images, compress=True)
    write_idx(gz / "train-labels-idx1-ubyte", labels.astype(np.uint8))
    with pytest.raises(DataFormatError, match="gzipped IDX cannot be read out of core; decompress it"):
        open_shards(gz)


def test_bad_shards_are_named(tmp_path):
    with pytest.raises(DataNotFoundError, match="no shards found"):
        open_shards(tmp_path)
    write_shard(tmp_path, 0, *_numbered(50))
    (tmp_path / "labels-00000.npy").unlink()
    with pytest.raises(DataNotFoundError, match="labels-00000.npy is missing"):
        open_shards(tmp_path)
    np.save(tmp_path / "labels-00000.npy", np.arange(49))
    with pytest.raises(DataFormatError, match="expected 50 integer labels"):
        open_shards(tmp_path)
    np.save(tmp_path / "labels-00000.npy", np.arange(50))
    data = (tmp_path / "images-00000.npy").read_bytes()
    (tmp_path / "images-00000.npy").write_bytes(data[:-10])
    with pytest.raises(DataFormatError, match="the file has"):
        open_shards(tmp_path)
    np.save(tmp_path / "images-00000.npy", np.zeros((50, 4, 4), np.float32))
    with pytest.raises(DataFormatError, match="expected uint8 images"):
        open_shards(tmp_path)
    np.save(tmp_path / "images-00000.npy", np.zeros((50, 4, 4), np.uint8))
    write_shard(tmp_path, 1, np.zeros((5, 3, 3), np.uint8), np.zeros(5, np.int64))
    with pytest.raises(DataFormatError, match="images of shape \\(3, 3\\)"):
        open_shards(tmp_path)


@pytest.fixture(scope="module")
def mnist_shards(tmp_path_factory):
    """The 55,000 MNIST training images as five .npy shards."""
    from conftest import MNIST_DIR, _need

    ds = load_dataset("mnist", _need(MNIST_DIR, "the shared MNIST files beside the repository"))
    folder = tmp_path_factory.mktemp("shards")
    for i in range(5):
        rows = slice(11000 * i, 11000 * (i + 1))
        write_shard(folder, i, ds.train_images[rows], ds.train_labels[rows])
    return folder, ds


def test_out_of_core_training_on_mnist(mnist_shards):
    folder, ds = mnist_shards
    state, seen = fit_shards(open_shards(folder), 10, RECIPES["default"], np.random.default_rng(0),
                             lambda images: images.reshape(len(images), -1).astype(np.float32) / 255)
    recipe = RECIPES["default"]
    budget = max(round(recipe.epochs * 55000), recipe.min_steps * recipe.batch_size)
    blocks = [4096] * (55000 // 4096) + [55000 % 4096]  # one pass: blocks of 4,096 rows, each in batches <= 256
    steps, rows = 0, 0
    while rows < budget:
        for block in blocks:
            take = min(block, budget - rows)
            steps, rows = steps + -(-take // recipe.batch_size), rows + take
            if rows == budget:
                break
    assert seen == budget and state.steps == steps
    coef, intercept = state.coef_intercept()
    pred = np.argmax(ds.test_images.reshape(10000, -1) / 255 @ coef.T + intercept, axis=1)
    assert np.mean(pred == ds.test_labels) >= 0.92


def test_train_shards_command(mnist_shards, tmp_path, capsys):
    folder, _ = mnist_shards
    out = tmp_path / "run"
    code = main(["train", "--shards", str(folder), "--out", str(out), "--no-plots", "--json", "--epochs", "1"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["n_train"] == 55000 and metrics["training_data"] == str(folder.resolve())
    assert metrics["test_accuracy"] > 0.91 and metrics["train_accuracy"] > 0.91 and metrics["epochs"] == 1
    assert (out / "model.npz").is_file()
    assert main(["train", "--shards", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2")]) == 3
    assert "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def test_memory_stays_bounded(tmp_path):
    """Training over 240,000 images (188 MB of shards) raises the peak resident memory by far less than that."""
    rng = np.random.default_rng(0)
    for i in range(4):
        labels = rng.integers(0, 10, 60000)
        images = rng.integers(0, 50, (60000, 28, 28), dtype=np.uint8)
        images[np.arange(60000), labels * 2 + 4, 14] = 255  # a learnable mark per class
        write_shard(tmp_path, i, images, labels)
    del images
    script = f"""
import resource, numpy as np
from mnist_softmax.outofcore import open_shards, fit_shards
from mnist_softmax.recipes import RECIPES
shards = open_shards({str(tmp_path)!r})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
state, seen = fit_shards(shards, 10, RECIPES["default"].with_overrides(epochs=1), np.random.default_rng(0),
                         lambda x: x.reshape(len(x), -1).astype(np.float32) / 255)
print(seen, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    seen, grew = int(out[0]), int(out[1])
    assert seen == 240000
    assert grew < 120e6, f"peak memory grew by {grew / 1e6:.0f} MB over 188 MB of data"
