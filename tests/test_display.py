"""Jupyter reprs: models, fitted estimators and datasets show their images inline, fetch nothing, need no matplotlib."""

import base64
import io
import re
import subprocess
import sys

import numpy as np
from PIL import Image

from mnist_softmax import Preprocessing, SoftmaxModel, load_dataset
from mnist_softmax.display import ZOOM, signed_rgb

INLINE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def inline_images(page: str) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")) for data in INLINE.findall(page)]


def assert_self_contained(page: str) -> None:
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page, re.I), "an external URL"
    assert "url(" not in page and "<script" not in page and "<link" not in page
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'src="([^"]*)"', page))


def image_model(k=3, shape=(6, 5)):
    coef = np.zeros((k, shape[0] * shape[1]), np.float32)
    for c in range(k):
        coef[c, c] = 2.0  # one strongly positive pixel per class
        coef[c, -1 - c] = -2.0  # and one strongly negative
    meta = {"dataset": {"name": "tiny", "title": "a tiny set"}, "metrics": {"test_accuracy": 0.9123}}
    return SoftmaxModel(coef, np.zeros(k, np.float32), np.arange(k), Preprocessing(1 / 255, shape),
                        ("zero", "one", "two"), meta)


def test_model_html_shows_each_weight_map_inline_with_its_colours():
    model = image_model()
    page = model._repr_html_()
    assert_self_contained(page)
    assert "a tiny set" in page and "test 91.23%" in page and "pixels / 255" in page
    images = inline_images(page)
    assert len(images) == 3  # one map per class
    for c, image in enumerate(images):
        assert image.shape == (6 * ZOOM, 5 * ZOOM, 3)
        maps = image[::ZOOM, ::ZOOM]  # one screen pixel per weight
        positive = maps.reshape(-1, 3)[c]
        negative = maps.reshape(-1, 3)[-1 - c]
        zero = maps.reshape(-1, 3)[10]
        assert positive[2] > 80 and positive[0] < 20  # dark blue: evidence for
        assert negative[0] > 80 and negative[2] < 40  # dark red: evidence against
        assert zero.min() > 240  # white: no evidence
        assert f"<figcaption>{model.class_names[c]}</figcaption>" in page


def test_model_png_is_the_grid_of_maps():
    image = np.asarray(Image.open(io.BytesIO(image_model()._repr_png_())))
    assert image.shape == (6 * ZOOM, (3 * 5 + 2 * 2) * ZOOM, 3)  # three panels in a row, two gaps
    flat = SoftmaxModel(np.ones((2, 7), np.float32), np.zeros(2, np.float32), np.array([0, 1]))
    assert flat._repr_png_() is None and "<img" not in flat._repr_html_()  # no image shape: no picture


def test_signed_colours_are_symmetric_about_white():
    rgb = signed_rgb(np.array([-1.0, 0.0, 1.0, 5.0]), 1.0)
    assert rgb[1].tolist() == [247, 247, 247]
    assert rgb[0].tolist() == [103, 0, 31] and rgb[2].tolist() == [5, 48, 97] and rgb[3].tolist() == rgb[2].tolist()


def test_estimator_repr_before_and_after_fit():
    from mnist_softmax import SoftmaxClassifier

    clf = SoftmaxClassifier(steps=50, random_state=0)
    before = clf._repr_mimebundle_()
    assert "<img" not in before.get("text/html", "")  # unfitted: scikit-learn's own diagram
    rng = np.random.default_rng(0)
    X = rng.random((60, 16)).astype(np.float32)
    y = np.arange(60) % 3
    clf.fit(X, y)
    page = clf._repr_html_()
    assert_self_contained(page)
    assert len(inline_images(page)) == 3 and "4x4 images" in page and "train " in page
    assert clf._repr_mimebundle_()["image/png"] == clf._repr_png_()


def test_dataset_html_shows_one_image_per_class(tiny):
    spec, folder = tiny
    ds = load_dataset("tiny", folder)
    page = ds._repr_html_()
    assert_self_contained(page)
    assert f"{len(ds.train_labels):,} train" in page and "a, b, c" in page
    images = inline_images(page)
    assert len(images) == 3
    for label, image in enumerate(images):  # the tiny set's class c has a bright column at 2c: dark ink here
        columns = image[::ZOOM, ::ZOOM, 0].mean(axis=0)
        assert np.argmin(columns) in (2 * label, 2 * label + 1)


def test_showing_a_model_imports_no_matplotlib(tmp_path):
    from mnist_softmax import save_model

    save_model(image_model(), tmp_path / "m.npz")
    code = (
        "import sys, mnist_softmax as ms\n"
        f"m = ms.load_model({str(tmp_path / 'm.npz')!r})\n"
        "assert '<img' in m._repr_html_() and m._repr_png_()\n"
        "print(sorted(n for n in ('matplotlib', 'sklearn', 'scipy', 'onnx') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
