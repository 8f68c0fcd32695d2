"""Streaming SGD: a recipe's momentum SGD whose state is carried from one block of data to the next.

`SoftmaxClassifier.partial_fit`, out-of-core training and each task of the distributed SGD feed blocks one at a
time: each block gets one pass, in a random order, in mini-batches of the recipe's size. What makes many small
calls train like one long run is what this state keeps between them: the weights, the momentum, the running
means of the iterates (Polyak-Ruppert averaging), and what the first block sets, as solvers.sgd sets it from the
data: the centring mean, the per-feature step sizes (the recipe's `precondition`) and the learning rate (capped for
the data's scale). The gradient is the one of model.loss_and_grad.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .errors import DivergenceError, UsageError
from .model import loss_and_grad
from .recipes import Recipe
from .threads import blas_threads

_SAMPLE_ROWS = 4096
MAX_SEGMENTS = 64  # averaging segments kept at most (older ones are merged): memory stays O(k d)
SEGMENTS_PER_WINDOW = 16  # a segment closes after steps / 16 updates: the averaged window is exact to 1/16


def loss_options(recipe: Recipe, image_shape=None) -> dict:
    """Keyword arguments of loss_and_grad beyond l2 that the recipe asks for (a smoothness prior, when the recipe
    has one and it is on), so every solver optimises the same objective."""
    smooth = getattr(recipe, "smooth", 0) or 0
    return {"smooth": smooth, "image_shape": image_shape} if smooth else {}


def check_streamable(recipe: Recipe) -> None:
    """Raise UsageError unless the recipe can run a block at a time."""
    if recipe.solver != "sgd":
        raise UsageError(
            f"the {recipe.name!r} recipe is full batch ({recipe.solver}), which cannot learn a block at a time; use "
            f"an SGD recipe ('default' or 'tutorial') for partial_fit and streaming, or fit on all the data"
        )
    if recipe.schedule != "constant":
        raise UsageError(f"a {recipe.schedule} learning-rate schedule needs the total number of steps, which a "
                         f"stream does not know; use a constant rate")


@dataclass
class _Segment:
    """The running mean of the iterates from step `first` on, over `count` steps."""

    first: int
    W: np.ndarray
    b: np.ndarray
    count: int = 0

    def add(self, W, b) -> None:
        self.count += 1
        self.W += (W - self.W) / np.float32(self.count)
        self.b += (b - self.b) / np.float32(self.count)

    def merge(self, later: _Segment) -> None:
        total = self.count + later.count
        self.W += (later.W - self.W) * np.float32(later.count / total)
        self.b += (later.b - self.b) * np.float32(later.count / total)
        self.count = total


@dataclass
class StreamState:
    """Everything momentum SGD with iterate averaging needs to continue where the last block stopped.

    The weights are kept on centred inputs, logits = (x - mu) W^T + b; `coef_intercept()` gives the plain model.
    Averaging over "the last fraction f of the steps" without knowing the total: the iterates are summed into
    segments, each closed after steps / 16 updates; the model is the mean of the segments that lie inside the last
    f of the steps so far, so the averaged window is f of the steps to within 1/16 of them.
    """

    W: np.ndarray  # (k, d) float32
    b: np.ndarray  # (k,) float32
    mu: np.ndarray | None  # (d,) centring mean, or None
    rate: float  # the learning rate used (the recipe's, or its cap for this data)
    rng: np.random.Generator
    scales: np.ndarray | None = None  # (d,) per-feature step sizes (solvers.step_scales), or None
    steps: int = 0
    segments: list = field(default_factory=list)

    def __post_init__(self):
        self.vW, self.vb = np.zeros_like(self.W), np.zeros_like(self.b)  # momentum, from rest

    @classmethod
    def start(cls, X, k: int, recipe: Recipe, rng: np.random.Generator, coef=None, intercept=None) -> StreamState:
        """A fresh state for k classes, centred and rate-capped from the first block X (n, d) float32; from zero
        weights, or from a plain model (coef, intercept) to continue training it."""
        from .solvers import check_magnitude, spread_sample, step_sizes

        check_streamable(recipe)
        check_magnitude(X)
        d = X.shape[1]
        mu = None
        if recipe.center:
            mu = spread_sample(X, _SAMPLE_ROWS).mean(axis=0, dtype=np.float64).astype(np.float32)
        scales, rate = step_sizes(X, mu, recipe)
        W = np.zeros((k, d), np.float32) if coef is None else np.array(coef, np.float32)
        b = np.zeros(k, np.float32) if intercept is None else np.array(intercept, np.float32)
        if mu is not None:
            b = b + W @ mu  # the same model on centred inputs
        return cls(W, b, mu, float(rate), rng, scales)

    def update(self, X, y, recipe: Recipe, image_shape=None) -> float:
        """One pass over the block X (n, d) float32, y (n,) class indices, in a random order, in near-equal
        mini-batches of at most recipe.batch_size rows. Returns the mean mini-batch loss of the pass."""
        n = len(y)
        if n == 0:
            return float("nan")
        batches = math.ceil(n / min(recipe.batch_size, n))
        options = loss_options(recipe, image_shape)
        k = self.W.shape[0]
        explode = 1e4 * math.log(k)
        lr = np.float32(self.rate)
        losses = 0.0
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), blas_threads(1):
            for rows in np.array_split(self.rng.permutation(n), batches):
                rows.sort()  # ascending rows read memory faster
                loss, gW, gb = loss_and_grad(self.W, self.b, X[rows], y[rows], recipe.l2, self.mu, **options)
                if not loss < explode:  # also catches NaN
                    raise DivergenceError(
                        f"training diverged at step {self.steps + 1}: the loss is {loss:.3g}, up from "
                        f"{math.log(k):.3g} at the start; lower the learning rate (now {self.rate:g})"
                    )
                if self.scales is not None:
                    gW *= self.scales
                self.vW *= recipe.momentum
                self.vW -= lr * gW
                self.vb *= recipe.momentum
                self.vb -= lr * gb
                self.W += self.vW
                self.b += self.vb
                self.steps += 1
                losses += loss
                if recipe.average:
                    self._average(recipe.average)
        return losses / batches

    def _average(self, fraction: float) -> None:
        t = self.steps
        segments = self.segments
        if not segments or segments[-1].count >= max(1, t // SEGMENTS_PER_WINDOW):
            segments.append(_Segment(t, np.zeros_like(self.W), np.zeros_like(self.b)))
        segments[-1].add(self.W, self.b)
        start = t - math.floor(fraction * t) + 1  # the first step of the window
        while len(segments) > 1 and segments[0].first < start:
            segments.pop(0)
        if len(segments) > MAX_SEGMENTS:
            segments[0].merge(segments.pop(1))

    def centred_model(self) -> tuple[np.ndarray, np.ndarray]:
        """The weights the model has now, on centred inputs: the mean of the averaged window, else the iterate."""
        if not self.segments:
            return self.W, self.b
        total = sum(s.count for s in self.segments)
        W = sum(s.W * np.float32(s.count / total) for s in self.segments)
        b = sum(s.b * np.float32(s.count / total) for s in self.segments)
        return W, b

    def coef_intercept(self) -> tuple[np.ndarray, np.ndarray]:
        """The plain model, logits = x coef^T + intercept: (k, d), (k,) float32 copies."""
        W, b = self.centred_model()
        return W.copy(), (b if self.mu is None else b - W @ self.mu).astype(np.float32)
