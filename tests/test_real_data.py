"""Accuracy on the real datasets (../shared/data/mnist and Debian's Fashion-MNIST); in CI a missing set fails."""

import csv
import json

import numpy as np

from mnist_softmax import SoftmaxClassifier, load_dataset
from mnist_softmax.cli import main


def train(tmp_path, *args):
    out = tmp_path / "run"
    assert main(["train", "-q", "--out", str(out), *args]) == 0
    return json.loads((out / "metrics.json").read_text()), out


def test_default_recipe_reaches_the_linear_best_on_mnist(mnist_dir, tmp_path):
    metrics, _ = train(tmp_path, "--data-dir", str(mnist_dir))
    assert metrics["n_train"] == 55000 and metrics["n_validation"] == 5000 and metrics["n_test"] == 10000
    assert metrics["test_accuracy"] >= 0.925
    assert metrics["validation_accuracy"] >= 0.925


def test_tutorial_recipe_reproduces_the_reference(mnist_dir, tmp_path):
    metrics, out = train(tmp_path, "--data-dir", str(mnist_dir), "--recipe", "tutorial")
    assert 0.905 <= metrics["test_accuracy"] <= 0.925
    assert metrics["steps"] == 1000
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1001 and [int(r["step"]) for r in rows[:3]] == [0, 1, 2]  # every step recorded
    assert {"train_loss", "train_accuracy", "test_loss", "test_accuracy"} <= set(rows[0])
    assert abs(float(rows[0]["test_loss"]) - np.log(10)) < 1e-4  # zero weights: uniform probabilities
    assert float(rows[-1]["test_accuracy"]) == metrics["test_accuracy"]


def test_default_recipe_on_fashion_mnist(fashion_dir, tmp_path):
    metrics, _ = train(tmp_path, "--dataset", "fashion-mnist")
    assert metrics["test_accuracy"] >= 0.84


def test_estimator_on_full_mnist_beats_the_tutorial(mnist_dir):
    ds = load_dataset("mnist", mnist_dir)
    X = ds.train_images.reshape(60000, -1).astype(np.float32) / 255
    Xt = ds.test_images.reshape(10000, -1).astype(np.float32) / 255
    clf = SoftmaxClassifier(random_state=0).fit(X, ds.train_labels)
    assert clf.score(Xt, ds.test_labels) >= 0.925
