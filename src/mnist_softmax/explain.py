"""Exact explanations of a linear model's decisions.

For softmax regression the score of class c is a sum over pixels: z_c(x) = sum_i W[c, i] * x_i + b_c. So the
per-pixel *evidence* W[c, i] * x_i, summed over pixels, plus the intercept, gives back the score exactly: nothing
is approximated, unlike saliency maps or SHAP estimates for a deep network, whose scores are not sums of per-pixel
terms. "Why 3 and not 8" is exact too: (W[3] - W[8]) * x sums to z_3 - z_8 minus the intercepts' difference.

The exact evidence only sees ink: a blank pixel contributes nothing, even where its blankness is what tells a 0
from an 8. Evidence *relative to a reference image* m, usually the mean training image ("the average digit"),
(x - m) * W[c], sums to z_c(x) - z_c(m): it explains how this image's differences from the average digit move each
score, so missing ink counts too, and ink that every digit has cancels out.
"""

from __future__ import annotations

import numpy as np


def evidence_from_features(features: np.ndarray, coef: np.ndarray, image_shape=None, reference=None) -> np.ndarray:
    """Per-class, per-feature evidence (n, k, d), or (n, k, h, w) given an image shape.

    With `reference` (d,), the evidence of features - reference: it sums to z_c(x) - z_c(reference).
    """
    X = features if reference is None else features - reference
    E = X[:, None, :] * coef[None, :, :]  # (n, k, d)
    return E.reshape(len(features), coef.shape[0], *image_shape) if image_shape else E


def contrast(features: np.ndarray, coef: np.ndarray, a: int, b: int, reference=None) -> np.ndarray:
    """Evidence for class index a against class index b: (W[a] - W[b]) * x, shape (n, d); of x - reference if given."""
    X = features if reference is None else features - reference
    return X * (coef[a] - coef[b])


def colour_limit(maps, quantile: float = 99.5) -> float:
    """The limit of a symmetric colour scale for signed maps: the `quantile` percentile of |maps| (1.0 if all zero).

    Not the maximum, because a handful of large weights on rarely inked pixels (the 5's top-right corner) would
    wash every template out; the few values beyond the limit are shown at full colour.
    """
    values = np.abs(np.asarray(maps, dtype=np.float64))
    return float(np.percentile(values, quantile)) or float(values.max()) or 1.0


def top_classes(probabilities: np.ndarray, k: int = 3) -> np.ndarray:
    """Indices of the k most probable classes of each row, most probable first: (n, k)."""
    return np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
