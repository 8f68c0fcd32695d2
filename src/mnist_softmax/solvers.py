"""Solvers: plain functions, looked up by name, that fit W (k, d) and b (k,) for a recipe.

`solve` is the one entry point: it turns the data into float32 features (no copy when they already are), runs the
recipe's solver, which reports snapshots of the weights at the recipe's record points, and turns the snapshots
into curves afterwards, in one matrix product per chunk of data rather than one pass per snapshot. The training
curve is measured on a fixed sample of CURVE_ROWS training rows spread over the set (all of them when fewer), so
that many record points cost little; the monitored sets (validation, test) are measured whole.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np

from .errors import DivergenceError, UsageError
from .metrics import curves
from .model import add_smoothness_gradient, image_grid, loss_and_grad
from .recipes import Recipe
from .threads import blas_threads, pass_threads, spare_core

_CHUNK_ROWS = 8192
_SAMPLE_ROWS = 4096
LARGEST_FEATURE = 1e15  # squares of larger features, summed over hundreds of them, overflow float32
CURVE_ROWS = 5000  # training rows the history's train curve is measured on (as many as the validation set)
_CHUNK_BATCHES = 4  # batches a prefetching thread gathers at a time (MNIST's: 3.2 MB of float32)...
_CHUNK_BYTES = 8 << 20  # ... at most this much
_AHEAD = 3  # chunks it gathers ahead of the solver
CURVE_GROUP = 8  # snapshots whose curves are measured together: per snapshot as fast as all of them at once


@dataclass
class Solution:
    coef: np.ndarray  # (k, d) float32
    intercept: np.ndarray  # (k,) float32
    history: dict[str, np.ndarray]  # step, epoch, then <set>_loss and <set>_accuracy for each recorded set
    n_steps: int
    n_epochs: float
    learning_rate: float | None  # the rate SGD used (the recipe's, or its cap for this data); None full batch
    snapshots: tuple | None = None  # (steps (s,), coefs (s, k, d), intercepts (s, k)) at the record points
    final_train: tuple[float, float] | None = None  # (loss, accuracy) of the final model on all training rows


@dataclass(frozen=True)
class ScaledPixels:
    """Features pixels * scale (n, d) kept as the raw 8-bit pixels and converted a batch at a time.

    SGD then gathers one byte per feature instead of four, and no float32 copy of the whole training set (4 bytes
    per pixel, a third of a second of page faults and conversion for MNIST) is made. Rows, or slices of rows,
    read as float32 features.
    """

    pixels: np.ndarray  # (n, d) uint8, C-contiguous
    scale: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, rows) -> np.ndarray:
        return self.pixels[rows].astype(np.float32) * np.float32(self.scale)


def gather(X, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The float32 features of `rows` (valid, ascending indices) of X (an array or ScaledPixels), in `out`."""
    if isinstance(X, ScaledPixels):
        return np.multiply(X.pixels.take(rows, axis=0, mode="clip"), np.float32(X.scale), out=out)
    return np.take(X, rows, axis=0, out=out, mode="clip")  # "clip": rows are valid, so no bounds-checked copy


def as_features(X, transform=None) -> np.ndarray | ScaledPixels:
    """transform(X) as C-contiguous float32 (n, d): X itself when it already is and there is no transform (or is
    ScaledPixels, which stand for their features), otherwise built in chunks so that no full-size temporary is
    made."""
    if isinstance(X, ScaledPixels):
        return X
    if transform is None and isinstance(X, np.ndarray) and X.dtype == np.float32 and X.flags.c_contiguous:
        return X
    first = transform(X[:1]) if transform else np.asarray(X[:1], np.float32)
    out = np.empty((len(X), first.shape[1]), dtype=np.float32)
    for start in range(0, len(X), _CHUNK_ROWS):
        rows = X[start : start + _CHUNK_ROWS]
        out[start : start + len(rows)] = transform(rows) if transform else rows
    return out


def spread_sample(X, rows: int) -> np.ndarray:
    """About `rows` rows spread evenly over X (a view): representative even when X is sorted by class."""
    return X[:: max(1, len(X) // rows)][:rows]


class _Recorder:
    """Collects weight snapshots (as the plain model, logits = x W^T + b) at the recipe's record points, and has
    their curves measured a `group` of snapshots at a time by `measure`.

    With `background`, a thread measures each group as soon as it is complete, on a core the solver (one BLAS
    thread) leaves free; numpy's products release the GIL. What is left is measured by `curves()` at the end.
    The groups are fixed by snapshot index, so the curves are the same whichever thread measured them.
    """

    def __init__(self, mu, measure, background: bool = False, group: int = CURVE_GROUP):
        self.mu, self.measure, self.group = mu, measure, group
        self.steps: list[int] = []
        self.epochs: list[float] = []
        self.coefs: list[np.ndarray] = []
        self.intercepts: list[np.ndarray] = []
        self.results: dict[int, dict] = {}  # group start -> {set name: (loss, accuracy)}
        self.claimed: set[int] = set()
        self.lock = threading.Lock()
        self.queue: queue.SimpleQueue | None = None
        if background:
            self.queue = queue.SimpleQueue()
            self.worker = threading.Thread(target=self._work, args=(self.queue,), name="mnist-softmax-curves",
                                           daemon=True)
            self.worker.start()

    def __call__(self, step: int, epoch: float, W: np.ndarray, b: np.ndarray) -> None:
        self.steps.append(step)
        self.epochs.append(epoch)
        self.coefs.append(W.copy())
        self.intercepts.append(b.copy() if self.mu is None else b - W @ self.mu)
        if self.queue is not None and len(self.coefs) % self.group == 0:
            self.queue.put(len(self.coefs) - self.group)

    def _measure(self, start: int) -> None:
        with self.lock:
            if start in self.claimed:
                return
            self.claimed.add(start)
        end = start + self.group
        self.results[start] = self.measure(np.stack(self.coefs[start:end]), np.stack(self.intercepts[start:end]))

    def _work(self, jobs: queue.SimpleQueue) -> None:
        while (start := jobs.get()) is not None:
            with contextlib.suppress(Exception):  # measured again by curves(), where the error reaches the caller
                self._measure(start)

    def close(self) -> None:
        """Let the background thread finish the group it is measuring, skip the others, and end."""
        if self.queue is not None:
            with self.lock:
                self.claimed.update(range(0, len(self.coefs), self.group))
            self.queue.put(None)
            self.worker.join()
            self.queue = None

    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every snapshot's curves, {set name: (loss (s,), accuracy (s,))}, measuring the groups not yet measured."""
        starts = range(0, len(self.coefs), self.group)
        for start in starts:  # the background thread meanwhile finishes the one it has
            self._measure(start)
        self.close()
        for start in starts:
            if start not in self.results:  # the background thread failed on it
                self.claimed.discard(start)
                self._measure(start)
        parts = [self.results[start] for start in starts]

        def joined(name: str, i: int) -> np.ndarray:
            return np.concatenate([part[name][i] for part in parts])

        return {name: (joined(name, 0), joined(name, 1)) for name in parts[0]}


def top_eigenvalue(X, mu=None, rows: int = 2048, iterations: int = 20, scale=None) -> float:
    """Largest eigenvalue of E[x x^T] (of the covariance, given the mean `mu`), by power iteration on a sample.

    It bounds the curvature of the loss, so it tells how large a learning rate the data can take. With `scale`
    (d,), of the features multiplied by it: the curvature that steps preconditioned by scale**2 see.
    """
    sample = np.asarray(spread_sample(X, rows), dtype=np.float32)
    if mu is not None:
        sample = sample - mu
    if scale is not None:
        sample = sample * scale
    # Iterate on the sample over a power of two near its largest value (an exact scaling), so that features of
    # any size neither overflow float32 (x x^T of 1e10 would) nor vanish; the eigenvalue is scaled back in float64.
    largest = float(np.abs(sample).max()) if sample.size else 0.0
    if largest == 0:
        return 0.0
    power = 2.0 ** math.floor(math.log2(largest))
    sample *= np.float32(1 / power)
    v = np.random.default_rng(0).standard_normal(int(sample.shape[1])).astype(np.float32)
    value = 0.0
    for _ in range(iterations):
        w = sample.T @ (sample @ v) / len(sample)
        value = float(np.linalg.norm(w))
        if value == 0:
            return 0.0
        v = w / value
    return value * power * power


def record_every(recipe: Recipe, total: int, batches: int) -> int:
    """Steps between record points: 1 ("step"), an epoch ("epoch"), or total / N for N evenly spaced points."""
    if recipe.record == "step":
        return 1
    if recipe.record == "epoch":
        return batches
    assert not isinstance(recipe.record, str)  # Recipe.check: "step", "epoch" or an integer
    return max(1, round(total / recipe.record))


def sgd_plan(recipe: Recipe, n: int) -> tuple[int, int, int, int]:
    """SGD's batch size, batches per epoch, total steps and steps between record points, for n rows."""
    B = min(recipe.batch_size, n)
    batches = math.ceil(n / B)
    if recipe.steps:
        total = recipe.steps
    else:
        assert recipe.epochs is not None  # Recipe.check: a recipe has steps or epochs
        total = max(1, round(recipe.epochs * batches), recipe.min_steps)
    return B, batches, total, record_every(recipe, total, batches)


def step_scales(X, mu, precondition: float):
    """Per-feature step sizes (d,) float32 for a diagonal preconditioner, or None when `precondition` is 0.

    A feature's step is divided by its variance plus `precondition` times the mean variance, relative to the
    highest-variance feature's. Features that vary little (MNIST's border pixels) are then learned as fast as the
    rest, instead of lagging far behind for the few epochs SGD runs; the objective is unchanged.
    """
    if not precondition:
        return None
    sample = np.asarray(spread_sample(X, _SAMPLE_ROWS), dtype=np.float32)
    variance = (sample - (sample.mean(axis=0) if mu is None else mu)).var(axis=0)
    inverse = 1 / (variance + precondition * max(float(variance.mean()), 1e-12))
    return (inverse / inverse.min()).astype(np.float32)


Chunks = Generator[tuple[np.ndarray, np.ndarray], None, None]  # (rows, float32 features) of a few batches


def check_magnitude(X) -> None:
    """Raise UsageError if features (n, d) are so large that float32 training overflows (judged on a sample)."""
    if isinstance(X, ScaledPixels):  # 8-bit pixels times a checked scale are never that large
        return
    sample = spread_sample(X, _SAMPLE_ROWS)
    largest = float(max(np.max(sample, initial=0), -np.min(sample, initial=0)))
    if largest > LARGEST_FEATURE:
        raise UsageError(f"features as large as {largest:.3g} are too large to train on in float32; scale them to "
                         f"about 1 (for example divide them by {largest:.3g})")


def step_sizes(X, mu, recipe: Recipe) -> tuple[np.ndarray | None, float]:
    """SGD's per-feature step scales (see step_scales) and its learning rate: the recipe's, capped by
    `recipe.lr_cap` over the data's curvature (see top_eigenvalue), so that data of any scale trains."""
    D = step_scales(X, mu, recipe.precondition)
    rate = recipe.learning_rate
    if recipe.lr_cap:
        rate = min(rate, recipe.lr_cap / max(top_eigenvalue(X, mu, scale=None if D is None else np.sqrt(D)), 1e-12))
    return D, rate


def _batch_rows(rng: np.random.Generator, n: int, B: int, total: int, per_chunk: int) -> Iterator[np.ndarray]:
    """The rows of SGD's `total` batches of B, `per_chunk` batches at a time (fewer at an epoch's end).

    Each epoch visits the n rows in a new random order (random reshuffling, as the tutorial's next_batch does);
    each batch's rows are sorted, since ascending rows read memory faster.
    """
    t = 0
    while True:
        order = rng.permutation(n)
        whole = n // B * B
        order[:whole].reshape(-1, B).sort(axis=1)
        order[whole:].sort()
        for start in range(0, n, B * per_chunk):
            batches = min(per_chunk, total - t, math.ceil((n - start) / B))
            yield order[start : start + B * batches]
            t += batches
            if t == total:
                return


def _batches(chunks: Iterator[tuple[np.ndarray, np.ndarray]], B: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Cut (rows, features) chunks into batches of B."""
    for rows, features in chunks:
        for start in range(0, len(rows), B):
            yield rows[start : start + B], features[start : start + B]


def _gathered(X, chunks: Iterator[np.ndarray], size: int) -> Chunks:
    """(rows, float32 features) of each chunk of at most `size` rows, gathered when asked into one reused buffer,
    where they are in cache for the step's products."""
    buffer = np.empty((size, X.shape[1]), np.float32)
    for rows in chunks:
        yield rows, gather(X, rows, buffer[: len(rows)])


def _prefetched(X, chunks: Iterator[np.ndarray], size: int) -> Chunks:
    """The chunks of _gathered, gathered by a thread a few chunks ahead, on the core the solver leaves free.

    A gather reads rows scattered over X, so it waits on memory more than on arithmetic (a third of an SGD step's
    time on MNIST); done beside the step's products it costs the solver little. A chunk holds several batches
    so that the thread takes Python's lock (which numpy's small operations hand to it) rarely. Each chunk has its
    own buffer until the consumer asks for the next one.
    """
    buffers = np.empty((_AHEAD, size, X.shape[1]), np.float32)
    free: queue.SimpleQueue = queue.SimpleQueue()
    full: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def work() -> None:
        try:
            for rows in chunks:
                slot = free.get()
                if stop.is_set():
                    return
                full.put((slot, rows, gather(X, rows, buffers[slot][: len(rows)])))
            full.put(None)
        except BaseException as error:  # handed to the consumer, raised there
            full.put(error)

    for slot in range(_AHEAD):
        free.put(slot)
    worker = threading.Thread(target=work, name="mnist-softmax-batches", daemon=True)
    worker.start()
    try:
        while (item := full.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            slot, rows, features = item
            yield rows, features
            free.put(slot)
    finally:
        stop.set()
        free.put(0)
        worker.join()


def sgd(X, y, k: int, recipe: Recipe, rng: np.random.Generator, mu, record, grid) -> tuple:
    """Mini-batch SGD (see _sgd), its small products on one BLAS thread (see threads.py)."""
    with blas_threads(1):
        return _sgd(X, y, k, recipe, rng, mu, record, grid)


def _sgd(X, y, k: int, recipe: Recipe, rng: np.random.Generator, mu, record, grid) -> tuple:
    """Mini-batch SGD with optional heavy-ball momentum, cosine decay and iterate averaging, from zero weights.

    Each epoch visits the rows of X (n, d) float32 (or ScaledPixels) in a new random order, a batch at a time
    (see _batch_rows). Batches are gathered into small reused buffers (see _gathered and _prefetched), which cost
    less than a shuffled copy of X: no fresh memory the size of the data.
    With `recipe.average`, the model is the running mean of the iterates of the last steps (Polyak-Ruppert), which
    cancels much of the noise a constant learning rate leaves in the last iterate; snapshots record that mean.
    """
    n, d = X.shape
    B, batches, total, every = sgd_plan(recipe, n)
    D, rate = step_sizes(X, mu, recipe)
    W = np.zeros((k, d), np.float32)
    b = np.zeros(k, np.float32)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    average_after = total - round(recipe.average * total)
    mean_W, mean_b, averaged = W.copy(), b.copy(), 0
    model = (W, b)  # the weights the model has now: the iterate, then its running mean once averaging starts
    record(0, 0.0, *model)
    # Stable log-sum-exp keeps even absurd weights' loss finite, so "diverged" also means "exploded": a mean
    # cross-entropy 10,000 times that of the zero start, which no converging run comes near.
    explode = 1e4 * math.log(k)
    momentum = np.float32(recipe.momentum)
    # the batches are gathered ahead by a thread when a core is free (see _prefetched) and they are not so wide
    # that holding a few more of them would cost much memory
    per_chunk = min(_CHUNK_BATCHES, _CHUNK_BYTES // (4 * B * d))
    if per_chunk and spare_core():
        chunks = _prefetched(X, _batch_rows(rng, n, B, total, per_chunk), B * per_chunk)
    else:
        chunks = _gathered(X, _batch_rows(rng, n, B, total, 1), B)
    with contextlib.closing(chunks):  # ends the gathering thread, also when SGD diverges
        for t, (rows, batch) in enumerate(_batches(chunks, B), 1):
            lr = rate
            if recipe.schedule == "cosine":
                lr *= 0.5 * (1 + math.cos(math.pi * (t - 1) / total))
            loss, gW, gb = loss_and_grad(W, b, batch, y[rows], recipe.l2, mu)  # (the penalty's value is not needed)
            if recipe.smooth:
                add_smoothness_gradient(W, grid, recipe.smooth, gW)
            if D is not None:
                gW *= D
            if not loss < explode:  # also catches NaN
                raise DivergenceError(
                    f"training diverged at step {t}: the loss is {loss:.3g}, up from {math.log(k):.3g} at the "
                    f"start; lower the learning rate (now {rate:g})"
                )
            gW *= np.float32(-lr)
            vW *= momentum
            vW += gW
            vb *= momentum
            vb -= np.float32(lr) * gb
            W += vW
            b += vb
            if t > average_after:
                averaged += 1
                weight = np.float32(1 / averaged)
                mean_W += (W - mean_W) * weight
                mean_b += (b - mean_b) * weight
                model = (mean_W, mean_b)
            if t % every == 0 or t == total:
                record(t, t / batches, *model)
    return *model, total, rate


def lbfgs(X, y, k: int, recipe: Recipe, rng: np.random.Generator, mu, record, grid) -> tuple:
    """Full-batch L-BFGS (scipy) on the exact regularised loss and gradient, to `recipe.tol`."""
    from scipy.optimize import minimize

    d = X.shape[1]
    options = {"smooth": recipe.smooth, "image_shape": grid} if recipe.smooth else {}

    def unpack(theta):
        return theta[: k * d].reshape(k, d).astype(np.float32), theta[k * d :].astype(np.float32)

    def objective(theta):
        W, b = unpack(theta)
        loss, gW, gb = loss_and_grad(W, b, X, y, recipe.l2, mu, **options)
        return loss, np.concatenate([gW.ravel(), gb]).astype(np.float64)

    iterations = [0]
    record(0, 0.0, *unpack(np.zeros(k * d + k)))
    if recipe.steps:
        max_iterations = recipe.steps
    else:
        assert recipe.epochs is not None  # Recipe.check: a recipe has steps or epochs
        max_iterations = max(1, math.ceil(recipe.epochs))

    def callback(theta):
        iterations[0] += 1
        record(iterations[0], float(iterations[0]), *unpack(theta))

    result = minimize(
        objective,
        np.zeros(k * d + k),
        jac=True,
        method="L-BFGS-B",
        callback=callback,
        options={"maxiter": max_iterations, "gtol": recipe.tol, "ftol": 1e-12},
    )
    W, b = unpack(result.x)
    return W, b, iterations[0], None


def newton(X, y, k: int, recipe: Recipe, rng: np.random.Generator, mu, record, grid) -> tuple:
    from .newton import newton_cg

    return newton_cg(X, y, k, recipe, rng, mu, record, grid)


SOLVERS = {"sgd": sgd, "newton": newton, "lbfgs": lbfgs}


def _expected_snapshots(recipe: Recipe, n: int) -> int:
    """How many snapshots a solver will record (at most; full-batch solvers may stop early)."""
    if recipe.solver != "sgd":
        return (recipe.steps or math.ceil(recipe.epochs or 1)) + 2
    _, _, total, every = sgd_plan(recipe, n)
    return total // every + 2


def solve(X, y, n_classes: int, recipe: Recipe, rng: np.random.Generator, *, transform=None, monitor=None,
          image_shape=None, final_train=False):
    """Fit softmax regression to features transform(X) (n, d) and y (n,) class indices in [0, n_classes).

    `monitor` maps names to (X, y) sets whose loss and accuracy are recorded with the training set's at every
    record point of the recipe; the training set's are measured on a fixed sample of CURVE_ROWS of its rows.
    `image_shape` (h, w) places the features on the grid the smoothness penalty uses (else see model.image_grid).
    `final_train` also measures the final model on every training row (one more pass).
    Returns a Solution with the plain-model weights, the history and the snapshots.
    """
    Xf = as_features(X, transform)
    check_magnitude(Xf)
    yf = np.asarray(y).astype(np.intp)
    grid = image_grid(Xf.shape[1], image_shape)
    # Any centre gives the same model; the mean of a sample conditions the problem as well as the full mean.
    mu = spread_sample(Xf, _SAMPLE_ROWS).mean(axis=0, dtype=np.float64).astype(np.float32) if recipe.center else None
    sets = {"train": (spread_sample(Xf, CURVE_ROWS), spread_sample(yf, CURVE_ROWS), None)}
    sets.update({name: (*xy, transform) for name, xy in (monitor or {}).items()})

    def measure(coefs, intercepts):
        return {name: curves(coefs, intercepts, Xm, ym, t) for name, (Xm, ym, t) in sets.items()}

    # With a core to spare, SGD's curves are measured beside it (see _Recorder), every product on one BLAS thread
    # so that the curves are the same to the bit whichever thread measures them and when.
    background = recipe.solver == "sgd" and spare_core()
    # groups of at least CURVE_GROUP snapshots, at most a quarter of them (the tutorial's 1,001: long products)
    group = max(CURVE_GROUP, math.ceil(_expected_snapshots(recipe, len(Xf)) / 4))
    recorder = _Recorder(mu, measure, background, group)
    try:
        with blas_threads(1) if background else contextlib.nullcontext():
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                W, b, steps, rate = SOLVERS[recipe.solver](Xf, yf, n_classes, recipe, rng, mu, recorder, grid)
            if recorder.steps[-1] != steps:
                recorder(steps, recorder.epochs[-1], W, b)
            coefs, intercepts = np.stack(recorder.coefs), np.stack(recorder.intercepts)
            flops = 2 * coefs.size * sum(len(v[1]) for v in sets.values())
            # the rest on one thread (the background thread still measuring), unless it is large and alone
            with blas_threads(1 if background or flops <= 4e9 else pass_threads()):
                if final_train:
                    loss, accuracy = curves(coefs[-1:], intercepts[-1:], Xf, yf)
                    final_train = (float(loss[0]), float(accuracy[0]))
                measured = recorder.curves()
    finally:
        recorder.close()
    history = {"step": np.array(recorder.steps), "epoch": np.array(recorder.epochs)}
    for name, (loss, accuracy) in measured.items():
        history[f"{name}_loss"], history[f"{name}_accuracy"] = loss, accuracy
    epochs = recorder.epochs[-1] if recipe.solver == "sgd" else float(steps)
    return Solution(W, b if mu is None else b - W @ mu, history, steps, epochs, rate,
                    (history["step"], coefs, intercepts), final_train or None)
