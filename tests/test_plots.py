"""Figures: they are drawn, saved as PNG and SVG, and their colour limits tell the truth."""

import numpy as np
import pytest

from mnist_softmax import animation, plots


def test_weight_maps_share_symmetric_limits(tmp_path):
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(10, 784))
    coef[3] *= 5
    fig = plots.weight_maps(coef, (28, 28), list("0123456789"))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 10
    limit = np.percentile(np.abs(coef), 99.5)  # not the maximum: a few extreme weights must not wash the rest out
    assert limit < np.abs(coef).max()
    assert all(im.get_clim() == pytest.approx((-limit, limit)) for im in images)  # shared, symmetric
    assert images[-1].colorbar.extend == "both"  # the colour bar's arrows say some weights lie beyond it
    assert images[0].get_cmap().name == "RdBu"
    assert [ax.get_title() for ax in fig.axes if ax.images] == list("0123456789")
    own = plots.weight_maps(coef, (28, 28), list("0123456789"), shared=False)
    own_images = [ax.images[0] for ax in own.axes if ax.images]
    own_limit = np.percentile(np.abs(coef[0]), 99.5)
    assert own_images[0].get_clim() == pytest.approx((-own_limit, own_limit))
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
                         np.array([0.9997, 0.99999, 0.5, 0.6, 0.7]), list("0123456789"), (28, 28))
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles[:2] == ["1 → 7\n99.97%", "2 → 7\n99.999%"]  # confident mistakes are not shown as 100%
    for name, f in [("c.png", plots.learning_curves(history)), ("m.png", fig)]:
        assert plots.save(f, tmp_path / name).stat().st_size > 1000


def test_percent_never_rounds_a_mistake_to_certainty():
    assert plots.percent(0.9997) == "99.97%"
    assert plots.percent(0.99999) == "99.999%"
    assert plots.percent(0.5) == "50.0%" and plots.percent(1.0) == "100.0%" and plots.percent(0.0) == "0.0%"
    assert plots.percent(2e-5) == "0.002%"


def test_animation_frames_pick_first_last_and_at_most_the_limit():
    steps = np.arange(1001)
    pick = plots.animation_frames(steps, 32)
    assert 20 <= len(pick) <= 32 and pick[0] == 0 and pick[-1] == 1000
    assert np.all(np.diff(pick) > 0)
    assert np.median(np.diff(steps[pick])[:10]) < np.median(np.diff(steps[pick])[-10:])  # denser early
    assert list(plots.animation_frames(np.arange(0, 50, 10), 32)) == [0, 1, 2, 3, 4]  # few snapshots: all


def test_weights_animation_has_one_colour_scale_and_a_caption_per_frame(tmp_path):
    from PIL import Image, ImageSequence

    rng = np.random.default_rng(0)
    final = rng.normal(size=(10, 784)).astype(np.float32)
    growth = np.linspace(0, 1, 24)
    coefs = growth[:, None, None] * final  # (24, 10, 784): the weights grow linearly
    frames = plots.weights_animation(coefs, (28, 28), list("0123456789"), np.arange(24) * 10,
                                     np.linspace(0.1, 0.9, 24))
    assert len(frames) == 24 and len({f.size for f in frames}) == 1 and frames[0].mode == "P"
    arrays = np.stack([np.asarray(f) for f in frames])
    # One scale for all frames: the first frame (all zero weights) is uniformly the middle colour, the last
    # frame's largest weight takes an end of the scale, and a middle frame is paler than the last.
    panels = arrays[:, 40:-40, :]  # below the caption, above the colour bar
    assert len(np.unique(panels[0][panels[0] < animation._LEVELS])) == 1
    last_levels = panels[-1][panels[-1] < animation._LEVELS]
    assert last_levels.min() == 0 or last_levels.max() == animation._LEVELS - 1
    middle = panels[12][panels[12] < animation._LEVELS].astype(int)
    centre = (animation._LEVELS - 1) / 2
    assert np.abs(middle - centre).max() < np.abs(last_levels.astype(int) - centre).max()
    # The caption (step, accuracy) is drawn in the header and differs between frames:
    header = arrays[:, :25, :]
    assert all((header[j] >= animation._LEVELS).any() for j in range(24))
    assert not np.array_equal(header[3], header[4])
    path = plots.save_animation(frames, tmp_path / "w.gif", comment="steps 0 10")
    with Image.open(path) as gif:
        assert gif.n_frames == 24 and gif.info["comment"] == b"steps 0 10" and gif.info["loop"] == 0
        first = np.asarray(next(ImageSequence.Iterator(gif)).convert("RGB"))
    assert first.shape == (frames[0].size[1], frames[0].size[0], 3)


def test_animation_palette_is_matplotlibs_rdbu_without_importing_it():
    import subprocess
    import sys

    import matplotlib

    rgb = matplotlib.colormaps[plots.SIGNED](np.linspace(0, 1, animation._LEVELS))[:, :3]
    palette = np.array(animation._palette()).reshape(-1, 3)
    assert palette.shape == (animation._LEVELS + animation._GREYS, 3)
    np.testing.assert_array_equal(palette[: animation._LEVELS], (rgb * 255).round())
    assert palette[animation._LEVELS].tolist() == [255] * 3 and palette[-1].tolist() == [0] * 3  # greys for text
    code = "import sys, mnist_softmax.animation as a; a._palette(); a._font(12); print('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_means_beside_weights_and_evidence_relative_to_the_mean():
    rng = np.random.default_rng(2)
    means, coef = rng.random((10, 784)), rng.normal(size=(10, 784))
    fig = plots.means_and_weights(means, coef, (28, 28), list("0123456789"))
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 30  # three rows of ten: mean image, what sets the class apart, weights
    assert images[0].get_cmap().name == "gray_r"
    np.testing.assert_allclose(images[13].get_array(), (means[3] - means.mean(axis=0)).reshape(28, 28))
    np.testing.assert_allclose(images[27].get_array(), coef[7].reshape(28, 28))
    limit = np.percentile(np.abs(coef), 99.5)  # the weights row is scaled like weights.png
    assert images[27].get_clim() == pytest.approx((-limit, limit))
    image, reference = rng.random(784), means.mean(axis=0)
    p = np.full(10, 0.02)
    p[7], p[3] = 0.7, 0.12
    fig = plots.evidence(image, coef, np.zeros(10), p, list("0123456789"), (28, 28), reference=reference)
    shown = [ax for ax in fig.axes if ax.images]
    np.testing.assert_allclose(shown[1].images[0].get_array(), ((image - reference) * coef[7]).reshape(28, 28))
    total = ((image - reference) * coef[7]).sum()
    assert "vs the mean" in shown[1].get_title() and f"{total:+.1f}" in shown[1].get_title()
