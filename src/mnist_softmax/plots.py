"""Figures: weight maps, learning curves, confusion, per-image evidence, mistakes.

Each function takes arrays and returns a matplotlib Figure (Agg backend, never shown); `save` writes PNG or SVG by
suffix, atomically. Signed maps use RdBu with limits symmetric about zero: blue is evidence for a class, red against.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .explain import contrast, top_classes  # noqa: E402
from .files import atomic_write  # noqa: E402

SIGNED = "RdBu"
INK = "gray_r"  # input images as on paper: dark ink on white


def save(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write `fig` as PNG or SVG (by suffix) atomically, and close it."""
    path = Path(path)
    with atomic_write(path) as out:
        fig.savefig(out, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(n: int, cols: int):
    rows = (n + cols - 1) // cols
    return rows, min(cols, n)


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
    shared_limit = float(np.abs(coef).max()) or 1.0
    for c, ax in enumerate(axes.flat):
        if c >= k:
            ax.axis("off")
            continue
        limit = shared_limit if shared else (float(np.abs(coef[c]).max()) or 1.0)
        im = _signed(ax, coef[c].reshape(image_shape), limit, str(class_names[c]))
        if not shared:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if shared:
        bar = fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02)
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
    names = [str(n) for n in class_names]
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * k + 2)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size))
    panels = ((axes[0], counts, "Counts (colour on a log scale)", "d"), (axes[1], rates, "Share of each true class", ".2f"))
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
             class_names, image_shape) -> Figure:
    """Why the model decided as it did on one image.

    image (d,) the features the model saw; panels: the input, the evidence w_c * x for the predicted class and the
    runner-up, the contrast (w_a - w_b) * x ("why a and not b"), and the class probabilities.
    """
    names = [str(n) for n in class_names]
    a, b = top_classes(probabilities[None], 2)[0]
    maps = [image * coef[a], image * coef[b], contrast(image[None], coef, a, b)[0]]
    limit = float(max(np.abs(m).max() for m in maps)) or 1.0
    fig = plt.figure(figsize=(16, 3.6))
    grid = fig.add_gridspec(1, 7, width_ratios=[1, 1, 1, 1, 0.07, 0.45, 1.6], wspace=0.2)  # [5] keeps a gap
    ax = fig.add_subplot(grid[0])
    ax.imshow(image.reshape(image_shape), cmap=INK, vmin=0, vmax=max(1.0, float(image.max())), interpolation="nearest")
    ax.set(xticks=[], yticks=[], title="what the model sees")
    titles = [f"evidence for {names[a]}\n(sum {maps[0].sum() + intercept[a]:+.1f} with bias)",
              f"evidence for {names[b]}\n(sum {maps[1].sum() + intercept[b]:+.1f} with bias)",
              f"why {names[a]} and not {names[b]}"]
    for i, (m, title) in enumerate(zip(maps, titles)):
        im = _signed(fig.add_subplot(grid[i + 1]), m.reshape(image_shape), limit, title)
    fig.colorbar(im, cax=fig.add_subplot(grid[4]), label="evidence")
    ax = fig.add_subplot(grid[6])
    order = np.arange(len(names))
    colours = ["tab:blue" if i == a else ("tab:orange" if i == b else "tab:gray") for i in order]
    ax.barh(order, probabilities, color=colours)
    ax.set_yticks(order, names)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="probability", title=f"prediction: {names[a]} ({100 * probabilities[a]:.1f}%)")
    fig.subplots_adjust(left=0.02, right=0.98)
    return fig


def mistakes(images: np.ndarray, true: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, class_names,
             image_shape, cols: int = 8) -> Figure:
    """A gallery of misclassified images (n, d), each titled 'true -> predicted (confidence)'."""
    names = [str(n) for n in class_names]
    n = len(images)
    rows, cols = _grid(max(n, 1), cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].reshape(image_shape), cmap=INK, vmin=0, vmax=max(1.0, float(images[i].max())))
            ax.set_title(f"{names[true[i]]} → {names[predicted[i]]}\n{100 * confidence[i]:.0f}%", fontsize=8)
    fig.suptitle("Most confident mistakes: true → predicted (probability)", fontsize=11)
    fig.tight_layout()
    return fig


def model_input(image: np.ndarray) -> Figure:
    """The image (h, w) exactly as the model sees it, pixel for pixel."""
    fig, ax = plt.subplots(figsize=(2.8, 2.8))
    ax.imshow(image, cmap=INK, vmin=0, vmax=max(1.0, float(image.max())), interpolation="nearest")
    ax.set(xticks=[], yticks=[], title="what the model sees")
    return fig
