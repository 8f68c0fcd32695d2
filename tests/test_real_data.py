"""Accuracy on the real datasets (../shared/data/mnist and Debian's Fashion-MNIST); in CI a missing set fails."""

import csv
import json

import numpy as np
import pytest

from mnist_softmax import SoftmaxClassifier, load_dataset, load_model
from mnist_softmax.cli import main
from mnist_softmax.metrics import roughness


def train(tmp_path, *args):
    out = tmp_path / "run"
    assert main(["train", "-q", "--out", str(out), *args]) == 0
    return json.loads((out / "metrics.json").read_text()), out


def test_default_recipe_reaches_the_linear_best_on_mnist(mnist_dir, tmp_path):
    metrics, out = train(tmp_path, "--data-dir", str(mnist_dir))
    assert metrics["n_train"] == 55000 and metrics["n_validation"] == 5000 and metrics["n_test"] == 10000
    assert metrics["test_accuracy"] >= 0.926
    assert metrics["validation_accuracy"] >= 0.935
    model = load_model(out / "model.npz")
    assert roughness(model.coef, (28, 28)) <= 0.35  # smooth maps: the smoothness prior is on by default
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 20 and int(rows[-1]["step"]) == metrics["steps"]  # enough record points to see learning


def test_default_recipe_over_ten_seeds(mnist_dir):
    """The default recipe's accuracy and smoothness hold on average over seeds, not only for a lucky one."""
    ds = load_dataset("mnist", mnist_dir)
    X = ds.train_images[:55000].reshape(55000, -1).astype(np.float32) / np.float32(255)
    Xt = ds.test_images.reshape(10000, -1).astype(np.float32) / np.float32(255)
    accuracies, rough = [], []
    for seed in range(10):
        clf = SoftmaxClassifier(random_state=seed).fit(X, ds.train_labels[:55000])
        accuracies.append(clf.score(Xt, ds.test_labels))
        rough.append(roughness(clf.coef_, (28, 28)))
    assert np.mean(accuracies) >= 0.926 and min(accuracies) >= 0.922, accuracies
    assert max(rough) <= 0.35, rough


def test_tutorial_recipe_reproduces_the_reference(mnist_dir, tmp_path):
    """TensorFlow's mnist_softmax.py: next_batch(100) from 55,000 images, rate 0.5, zero start, 1,000 steps."""
    metrics, out = train(tmp_path, "--data-dir", str(mnist_dir), "--recipe", "tutorial")
    assert 0.905 <= metrics["test_accuracy"] <= 0.93
    assert metrics["steps"] == 1000 and metrics["n_train"] == 55000
    assert metrics["epochs"] == pytest.approx(1000 * 100 / 55000, abs=1e-3)  # 1.82 epochs
    hyper = load_model(out / "model.npz").metadata["hyperparameters"]
    assert (hyper["batch_size"], hyper["learning_rate"], hyper["momentum"], hyper["l2"], hyper["smooth"]) == (
        100, 0.5, 0.0, 0.0, 0.0)
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
