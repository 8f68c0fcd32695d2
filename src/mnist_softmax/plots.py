"""Figures: weight maps, learning curves, confusion, per-image evidence, mistakes.

Each function takes arrays and returns a matplotlib Figure (Agg backend, never shown); `save` writes PNG or SVG by
suffix, atomically. Signed maps use RdBu with limits symmetric about zero: blue is evidence for a class, red against.
The weights animation is the exception (animation.py, re-exported here): its frames are drawn with numpy and Pillow
directly, because drawing dozens of matplotlib figures would cost seconds.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .animation import animation_frames, save_animation, weights_animation  # noqa: F401 (re-exported)
from .explain import colour_limit, contrast, top_classes
from .files import atomic_write

SIGNED = "RdBu"
INK = "gray_r"  # input images as on paper: dark ink on white


def save(fig: Figure, path: str | Path, dpi: int = 100, *, tight: bool = True) -> Path:
    """Write `fig` as PNG or SVG (by suffix) atomically, and close it. `tight` crops the margins to the drawing,
    which costs one more layout pass; a figure laid out already (learning_curves) can do without."""
    path = Path(path)
    with atomic_write(path) as out:
        fig.savefig(out, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def percent(p: float) -> str:
    """A probability as a percentage, one decimal, more where one would round to 100% or 0% (99.97%, not 100%)."""
    p = float(p)
    for digits in range(1, 7):
        text = f"{100 * p:.{digits}f}"
        if not 0 < p < 1 or float(text) not in (0.0, 100.0):
            return text + "%"
    return "> 99.9999%" if p > 0.5 else "< 0.0001%"


def labels(class_names) -> list[str]:
    """Class names as matplotlib text: `$` escaped, so a name such as `$\\frac{$` is shown, not parsed as math."""
    return [str(n).replace("$", r"\$") for n in class_names]


def _grid(n: int, cols: int):
    rows = (n + cols - 1) // cols
    return rows, min(cols, n)


def _extend(maps, limit: float) -> str:
    """The colour bar's arrows: "both" when some values lie beyond the colour limit (see explain.colour_limit)."""
    return "both" if float(np.abs(maps).max()) > limit else "neither"


def _signed(ax, image, limit, title=None):
    im = ax.imshow(image, cmap=SIGNED, vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=10)
    return im


def weight_maps(coef: np.ndarray, image_shape, class_names, *, shared: bool = True) -> Figure:
    """One panel per class (2x5 for ten): the class's weights as an image, blue = evidence for, red = against.

    With `shared` (the default) every panel uses the same colour limits, so panels can be compared; otherwise
    each panel is scaled to its own largest weight.
    """
    k = len(coef)
    rows, cols = _grid(k, 5)
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols + 0.8, 2.2 * rows), squeeze=False)
    shared_limit = colour_limit(coef)
    for c, ax in enumerate(axes.flat):
        if c >= k:
            ax.axis("off")
            continue
        limit = shared_limit if shared else colour_limit(coef[c])
        im = _signed(ax, coef[c].reshape(image_shape), limit, labels(class_names)[c])
        if not shared:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, extend=_extend(coef[c], limit))
    if shared:
        bar = fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02, extend=_extend(coef, limit))
        bar.set_label("weight (blue: for the class, red: against)")
    fig.suptitle("What each class looks for: the weights as images", fontsize=12)
    return fig


def learning_curves(history: dict) -> Figure:
    """Loss and accuracy against training step for every recorded set (train, validation, test)."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    steps = np.asarray(history["step"])
    colours = {"train": "tab:blue", "validation": "tab:orange", "test": "tab:green"}
    marker = "o" if len(steps) <= 30 else None  # few points (one per epoch): show where they are
    for name, colour in colours.items():
        if f"{name}_loss" not in history:
            continue
        loss_ax.plot(steps, history[f"{name}_loss"], color=colour, label=name, lw=1.5, marker=marker, ms=4)
        acc_ax.plot(steps, 100 * np.asarray(history[f"{name}_accuracy"]), color=colour, label=name, lw=1.5,
                    marker=marker, ms=4)
    loss_ax.set(xlabel="step", ylabel="cross-entropy", title="Loss")
    acc_ax.set(xlabel="step", ylabel="accuracy (%)", title="Accuracy")
    accuracies = np.concatenate([np.asarray(v) for k, v in history.items() if k.endswith("_accuracy")])
    if len(steps) > 2:  # skip the zero start, which would squash the interesting range
        acc_ax.set_ylim(max(0, 100 * np.percentile(accuracies, 5) - 2), 100)
        tail = np.concatenate([np.asarray(v)[1:] for k, v in history.items() if k.endswith("_loss")])
        loss_ax.set_ylim(0, float(np.percentile(tail, 99)) * 1.1)
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def confusion(counts: np.ndarray, class_names) -> Figure:
    """The confusion matrix twice: counts, and normalised by row (the recall of each true class)."""
    k = len(counts)
    names = labels(class_names)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * k + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    panels = ((axes[0], counts, "Counts (colour on a log scale)", "d"),
              (axes[1], rates, "Share of each true class", ".2f"))
    for ax, data, title, fmt in panels:
        shown = np.log1p(data) if fmt == "d" else data
        ax.imshow(shown, cmap="Blues", interpolation="nearest")
        for i in range(k):
            for j in range(k):
                value = data[i, j]
                if value:
                    text = format(int(value), "d") if fmt == "d" else format(value, ".2f").lstrip("0")
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if shown[i, j] > 0.6 * shown.max() else "black")
        ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right")
        ax.set_yticks(range(k), names)
        ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    return fig


def evidence(image: np.ndarray, coef: np.ndarray, intercept: np.ndarray, probabilities: np.ndarray,
             class_names, image_shape, reference: np.ndarray | None = None) -> Figure:
    """Why the model decided as it did on one image.

    image (d,) the features the model saw; panels: the input, the evidence w_c * x for the predicted class and the
    runner-up, the contrast (w_a - w_b) * x ("why a and not b"), and the class probabilities. With `reference` (d,),
    usually the mean training image, the maps are relative to it, w_c * (x - reference), and sum to the score minus
    the reference's score: missing ink counts as evidence too.
    """
    names = labels(class_names)
    a, b = top_classes(probabilities[None], 2)[0]
    x = image if reference is None else image - reference
    maps = [x * coef[a], x * coef[b], contrast(x[None], coef, a, b)[0]]
    limit = float(max(np.abs(m).max() for m in maps)) or 1.0
    fig = plt.figure(figsize=(16, 3.6))
    grid = fig.add_gridspec(1, 7, width_ratios=[1, 1, 1, 1, 0.07, 0.45, 1.6], wspace=0.2)  # [5] keeps a gap
    ax = fig.add_subplot(grid[0])
    ax.imshow(image.reshape(image_shape), cmap=INK, vmin=0, vmax=max(1.0, float(image.max())), interpolation="nearest")
    ax.set(xticks=[], yticks=[], title="what the model sees")
    if reference is None:
        titles = [f"evidence for {names[a]}\n(sum {maps[0].sum() + intercept[a]:+.1f} with bias)",
                  f"evidence for {names[b]}\n(sum {maps[1].sum() + intercept[b]:+.1f} with bias)",
                  f"why {names[a]} and not {names[b]}"]
    else:
        titles = [f"evidence for {names[a]} vs the mean\n(sum {maps[0].sum():+.1f} = z(x) - z(mean))",
                  f"evidence for {names[b]} vs the mean\n(sum {maps[1].sum():+.1f} = z(x) - z(mean))",
                  f"why {names[a]} and not {names[b]}\n(vs the mean)"]
    for i, (m, title) in enumerate(zip(maps, titles)):
        im = _signed(fig.add_subplot(grid[i + 1]), m.reshape(image_shape), limit, title)
    fig.colorbar(im, cax=fig.add_subplot(grid[4]), label="evidence")
    ax = fig.add_subplot(grid[6])
    order = np.arange(len(names))
    colours = ["tab:blue" if i == a else ("tab:orange" if i == b else "tab:gray") for i in order]
    ax.barh(order, probabilities, color=colours)
    ax.set_yticks(order, names)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="probability", title=f"prediction: {names[a]} ({percent(probabilities[a])})")
    fig.subplots_adjust(left=0.02, right=0.98)
    return fig


def means_and_weights(means: np.ndarray, coef: np.ndarray, image_shape, class_names) -> Figure:
    """Why a template is not the average image: each class's mean image (k, d) above its weights (k, d).

    The middle row is the class mean minus the mean of all classes' means: what sets the class apart from the
    others' average, which is nearer to what the weights encode than the mean image itself.
    """
    k = len(coef)
    names = labels(class_names)
    fig = plt.figure(figsize=(1.35 * k + 1.2, 4.6))
    grid = fig.add_gridspec(3, k + 1, width_ratios=[1] * k + [0.08], wspace=0.08, hspace=0.12)
    axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(k)] for r in range(3)])
    apart = means - means.mean(axis=0)
    top = max(1.0, float(means.max()))
    rows = [(means, None, "mean image"), (apart, float(np.abs(apart).max()) or 1.0, "mean minus\nall classes'"),
            (coef, colour_limit(coef), "weights")]
    for r, (maps, limit, label) in enumerate(rows):
        for c in range(k):
            if limit is None:
                im = axes[r, c].imshow(maps[c].reshape(image_shape), cmap=INK, vmin=0, vmax=top,
                                       interpolation="nearest")
                axes[r, c].set(xticks=[], yticks=[])
            else:
                im = _signed(axes[r, c], maps[c].reshape(image_shape), limit)
        axes[r, 0].set_ylabel(label, fontsize=9)
        fig.colorbar(im, cax=fig.add_subplot(grid[r, k]), extend=_extend(maps, limit) if limit else "neither")
    for c in range(k):
        axes[0, c].set_title(names[c], fontsize=10)
    fig.suptitle("The mean image of each class, what sets it apart, and the weights the model learned", fontsize=11)
    return fig


def mistakes(images: np.ndarray, true: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, class_names,
             image_shape, cols: int = 8) -> Figure:
    """A gallery of misclassified images (n, d), each titled 'true -> predicted (confidence)'."""
    names = labels(class_names)
    n = len(images)
    rows, cols = _grid(max(n, 1), cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].reshape(image_shape), cmap=INK, vmin=0, vmax=max(1.0, float(images[i].max())))
            ax.set_title(f"{names[true[i]]} → {names[predicted[i]]}\n{percent(confidence[i])}", fontsize=8)
    fig.suptitle("Most confident mistakes: true → predicted (probability)", fontsize=11)
    fig.tight_layout()
    return fig


def save_input(image: np.ndarray, path: str | Path) -> Path:
    """Write an input image (h, w) in [0, 1] as an 8-bit greyscale PNG of the same size, atomically: light ink on
    black, as MNIST stores its digits, so that reading it back gives the same image to within 1/255."""
    from PIL import Image

    path = Path(path)
    pixels = np.rint(np.clip(np.asarray(image, dtype=np.float64), 0, 1) * 255).astype(np.uint8)
    with atomic_write(path) as out:
        Image.fromarray(pixels, "L").save(out, format="PNG")
    return path


def model_input(image: np.ndarray) -> Figure:
    """The image (h, w) exactly as the model sees it, pixel for pixel."""
    fig, ax = plt.subplots(figsize=(2.8, 2.8))
    ax.imshow(image, cmap=INK, vmin=0, vmax=max(1.0, float(image.max())), interpolation="nearest")
    ax.set(xticks=[], yticks=[], title="what the model sees")
    return fig


def read_figure(photo: np.ndarray, original_shape, boxes, inputs, features, coef: np.ndarray, predicted,
                probabilities, class_names) -> Figure:
    """How `read` read a number: the photo (h, w[, 3]) with each digit's box (top, left, bottom, right in the
    original image's pixels, of `original_shape`), and per digit the input the model saw (inputs (n, h, w)) and
    the evidence w_c * x for the class it chose (features (n, d)), titled with that class and its probability."""
    from matplotlib.patches import Rectangle

    names = labels(class_names)
    n = 0 if inputs is None else len(inputs)
    cols = max(n, 1)
    fig = plt.figure(figsize=(max(6.0, 1.6 * cols), 3.2 + 3.4))
    grid = fig.add_gridspec(3, cols, height_ratios=[3.2, 1.6, 1.6], hspace=0.35)
    ax = fig.add_subplot(grid[0, :])
    ax.imshow(photo, cmap="gray" if photo.ndim == 2 else None)
    fy, fx = photo.shape[0] / original_shape[0], photo.shape[1] / original_shape[1]
    for i, (top, left, bottom, right) in enumerate(boxes):
        ax.add_patch(Rectangle((left * fx, top * fy), (right - left) * fx, (bottom - top) * fy, fill=False,
                               edgecolor="tab:orange", linewidth=2))
        ax.text(left * fx, top * fy, names[predicted[i]], color="tab:orange", fontsize=12, va="bottom")
    text = "".join(names[i] for i in predicted) if n else "no digits found"
    ax.set(xticks=[], yticks=[], title=f"read: {text}")
    if n:
        limit = float(max(np.abs(features[i] * coef[predicted[i]]).max() for i in range(n))) or 1.0
        for i in range(n):
            a = fig.add_subplot(grid[1, i])
            a.imshow(inputs[i], cmap=INK, vmin=0, vmax=max(1.0, float(inputs[i].max())), interpolation="nearest")
            a.set(xticks=[], yticks=[])
            a.set_title(f"{names[predicted[i]]} ({percent(probabilities[i][predicted[i]])})", fontsize=9)
            _signed(fig.add_subplot(grid[2, i]), (features[i] * coef[predicted[i]]).reshape(inputs[i].shape), limit,
                    "evidence" if i == 0 else None)
    return fig
