"""Measuring a linear classifier: curves over many weight snapshots at once, and per-class metrics."""

from __future__ import annotations

import numpy as np

_BLOCK = 1 << 22  # logits computed per chunk of rows: about 16 MB of float32
_ROWS = 4096  # and at most this many rows' features at a time (12 MB of float32 for MNIST)


def curves(coefs: np.ndarray, intercepts: np.ndarray, X, y, transform=None):
    """Mean cross-entropy and accuracy of every snapshot on (X, y).

    coefs (s, k, d) and intercepts (s, k) are s snapshots of one model; X (n, ...) raw inputs, turned into features
    by `transform` (the model's preprocessing) chunk by chunk, so that no float copy of X is made. All snapshots
    share one matrix product per chunk, which is what makes recording the tutorial's curves at every step
    affordable. Returns (loss (s,), accuracy (s,)).
    """
    y = np.asarray(y)
    # All-zero weights (every solver's start) score every class 0: loss log(k), and argmax picks class 0.
    zero = ~(coefs.any(axis=(1, 2)) | intercepts.any(axis=1))
    loss = np.full(len(coefs), np.log(coefs.shape[1]))
    accuracy = np.full(len(coefs), np.mean(y == 0) if len(y) else 0.0)
    if not zero.all():
        loss[~zero], accuracy[~zero] = _curves(coefs[~zero], intercepts[~zero], X, y, transform)
    return loss, accuracy


def _curves(coefs, intercepts, X, y, transform):
    s, k, d = coefs.shape
    stacked = coefs.transpose(1, 0, 2).reshape(k * s, d)  # (k*s, d), class-major
    bias = intercepts.T[:, :, None]  # (k, s, 1)
    rows = min(max(1, _BLOCK // (s * k)), _ROWS)
    total_loss = np.zeros(s)
    correct = np.zeros(s, dtype=np.int64)
    for start in range(0, len(y), rows):
        xb = transform(X[start : start + rows]) if transform else np.asarray(X[start : start + rows], np.float32)
        yb = np.asarray(y[start : start + rows]).astype(np.intp)
        c = len(yb)
        # (k, s, c): reductions over classes then run along long contiguous rows, whatever s is
        z = (stacked @ xb.T).reshape(k, s, c)
        z += bias
        z -= z.max(axis=0)  # now the predicted class scores exactly 0
        true = np.take_along_axis(z, np.broadcast_to(yb, (1, s, c)), axis=0)[0]  # (s, c)
        hit = true == 0
        tied = hit & ((z == 0).sum(axis=0) > 1)
        if tied.any():  # break ties as predict's argmax does: the first class wins
            t, r = np.nonzero(tied)
            hit[t, r] = z[:, t, r].argmax(axis=0) == yb[r]
        np.exp(z, out=z)
        total_loss += (np.log(z.sum(axis=0)) - true).sum(axis=1, dtype=np.float64)
        correct += hit.sum(axis=1)
    return total_loss / len(y), correct / len(y)


def roughness(coef: np.ndarray, image_shape) -> float:
    """How speckled the weight maps are: the mean squared difference of horizontally and vertically adjacent
    weights, over twice the variance of the weights.

    coef (k, d) with d = h * w. Independent noise scores 1 (adjacent weights differ as much as any two do), maps
    that vary slowly score near 0, and maps whose neighbours alternate in sign score above 1. Returns 0 for
    constant weights.
    """
    V = np.asarray(coef, dtype=np.float64).reshape(len(coef), *image_shape)
    dx = np.diff(V, axis=2).ravel()
    dy = np.diff(V, axis=1).ravel()
    variance = V.var()
    if variance == 0:
        return 0.0
    return float(np.concatenate([dx, dy]) @ np.concatenate([dx, dy]) / (len(dx) + len(dy)) / (2 * variance))


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts (k, k): row = true class index, column = predicted class index."""
    # int64: uint8 labels times 26 classes would wrap around
    index = np.asarray(y_true, dtype=np.int64) * n_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(index, minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def per_class(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class from a confusion matrix (0 where undefined)."""
    tp = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def most_confused(confusion: np.ndarray, top: int = 5) -> list[tuple[int, int, int]]:
    """The `top` largest off-diagonal cells as (true index, predicted index, count), largest first."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    return [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape)) if off[i, j] > 0]
