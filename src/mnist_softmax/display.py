"""How models, estimators and datasets show themselves in Jupyter: small HTML summaries with inline PNG images.

The images are drawn with numpy and Pillow (a diverging red-white-blue colour table, as plots.py uses), not with
matplotlib, so showing a model costs milliseconds and imports nothing heavy. Everything is inline (data: URLs):
the output fetches nothing and survives being saved in a notebook.
"""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np

from .explain import colour_limit

# ColorBrewer's RdBu, the colours matplotlib's "RdBu" interpolates: red (against) through white to blue (for).
_RDBU = np.array([
    [103, 0, 31], [178, 24, 43], [214, 96, 77], [244, 165, 130], [253, 219, 199], [247, 247, 247],
    [209, 229, 240], [146, 197, 222], [67, 147, 195], [33, 102, 172], [5, 48, 97],
], dtype=np.float64)
_LUT = np.stack([np.interp(np.linspace(0, 1, 257), np.linspace(0, 1, len(_RDBU)), _RDBU[:, c]) for c in range(3)],
                axis=1).round().astype(np.uint8)  # (257, 3): an odd count, so that zero is exactly the middle
ZOOM = 3  # screen pixels per image pixel
_STYLE = "font-family:sans-serif;font-size:13px;line-height:1.4"


def signed_rgb(values: np.ndarray, limit: float) -> np.ndarray:
    """Signed values (...) -> RGB uint8 (..., 3): -limit red, 0 white, +limit blue (limits symmetric about zero)."""
    limit = limit or 1.0
    index = np.clip(np.rint((np.asarray(values, np.float64) / limit + 1) * 128), 0, 256).astype(np.intp)
    return _LUT[index]


def ink_rgb(image: np.ndarray, vmax: float) -> np.ndarray:
    """An input image (h, w) as dark ink on white paper, RGB uint8 (h, w, 3)."""
    level = np.clip(np.asarray(image, np.float64) / (vmax or 1.0), 0, 1)
    grey = np.rint(255 * (1 - level)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def png(rgb: np.ndarray, zoom: int = ZOOM) -> bytes:
    """RGB uint8 (h, w, 3) -> PNG bytes, each pixel a zoom x zoom square (no smoothing: the pixels are the data)."""
    from PIL import Image

    rgb = np.repeat(np.repeat(np.asarray(rgb, np.uint8), zoom, axis=0), zoom, axis=1)
    buffer = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _img(data: bytes, alt: str) -> str:
    return (f'<img src="data:image/png;base64,{base64.b64encode(data).decode()}" alt="{html.escape(alt)}" '
            f'style="image-rendering:pixelated;display:block">')


def _panels(images: list[np.ndarray], captions: list[str], alt: str) -> str:
    """A row of images (RGB arrays) with a caption under each, wrapping on narrow screens."""
    cells = "".join(
        f'<figure style="margin:0 6px 6px 0;text-align:center">{_img(png(im), f"{alt} {c}")}'
        f'<figcaption>{html.escape(c)}</figcaption></figure>'
        for im, c in zip(images, captions, strict=True)
    )
    return f'<div style="display:flex;flex-wrap:wrap">{cells}</div>'


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f'<tr><th style="text-align:left;padding-right:1em">{html.escape(k)}</th>'
                   f'<td style="text-align:left">{html.escape(v)}</td></tr>' for k, v in rows)
    return f"<table>{body}</table>"


def _shape_of(d: int, image_shape) -> tuple[int, int] | None:
    """The 2-d image shape of d features: the one the model knows, else a square when d is one (784 -> 28x28)."""
    if image_shape and len(image_shape) == 2:
        return int(image_shape[0]), int(image_shape[1])
    r = math.isqrt(d)
    return (r, r) if r * r == d and d > 1 else None


def weight_maps_html(coef: np.ndarray, shape, names) -> str:
    """Each class's weights as an image on one shared, symmetric colour scale, with the key."""
    limit = colour_limit(coef)
    images = [signed_rgb(row.reshape(shape), limit) for row in np.asarray(coef)]
    key = (f"<div>weights as images: blue is evidence for the class, red against (shared scale, "
           f"&plusmn;{limit:.3g}; the few larger weights at full colour)</div>")
    return _panels(images, [str(n) for n in names], "weights of class") + key


def weights_grid_png(coef: np.ndarray, shape, columns: int = 5, gap: int = 2) -> bytes:
    """All classes' weight maps in one PNG (columns per row, white gaps), on one shared symmetric scale."""
    k = len(coef)
    h, w = shape
    rows = (k + columns - 1) // columns
    cols = min(columns, k)
    canvas = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    limit = colour_limit(coef)
    for c in range(k):
        r, q = divmod(c, columns)
        canvas[r * (h + gap): r * (h + gap) + h, q * (w + gap): q * (w + gap) + w] = signed_rgb(
            np.asarray(coef[c]).reshape(h, w), limit)
    return png(canvas)


def _percent(value) -> str:
    return f"{100 * float(value):.2f}%" if value is not None else "-"


def model_html(model) -> str:
    """A SoftmaxModel at a glance: dataset, accuracy, preprocessing, and its weight maps."""
    meta = model.metadata
    k, d = model.coef.shape
    pre = model.preprocessing
    shape = _shape_of(d, pre.image_shape)
    dataset = meta.get("dataset", {})
    metrics = meta.get("metrics", {})
    rows = [
        ("classes", f"{k}: " + ", ".join(str(n) for n in model.class_names)),
        ("features", f"{d}" + (f" ({shape[0]}x{shape[1]} images)" if shape else "")),
        ("dataset", str(dataset.get("title") or dataset.get("name") or "not recorded")),
    ]
    accuracy = {s: metrics.get(f"{s}_accuracy") for s in ("train", "validation", "test")}
    if any(v is not None for v in accuracy.values()):
        rows.append(("accuracy", "  ".join(f"{s} {_percent(v)}" for s, v in accuracy.items() if v is not None)))
    recipe = meta.get("hyperparameters", {}).get("name") or metrics.get("recipe")
    if recipe:
        rows.append(("recipe", str(recipe)))
    divisor = 1 / pre.scale
    steps = [f"pixels / {divisor:g}" if abs(divisor - round(divisor)) < 1e-6 else f"pixels x {pre.scale:.6g}"]
    steps += ["deskew"] if pre.deskew else []
    from .export import temperature

    t = temperature(model)
    if t is not None:
        steps.append(f"temperature {t:.4g}")
    rows.append(("preprocessing", ", ".join(steps)))
    maps = weight_maps_html(model.coef, shape, model.class_names) if shape else ""
    return (f'<div class="mnist-softmax" style="{_STYLE}"><strong>SoftmaxModel</strong>'
            f"{_table(rows)}{maps}</div>")


def model_png(model) -> bytes | None:
    """The model's weight maps in one PNG, or None for a model whose features are not an image."""
    shape = _shape_of(model.coef.shape[1], model.preprocessing.image_shape)
    return weights_grid_png(model.coef, shape) if shape else None


def estimator_html(clf, diagram: str | None = None) -> str:
    """A fitted SoftmaxClassifier at a glance: its parameters, the fit, the last recorded accuracy, weight maps."""
    k, d = clf.coef_.shape
    shape = _shape_of(d, None)
    history = getattr(clf, "history_", {}) or {}
    rows = [
        ("estimator", repr(clf)),
        ("classes", f"{k}: " + ", ".join(str(c) for c in clf.classes_)),
        ("features", f"{d}" + (f" (shown as {shape[0]}x{shape[1]} images)" if shape else "")),
    ]
    if getattr(clf, "n_iter_", None) is not None:
        rows.append(("fit", f"{int(clf.n_iter_):,} steps"
                     + (f", {clf.n_epochs_:.2f} epochs" if getattr(clf, "n_epochs_", None) else "")))
    last = [f"{s} {_percent(history[f'{s}_accuracy'][-1])}" for s in ("train", "validation")
            if len(history.get(f"{s}_accuracy", ())) > 0]
    if last:
        rows.append(("accuracy", "  ".join(last) + " (last recorded)"))
    maps = weight_maps_html(clf.coef_, shape, clf.classes_) if shape else ""
    return (f'<div class="mnist-softmax" style="{_STYLE}"><strong>SoftmaxClassifier</strong> (fitted)'
            f"{_table(rows)}{maps}{diagram or ''}</div>")


def estimator_png(clf) -> bytes | None:
    shape = _shape_of(clf.coef_.shape[1], None)
    return weights_grid_png(clf.coef_, shape) if shape else None


def dataset_html(ds, per_class: int = 1) -> str:
    """A Dataset at a glance: sizes, classes, where the files came from, and the first training image per class."""
    spec = ds.spec
    sources = sorted(set(ds.sources.values())) if ds.sources else []
    rows = [
        ("dataset", f"{spec.name}: {spec.title}"),
        ("images", f"{len(ds.train_labels):,} train, {len(ds.test_labels):,} test, "
                   f"{'x'.join(str(s) for s in ds.train_images.shape[1:])} pixels, {ds.train_images.dtype}"),
        ("classes", f"{len(spec.class_names)}: " + ", ".join(spec.class_names)),
        ("files", ", ".join(sources) or "-"),
    ]
    labels = np.asarray(ds.train_labels)
    vmax = float(getattr(spec, "pixel_max", 255) or 255)
    images, captions = [], []
    for c, name in enumerate(spec.class_names):
        found = np.flatnonzero(labels == c)[:per_class]
        for i in found:
            images.append(ink_rgb(ds.train_images[i], vmax))
            captions.append(str(name))
    samples = _panels(images, captions, "a training image of class") if images else ""
    return f'<div class="mnist-softmax" style="{_STYLE}"><strong>Dataset</strong>{_table(rows)}{samples}</div>'
