"""Figures: they are drawn, saved as PNG and SVG, and their colour limits tell the truth."""

import numpy as np
import pytest

from mnist_softmax import plots


def test_weight_maps_share_symmetric_limits(tmp_path):
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(10, 784))
    coef[3] *= 5
    fig = plots.weight_maps(coef, (28, 28), list("0123456789"))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 10
    limit = np.abs(coef).max()
    assert all(im.get_clim() == pytest.approx((-limit, limit)) for im in images)  # shared, symmetric
    assert images[0].get_cmap().name == "RdBu"
    assert [ax.get_title() for ax in fig.axes if ax.images] == list("0123456789")
    own = plots.weight_maps(coef, (28, 28), list("0123456789"), shared=False)
    own_images = [ax.images[0] for ax in own.axes if ax.images]
    assert own_images[0].get_clim() == pytest.approx((-np.abs(coef[0]).max(), np.abs(coef[0]).max()))
    for suffix in ("png", "svg"):
        path = plots.save(plots.weight_maps(coef, (28, 28), list("0123456789")), tmp_path / f"w.{suffix}")
        assert path.stat().st_size > 1000
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "w.svg").read_bytes()[:500]


def test_other_figures_draw(tmp_path):
    rng = np.random.default_rng(1)
    history = {"step": np.arange(6), "epoch": np.arange(6.0), "train_loss": np.linspace(2.3, 0.3, 6),
               "train_accuracy": np.linspace(0.1, 0.93, 6), "validation_loss": np.linspace(2.3, 0.25, 6),
               "validation_accuracy": np.linspace(0.1, 0.94, 6)}
    fig = plots.learning_curves(history)
    assert [line.get_label() for line in fig.axes[0].lines] == ["train", "validation"]
    counts = rng.integers(0, 50, size=(10, 10))
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    fig = plots.confusion(counts, names)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == names
    coef = rng.normal(size=(10, 784))
    image = rng.random(784)
    p = np.full(10, 0.02)
    p[7], p[3] = 0.7, 0.12
    fig = plots.evidence(image, coef, np.zeros(10), p, list("0123456789"), (28, 28))
    titles = [ax.get_title() for ax in fig.axes]
    assert "evidence for 7" in titles[1] and "evidence for 3" in titles[2] and titles[3] == "why 7 and not 3"
    fig = plots.mistakes(rng.random((5, 784)), np.array([1, 2, 3, 4, 5]), np.array([7, 7, 8, 9, 3]),
                         rng.random(5), list("0123456789"), (28, 28))
    for name, f in [("c.png", plots.learning_curves(history)), ("m.png", fig)]:
        assert plots.save(f, tmp_path / name).stat().st_size > 1000
