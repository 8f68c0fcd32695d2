"""Softmax regression: the math, and a trained model that predicts from raw pixels.

logits = x W^T + b for x of d features, W of shape (k, d) and b of shape (k,); probabilities are the softmax of
the logits and the loss is the mean cross-entropy, computed through log-sum-exp so that no exponential overflows.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import UsageError


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-probabilities of logits z (..., k), stable for any finite z."""
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise probabilities of logits z (..., k)."""
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def binary_margin(z: np.ndarray) -> np.ndarray:
    """scikit-learn's convention for decision_function: logits (n, k), except (n,) margins when k == 2."""
    return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z


def image_grid(d: int, image_shape=None) -> tuple[int, int]:
    """The (h, w) grid whose neighbours the smoothness penalty compares: the image shape when known, else a square
    when d is one (784 -> 28x28), else the features in a row (each next to the following one)."""
    if image_shape:
        h, w = image_shape
        if h * w != d:
            raise UsageError(f"image shape {tuple(image_shape)} does not hold {d} features")
        return int(h), int(w)
    r = math.isqrt(d)
    return (r, r) if r * r == d else (1, d)


def smoothness(W: np.ndarray, grid: tuple[int, int]) -> tuple[float, np.ndarray]:
    """(1/2) sum over classes of ||grad W_c||^2, the squared differences of horizontally and vertically adjacent
    weights of each class's image, and its gradient (k, d).

    A template whose neighbouring pixels agree is smooth, so smaller values mean weight maps a person can read.
    """
    V = W.reshape(len(W), *grid)
    dx = V[:, :, 1:] - V[:, :, :-1]  # (k, h, w-1)
    dy = V[:, 1:, :] - V[:, :-1, :]  # (k, h-1, w)
    value = 0.5 * (float(np.dot(dx.ravel(), dx.ravel())) + float(np.dot(dy.ravel(), dy.ravel())))
    return value, add_smoothness_gradient(W, grid, 1.0, np.zeros_like(W))


@functools.lru_cache(maxsize=16)
def _neighbour_weights(k: int, h: int, w: int, scale: float, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """`scale` where the flattened weights j and j+1 (then j and j+w) are neighbours in one class image, 0 where
    the pair straddles a row's end (or an image's), so the Laplacian runs on contiguous 1-D slices."""
    j = np.arange(k * h * w)
    horizontal = np.where(j[:-1] % w != w - 1, scale, 0).astype(dtype)
    vertical = np.where(j[:-w] % (h * w) < h * w - w, scale, 0).astype(dtype)
    return horizontal, vertical


def add_smoothness_gradient(W: np.ndarray, grid: tuple[int, int], scale: float, out: np.ndarray) -> np.ndarray:
    """out += scale * the smoothness penalty's gradient at W, in place; returns out.

    The gradient is a discrete Laplacian with free borders: for each weight, the sum of its differences from its
    (two to four) neighbours. SGD adds it at every step, so it runs on the flattened weights, where the shifted
    slices are contiguous (ten times faster than on (k, h, w) views).
    """
    if not out.flags.c_contiguous:
        out += add_smoothness_gradient(W, grid, scale, np.zeros(out.shape, out.dtype))
        return out
    h, w = grid
    flat, G = np.ascontiguousarray(W).reshape(-1), out.reshape(-1)
    for shift, weights in zip((1, w), _neighbour_weights(len(W), h, w, float(scale), out.dtype.str)):
        diff = flat[shift:] - flat[:-shift]
        diff *= weights
        G[:-shift] -= diff
        G[shift:] += diff
    return out


def loss_and_grad(W, b, X, y, l2=0.0, mu=None, *, smooth=0.0, image_shape=None):
    """Mean cross-entropy + (l2 / 2) ||W||^2 + (smooth / 2) sum_c ||grad W_c||^2, and its gradient, for a batch.

    W (k, d), b (k,), X (n, d), y (n,) integer class indices. With `mu` (d,) the model is parametrised on centred
    inputs, logits = (x - mu) W^T + b, which is the same function class and far better conditioned; X itself is
    not modified. The smoothness term compares neighbouring weights on `image_shape` (see image_grid); it is the
    same in both parametrisations. Returns (loss as a Python float, dW (k, d), db (k,)).
    """
    n = len(y)
    offset = b if mu is None else b - W @ mu
    z = np.ascontiguousarray((X @ W.T).T)  # (k, n), class-major: the reductions over classes below run fast
    z += offset[:, None]
    z -= z.max(axis=0)
    cols = np.arange(n)
    true = z[y, cols]  # the true class's shifted logit, taken before z becomes the probabilities
    p = np.exp(z, out=z)
    total = p.sum(axis=0)
    loss = float(np.log(total).sum(dtype=np.float64) - true.sum(dtype=np.float64)) / n
    p *= 1 / (n * total)  # probabilities / n
    p[y, cols] -= 1 / n
    db = p.sum(axis=1)
    # (k, d) as the transpose of X^T p^T: OpenBLAS's sgemm runs far faster with the long side (d) as the output's
    # rows than with k = 10 rows (60 against 76 us for a batch of 256 here)
    dW = np.ascontiguousarray((X.T @ p.T).T)
    if mu is not None:
        dW -= np.outer(db, mu)
    if l2:
        loss += 0.5 * l2 * float(np.dot(W.ravel(), W.ravel()))
        dW += l2 * W
    if smooth:
        value, gS = smoothness(W, image_grid(W.shape[1], image_shape))
        loss += smooth * value
        dW += smooth * gS
    return loss, dW, db


_PREDICT_ROWS = 512  # rows per chunk when predicting: 1.6 MB of float32 features, which stay in L2 cache
_PARALLEL_ROWS = 8192  # from this many rows on, prediction may use every core (see _score_all)
_FEW_ROWS = 64  # up to this many rows, prediction is one plain product (no chunks, no BLAS thread limit)
_LANES = 16  # the weights get zero columns up to a multiple of this many classes: BLAS's kernels run full width


def as_rows(X) -> tuple[np.ndarray, bool]:
    """Raw inputs (n, h, w) or (n, d) as (n, d) rows, checked to be numbers, and whether they are integers or
    booleans (always finite: no NaN check needed). One error line for anything else."""
    X = np.asarray(X)
    if X.ndim == 3:
        X = X.reshape(len(X), X.shape[1] * X.shape[2])  # (not -1, which fails on no images)
    if X.ndim != 2:
        raise UsageError(f"expected inputs of shape (n, features) or (n, height, width), got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise UsageError(f"expected numeric inputs, got dtype {X.dtype}")
    return X, bool(np.issubdtype(X.dtype, np.integer) or X.dtype == bool)


def _pixels_converter(exact: bool):
    """convert(chunk, buffer) for _score_rows: raw values into the float32 buffer, checked finite unless they are
    integers; the scale is in the weights."""

    def convert(chunk: np.ndarray, buffer: np.ndarray) -> np.ndarray:
        np.copyto(buffer, chunk, casting="unsafe")
        if not exact and not np.isfinite(buffer).all():
            raise UsageError("inputs contain NaN or infinity")
        return buffer

    return convert


def _score_rows(X: np.ndarray, convert, W: np.ndarray, b: np.ndarray, each, rows: range) -> None:
    """each(rows, convert(X[rows]) W + b) for successive chunks of _PREDICT_ROWS of the given rows (see
    SoftmaxModel._scores). A chunk is converted into one float32 buffer, reused, still in cache for the product."""
    size = min(len(rows), _PREDICT_ROWS)
    buffer = np.empty((size, X.shape[1]), np.float32)
    scores = np.empty((size, len(b)), np.float32)
    for start in range(rows.start, rows.stop, _PREDICT_ROWS):
        chunk = X[start : min(start + _PREDICT_ROWS, rows.stop)]
        m = len(chunk)
        np.matmul(convert(chunk, buffer[:m]), W, out=scores[:m])
        scores[:m] += b
        each(slice(start, start + m), scores[:m])


def _score_all(X: np.ndarray, convert, W: np.ndarray, b: np.ndarray, each) -> None:
    """_score_rows over all of X: one BLAS thread per chunk (a chunk's product is small, see threads.py); a large
    input on an idle machine is split between one Python thread per core (numpy lets go of the GIL meanwhile)."""
    from .threads import blas_threads, pass_threads

    n = len(X)
    parts = 1 if n < _PARALLEL_ROWS or pass_threads() == 1 else os.cpu_count() or 1
    with blas_threads(1):
        if parts == 1:
            return _score_rows(X, convert, W, b, each, range(n))
        from concurrent.futures import ThreadPoolExecutor

        # Parts start on chunk boundaries, so every chunk, and BLAS's rounding of it, is the one a single part has
        # (the answers do not depend on the load).
        chunks = -(-n // _PREDICT_ROWS)
        bounds = [min(n, chunks * i // parts * _PREDICT_ROWS) for i in range(parts + 1)]
        with ThreadPoolExecutor(parts - 1) as pool:
            others = [pool.submit(_score_rows, X, convert, W, b, each, range(lo, hi))
                      for lo, hi in zip(bounds[1:-1], bounds[2:])]
            _score_rows(X, convert, W, b, each, range(bounds[1]))
            for job in others:
                job.result()


def linear_scores(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """X W^T + b (n, k) float32 for finite features X (n, d), by _score_all: a product on all cores leaves BLAS's
    threads spinning a tenth of a second after it, a core taken from whatever runs next (a fit, another program)
    for a millisecond gained."""
    out = np.empty((len(X), len(b)), np.float32)

    def store(rows, scores):
        out[rows] = scores

    _score_all(X, _pixels_converter(True), np.asarray(W, np.float32).T, np.asarray(b, np.float32), store)
    return out


SCALE_RANGE = (1e-10, 1e10)  # preprocessing scale: pixels times this must stay ordinary float32 numbers


@dataclass(frozen=True)
class Preprocessing:
    """What turns raw inputs into the model's features; stored with the model and applied by every prediction."""

    scale: float = 1.0  # features = raw values * scale (1/255 for 8-bit images)
    image_shape: tuple[int, ...] | None = None  # (h, w) for image data
    deskew: bool = False  # straighten each image by its moments (preprocess.deskew) after scaling

    def apply(self, X) -> np.ndarray:
        """Raw inputs (n, h, w) or (n, d) of any numeric type -> float32 features (n, d).

        The one preprocessing function: training, prediction, evaluation and explanations all go through it.
        """
        X, exact = as_rows(X)
        X = X.astype(np.float32)
        if self.scale != 1:
            X *= np.float32(self.scale)
        if not exact and not np.isfinite(X).all():
            raise UsageError("inputs contain NaN or infinity")
        if self.deskew:
            from .preprocess import deskew

            assert self.image_shape is not None  # __post_init__: deskewing needs an image shape
            X = deskew(X.reshape(len(X), *self.image_shape)).reshape(len(X), -1)
        return X

    def __post_init__(self):
        if not SCALE_RANGE[0] <= self.scale <= SCALE_RANGE[1]:  # also refuses NaN
            raise UsageError(f"scale must be a number from {SCALE_RANGE[0]:g} to {SCALE_RANGE[1]:g}, got {self.scale}")
        if self.deskew and not self.image_shape:
            raise UsageError("deskewing needs image data (an image shape)")

    def to_json(self) -> dict:
        shape = list(self.image_shape) if self.image_shape else None
        return {"scale": self.scale, "image_shape": shape, "deskew": self.deskew}

    @classmethod
    def from_json(cls, data: dict) -> Preprocessing:
        shape = data.get("image_shape")
        deskew = data.get("deskew", False)
        if not isinstance(deskew, bool):
            raise ValueError(f"deskew must be true or false, got {deskew!r}")
        return cls(float(data["scale"]), tuple(int(s) for s in shape) if shape else None, deskew)


@dataclass
class SoftmaxModel:
    """A trained softmax regression that predicts from raw inputs, applying its own preprocessing.

    Offers the prediction methods of scikit-learn classifiers; `load_model` returns one of these.
    """

    coef: np.ndarray  # (k, d) float32
    intercept: np.ndarray  # (k,) float32
    classes: np.ndarray  # (k,) the labels predict() returns
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    class_names: tuple[str, ...] = ()  # human names of the classes, e.g. "Ankle boot"
    metadata: dict = field(default_factory=dict)  # dataset, hyperparameters, metrics, version
    novelty: object = None  # refuse.Novelty: the training digits' class subspaces, to refuse what is no digit

    @property
    def temperature(self) -> float:
        """The calibration temperature fitted on the validation split (calibrate.py); 1 for uncalibrated models.
        predict_proba divides the logits by it; predictions do not change."""
        return float((self.metadata.get("calibration") or {}).get("temperature", 1.0))

    @property
    def coef_(self) -> np.ndarray:
        return self.coef

    @property
    def intercept_(self) -> np.ndarray:
        return self.intercept

    @property
    def classes_(self) -> np.ndarray:
        return self.classes

    @property
    def n_features_in_(self) -> int:
        return self.coef.shape[1]

    def features(self, X) -> np.ndarray:
        """Raw inputs -> the (n, d) float32 features the weights apply to."""
        X = self.preprocessing.apply(X)
        if X.shape[1] != self.coef.shape[1]:
            raise UsageError(f"model expects {self.coef.shape[1]} features per input, got {X.shape[1]}")
        return X

    def logits(self, X) -> np.ndarray:
        """Class scores, shape (n, k), whatever the number of classes."""
        X, k = np.asarray(X), len(self.coef)
        out = np.empty((len(X) if X.ndim >= 2 else len(as_rows(X)[0]), k), np.float32)  # as_rows: the error

        def keep(rows, scores):
            out[rows] = scores[:, :k]

        self._scores(X, keep)
        return out

    def _scores(self, X, each) -> None:
        """each(rows, scores (m, k')) over chunks of the raw inputs' rows, so that no float copy of a whole large
        input is made. The scores are the logits followed by k' - k columns of -inf (see _LANES), so an argmax
        needs no slicing (up to _FEW_ROWS rows: the logits alone, from one plain product). Without deskewing (and
        for a scale of at most 1, where scaled pixels cannot overflow if raw ones do not) the scale is folded into
        the weights rather than multiplied into every pixel, which saves a pass over the input; otherwise each
        chunk goes through the preprocessing whole.
        """
        p = self.preprocessing
        X, exact = as_rows(X)
        k, d = self.coef.shape
        if X.shape[1] != d:
            raise UsageError(f"model expects {d} features per input, got {X.shape[1]}")
        if len(X) <= _FEW_ROWS:  # the plain product: cheaper than building folded weights for a few rows
            each(slice(0, len(X)), p.apply(X) @ self.coef.T + self.intercept)
            return
        direct = not p.deskew and p.scale <= 1
        width = -(-k // _LANES) * _LANES
        W = np.zeros((width, d), np.float32)  # used as its transpose: BLAS reads either order as fast
        np.multiply(self.coef, np.float32(p.scale if direct else 1), out=W[:k])
        b = np.full(width, -np.inf, np.float32)
        b[:k] = self.intercept
        _score_all(X, _pixels_converter(exact) if direct else lambda chunk, _: p.apply(chunk), W.T, b, each)

    def decision_function(self, X) -> np.ndarray:
        """Class scores (logits), shape (n, k); for two classes, as scikit-learn does, the margin (n,)."""
        return binary_margin(self.logits(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n, k): calibrated, softmax(logits / temperature)."""
        return softmax(self.logits(X) / np.float32(self.temperature))

    def predict_log_proba(self, X) -> np.ndarray:
        return log_softmax(self.logits(X) / np.float32(self.temperature))

    def predict(self, X) -> np.ndarray:
        """The most probable class label of each input, shape (n,)."""
        X = np.asarray(X)
        best = np.empty(len(X) if X.ndim >= 2 else len(as_rows(X)[0]), np.intp)  # as_rows: the error

        def choose(rows, scores):
            np.argmax(scores, axis=1, out=best[rows])

        self._scores(X, choose)
        return self.classes[best]

    def score(self, X, y) -> float:
        """Mean accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def evidence(self, X) -> np.ndarray:
        """Per-class, per-pixel evidence W[c] * x, shape (n, k, h, w) for images, else (n, k, d).

        Summed over pixels, plus the intercept, it equals the logits exactly (see explain.py for why).
        """
        from .explain import evidence_from_features

        return evidence_from_features(self.features(X), self.coef, self.preprocessing.image_shape)

    def to_onnx(self, **options):
        """The whole model as an onnx.ModelProto: raw pixels in, "label" and "probabilities" out (see export.py)."""
        from .export import to_onnx

        return to_onnx(self, **options)

    def _repr_html_(self) -> str:
        """Jupyter: dataset, accuracy and the weight maps at a glance (display.py; no matplotlib)."""
        from .display import model_html

        return model_html(self)

    def _repr_png_(self) -> bytes | None:
        from .display import model_png

        return model_png(self)
