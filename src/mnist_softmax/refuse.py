"""Knowing when not to answer: how far an input lies from the training images of every class.

A linear model's largest probability is a poor test of "is this a digit at all": a letter lands on some side of
every decision boundary, often far from all of them, and so gets a confident answer. What a letter lacks is the
*shape* of any digit. A class is not one shape (a 7 with or without its bar, a 4 open or closed, a 2 with or
without a loop), so each class's training images are split into a few clusters (k-means), and for each cluster we
keep its mean and the few directions in which it varies most (the top principal components, stored with the model
as plain arrays); an input is explained by a class when it is close to one of its cluster means plus some mix of
that cluster's directions. The score is the squared residual to the nearest of these local subspaces: the ink
that no way of writing a digit explains. Several small subspaces follow the ways digits are written more closely
than one larger subspace per class, which also explains more letters. Inputs scoring above a threshold (the 98.5th
percentile of the validation digits: about 2.5% of test digits) are refused.

The images are deskewed and lightly blurred first, whatever the model itself does, so that slant and the exact
stroke placement (which vary between writers, not between digits and letters) do not count as novelty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPONENTS = 8  # directions kept per cluster: enough for one way of writing a digit, too few to draw a letter
CLUSTERS = 4  # ways of writing per class: 4 x 8 measured best of 1-8 clusters x 3-40 directions (letters/digits)
BLUR = 1.0  # Gaussian sigma in pixels of a 28x28 image (scaled with the image's size)
QUANTILE = 0.985  # the share of validation digits accepted: about 2.5% of MNIST test digits are refused
SAMPLE = 1500  # training images per class used to fit (more changes nothing measurable, costs time)


@dataclass(frozen=True)
class Novelty:
    """Per-class subspaces of the training images and the refusal threshold (see the module docstring)."""

    means: np.ndarray  # (k * c, d) float32: each class's c cluster means (class-major), after deskew and blur
    bases: np.ndarray  # (k * c, m, d) float32: orthonormal rows, each cluster's top m principal directions
    threshold: float  # scores above this are refused
    blur: float = BLUR
    quantile: float = QUANTILE  # what the threshold was chosen as (for people; not used to score)
    clusters: int = 1  # c: subspaces per class (model files from before clusters have one)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays stored in a model file (2-d, as model files hold): novelty_means (k * c, d), novelty_bases
        (k * c * m, d)."""
        n, m, d = self.bases.shape
        return {"novelty_means": self.means.astype(np.float32),
                "novelty_bases": self.bases.reshape(n * m, d).astype(np.float32)}

    def to_json(self) -> dict:
        return {"threshold": self.threshold, "blur": self.blur, "quantile": self.quantile,
                "components": int(self.bases.shape[1]), "clusters": self.clusters}

    @classmethod
    def from_stored(cls, means: np.ndarray, bases: np.ndarray, meta: dict) -> Novelty:
        n, d = means.shape
        m = int(meta["components"])
        return cls(means.astype(np.float32), bases.reshape(n, m, d).astype(np.float32), float(meta["threshold"]),
                   float(meta["blur"]), float(meta.get("quantile", QUANTILE)), int(meta.get("clusters", 1)))


def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) Gaussian blur of one axis, zero outside, truncated at 4 sigma: what scipy.ndimage.gaussian_filter1d
    does with mode="constant", as a matrix, so blurring a stack of small images is two matrix products."""
    radius = int(4.0 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    offsets = np.arange(n)[None, :] - np.arange(n)[:, None]  # column - row
    inside = np.abs(offsets) <= radius
    return np.where(inside, taps[np.clip(offsets + radius, 0, 2 * radius)], 0).astype(np.float32)


def shape_features(images: np.ndarray, blur: float = BLUR) -> np.ndarray:
    """Images (n, h, w) in [0, 1] -> (n, h * w) float32: deskewed, then blurred by `blur` (in 28x28 pixels)."""
    from .preprocess import deskew

    images = deskew(np.asarray(images, np.float32))
    n, h, w = images.shape
    sigma = blur * min(h, w) / 28
    if sigma > 0:
        images = _blur_matrix(h, sigma) @ images @ _blur_matrix(w, sigma).T
    return images.reshape(n, h * w)


def _top_eigenvectors(scatter: np.ndarray, m: int, rng: np.random.Generator, iterations: int = 6) -> np.ndarray:
    """The m leading eigenvectors (m, d) of a symmetric positive semi-definite (d, d) matrix, by subspace
    iteration with 10 extra vectors and a Rayleigh-Ritz step, in the scatter's own precision (float32 here):
    about 1 ms per class where a full eigh of 784x784 takes 0.2 s. On MNIST's classes 6 iterations reach eigh's
    subspace to a smallest principal cosine of 0.9999995 (12: 1.0000000), which moves no score measurably."""
    d = len(scatter)
    q = np.linalg.qr(scatter @ rng.standard_normal((d, min(d, m + 10))).astype(scatter.dtype))[0]
    for _ in range(iterations):
        q = np.linalg.qr(scatter @ q)[0]
    values, vectors = np.linalg.eigh((q.T @ scatter @ q).astype(np.float64))
    return (q @ vectors[:, ::-1][:, :m].astype(q.dtype)).T


def residuals(means: np.ndarray, bases: np.ndarray, features: np.ndarray, clusters: int = 1) -> np.ndarray:
    """Squared distance of each row of features (n, d) from each class's nearest affine subspace (`clusters` of
    them per class, stored class-major): (n, k)."""
    out = np.empty((len(features), len(means)), np.float64)
    for c, (mean, basis) in enumerate(zip(means, bases)):
        centred = features - mean  # (n, d)
        coords = centred @ basis.T  # (n, m)
        # |x - mu|^2 - |P (x - mu)|^2: Pythagoras, since the rows of the basis are orthonormal
        out[:, c] = np.einsum("nd,nd->n", centred, centred) - np.einsum("nm,nm->n", coords, coords)
    return np.maximum(out, 0).reshape(len(features), -1, clusters).min(axis=2)


def score(novelty: Novelty, images: np.ndarray) -> np.ndarray:
    """How unlike every digit class each image (n, h, w) in [0, 1] is: (n,), higher is stranger."""
    return residuals(novelty.means, novelty.bases, shape_features(images, novelty.blur),
                     novelty.clusters).min(axis=1)


def _quantile(values: np.ndarray, q: float) -> float:
    """np.quantile(values, q) (its default, linear interpolation, to the last bit) without the import of numpy.ma
    (50 ms) that np.quantile's np.unique makes on first use."""
    ordered = np.sort(np.asarray(values, np.float64))
    position = q * (len(ordered) - 1)
    below = int(np.floor(position))
    above = min(below + 1, len(ordered) - 1)
    low, high, t = ordered[below], ordered[above], position - below
    return float(high - (high - low) * (1 - t) if t >= 0.5 else low + (high - low) * t)


def _clusters(X: np.ndarray, c: int, rng: np.random.Generator, iterations: int = 10) -> np.ndarray:
    """Cluster index (n,) of each row of X (n, d) among c, by k-means (Lloyd's iterations from c distinct rows);
    a cluster that empties keeps its centre."""
    centres = X[np.sort(rng.choice(len(X), c, replace=False))]
    labels = np.zeros(len(X), np.intp)
    for _ in range(iterations):
        labels = ((centres * centres).sum(axis=1) - 2 * X @ centres.T).argmin(axis=1)  # |x|^2 is the same for all
        for j in range(c):
            if (labels == j).any():
                centres[j] = X[labels == j].mean(axis=0)
    return labels


def fit(images: np.ndarray, labels: np.ndarray, k: int, validation: np.ndarray, *, scale: float = 1.0,
        components: int = COMPONENTS, clusters: int = CLUSTERS, quantile: float = QUANTILE,
        rng: np.random.Generator | None = None) -> Novelty:
    """Fit `clusters` subspaces per class on training images (n, h, w) with class indices (n,), and set the
    threshold at `quantile` of the scores of the `validation` images (at most 5,000: a tail quantile of fewer moves
    with the sample). Pixels times `scale` are in [0, 1]; only the sampled rows are converted, so the training set
    is never copied. A class with too few images for its clusters gets fewer (its spare slots repeat its first)."""
    from threadpoolctl import threadpool_limits

    rng = rng if rng is not None else np.random.default_rng(0)
    labels = np.asarray(labels)
    n, h, w = images.shape
    d = h * w
    means = np.zeros((k * clusters, d), np.float32)
    bases = np.zeros((k * clusters, components, d), np.float32)
    m = min(components, d)
    with threadpool_limits(1, user_api="blas"):  # small products: threads only wait on a busy machine
        for c in range(k):
            rows = np.flatnonzero(labels == c)
            if not len(rows):
                continue
            rows = np.sort(rng.permutation(rows)[:SAMPLE])
            X = shape_features(images[rows] * np.float32(scale))
            used = max(1, min(clusters, len(X) // (4 * m)))  # at least 4 images per direction in each cluster
            which = _clusters(X, used, rng) if used > 1 else np.zeros(len(X), np.intp)
            found = np.unique(which)  # the clusters that kept images
            for j in range(clusters):
                slot = c * clusters + j
                if j >= len(found):
                    means[slot], bases[slot] = means[c * clusters], bases[c * clusters]
                    continue
                Y = X[which == found[j]]
                means[slot] = Y.mean(axis=0)
                Y -= means[slot]
                # the top eigenvectors of the (d, d) scatter matrix: cheaper than an SVD of the rows
                bases[slot, :m] = _top_eigenvectors(Y.T @ Y, m, rng)
        rows = np.sort(rng.permutation(len(validation))[:5000])
        scores = residuals(means, bases, shape_features(validation[rows] * np.float32(scale)), clusters).min(axis=1)
    return Novelty(means, bases, _quantile(scores, quantile), BLUR, quantile, clusters)
