"""Dask: softmax regression on data spread over a cluster, and prediction block by block.

Two solvers, chosen by the recipe as on one machine:

- `optimal` (L-BFGS): exact. The loss and gradient over all rows are sums over the row blocks, so each evaluation
  is one Dask reduction (every block returns its sums as one packed vector; dask adds them up in a tree) and the
  L-BFGS steps run on the client, on 7,850 numbers for MNIST. Same objective, same optimiser, same tolerance as
  the single-machine recipe, hence the same optimum.
- SGD recipes: model averaging. Each round, every block runs one pass of the recipe's SGD (momentum, iterate
  averaging) starting from the current model, and the new model is the mean of the block models, weighted by
  rows. We average models rather than gradients because averaging gradients means one round trip to the cluster
  per step (thousands of tiny tasks per pass), while averaging models needs one per pass; for a convex loss such
  as this one every block's SGD heads for nearly the same optimum, so their mean is close to it (Zinkevich et al.
  2010, "Parallelized stochastic gradient descent"), and restarting the blocks from the mean each round removes
  what disagreement is left.

This module imports dask; nothing else in the package does.
"""

from __future__ import annotations

import math
from functools import partial

import dask
import dask.array as da
import numpy as np

from .errors import UsageError
from .model import loss_and_grad
from .recipes import Recipe
from .stream import StreamState, check_streamable, loss_options

_SAMPLE_ROWS = 4096


def _as_dask(X, y):
    """X (n, d) and y (n,) as dask arrays with the same row blocks and whole rows in each block."""
    if not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X), chunks=(y.chunks[0], -1))
    if X.ndim != 2:
        raise UsageError(f"expected X of shape (n, features), got shape {X.shape}")
    if any(math.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    X = X.rechunk({1: -1})
    if not isinstance(y, da.Array):
        y = da.from_array(np.asarray(y), chunks=(X.chunks[0],))
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UsageError(f"expected y of shape (n,), got shape {y.shape}")
    if any(math.isnan(c) for c in y.chunks[0]):
        y = y.compute_chunk_sizes()
    if y.shape[0] != X.shape[0]:
        raise UsageError(f"X has {X.shape[0]:,} rows but y has {y.shape[0]:,}")
    if y.chunks[0] != X.chunks[0]:
        y = y.rechunk((X.chunks[0],))
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise UsageError(f"expected numeric X, got dtype {X.dtype}")
    return X, y


def _features(block) -> np.ndarray:
    return np.ascontiguousarray(block, dtype=np.float32)


def _sums(Xb, yb, W, b, mu, l2, options):
    """The objective and its gradient on one block, times its rows, packed: [n, n loss, n dW (k*d), n db (k)],
    float64 (1, m). Summed over blocks and divided by the rows, the penalties (the same in every block) come out
    once and the cross-entropy as the mean over all rows: the objective of the whole data set."""
    n = len(yb)
    out = np.zeros((1, 2 + W.size + b.size))
    if n:
        loss, dW, db = loss_and_grad(W, b, _features(Xb), yb.ravel(), l2, mu, **options)
        out[0, 0], out[0, 1] = n, loss * n
        out[0, 2 : 2 + W.size] = dW.ravel() * n
        out[0, 2 + W.size :] = db * n
    return out


def _sgd_pass(Xb, yb, W, b, mu, rate, scales, recipe, seed, image_shape):
    """One pass of the recipe's SGD over one block from (W, b) on centred inputs; packed like _sums:
    [n, mean batch loss * n, W of the block's model * n, b * n]."""
    n = len(yb)
    out = np.zeros((1, 2 + W.size + b.size))
    if n:
        state = StreamState(W.copy(), b.copy(), mu, rate, np.random.default_rng(seed), scales)
        loss = state.update(_features(Xb), yb.ravel(), recipe, image_shape)
        Wm, bm = state.centred_model()
        out[0, 0], out[0, 1] = n, loss * n
        out[0, 2 : 2 + W.size] = Wm.ravel() * n
        out[0, 2 + W.size :] = bm * n
    return out


def _reduce(func, X, yi, *args) -> np.ndarray:
    """Sum over blocks of func(X_block, y_block, *args), as one dask tree reduction."""
    m = 2 + args[0].size + args[1].size
    # partial: the weights go to every block as they are (map_blocks would take positional arrays for data)
    packed = da.map_blocks(partial(_on_block, func, args), X, yi[:, None], chunks=((1,) * X.numblocks[0], (m,)),
                           dtype=np.float64)
    return packed.sum(axis=0).compute()


def _on_block(func, args, Xb, yb):
    return func(Xb, yb, *args)


def solve_dask(X, yi, k: int, recipe: Recipe, rng: np.random.Generator, image_shape=None) -> dict:
    """Fit softmax regression to dask arrays X (n, d) and yi (n,) class indices in [0, k) on the cluster dask is
    using (a distributed.Client if one is active). Returns coef, intercept (the plain model), history, steps,
    epochs and learning_rate, as solvers.solve does."""
    first = _features(X.blocks[0].compute())
    if recipe.solver != "sgd":  # full batch (L-BFGS, Newton): the exact optimum, found by distributed L-BFGS
        X, yi = dask.persist(X, yi)  # read hundreds of times: kept in the workers' memory, as stored (uint8 stays)
        return _lbfgs(X, yi, k, recipe, first, image_shape)
    return _model_averaging(X, yi, k, recipe, rng, first, image_shape)


def _lbfgs(X, yi, k, recipe, first, image_shape) -> dict:
    from scipy.optimize import minimize

    from .solvers import spread_sample

    d = X.shape[1]
    mu = spread_sample(first, _SAMPLE_ROWS).mean(axis=0, dtype=np.float64).astype(np.float32) if recipe.center else None
    options = loss_options(recipe, image_shape)
    seen = {}

    def unpack(theta):
        return theta[: k * d].reshape(k, d).astype(np.float32), theta[k * d :].astype(np.float32)

    def objective(theta):
        W, b = unpack(theta)
        total = _reduce(_sums, X, yi, W, b, mu, recipe.l2, options)
        seen["theta"], seen["loss"] = theta, total[1] / total[0]
        return total[1] / total[0], total[2:] / total[0]

    losses = [math.log(k)]

    def callback(theta):
        same = "theta" in seen and np.array_equal(seen["theta"], theta)
        losses.append(seen["loss"] if same else math.nan)

    result = minimize(objective, np.zeros(k * d + k), jac=True, method="L-BFGS-B", callback=callback,
                      options={"maxiter": recipe.steps or max(1, math.ceil(recipe.epochs)), "gtol": recipe.tol,
                               "ftol": 1e-12})
    W, b = unpack(result.x)
    steps = len(losses) - 1
    history = {"step": np.arange(steps + 1), "epoch": np.arange(steps + 1, dtype=float),
               "objective": np.array(losses)}
    intercept = b if mu is None else b - W @ mu
    return {"coef": W, "intercept": intercept, "history": history, "steps": steps, "epochs": float(steps),
            "learning_rate": None}


def _model_averaging(X, yi, k, recipe, rng, first, image_shape) -> dict:
    check_streamable(recipe)
    start = StreamState.start(first, k, recipe, rng)  # centring mean, step sizes and capped rate, from one block
    W, b, mu, rate, scales = start.W, start.b, start.mu, start.rate, start.scales
    B = recipe.batch_size
    largest = max(X.chunks[0])
    per_round = math.ceil(largest / min(B, largest))  # SGD steps of the largest block in one round
    if recipe.steps:
        rounds = math.ceil(recipe.steps / per_round)
    else:
        rounds = max(math.ceil(recipe.epochs), math.ceil(recipe.min_steps / per_round))
    if rounds > 3:  # a small set that needs many rounds: keep it in the workers' memory; a big one streams
        X, yi = dask.persist(X, yi)
    steps, losses = [0], [math.log(k)]
    for r in range(rounds):
        seed = int(rng.integers(2**31))
        total = _reduce(_sgd_pass, X, yi, W, b, mu, rate, scales, recipe, seed, image_shape)
        W = (total[2 : 2 + W.size] / total[0]).reshape(W.shape).astype(np.float32)
        b = (total[2 + W.size :] / total[0]).astype(np.float32)
        steps.append((r + 1) * per_round)
        losses.append(total[1] / total[0])
    history = {"step": np.array(steps), "epoch": np.arange(rounds + 1, dtype=float), "batch_loss": np.array(losses)}
    intercept = b if mu is None else b - W @ mu
    return {"coef": W, "intercept": intercept.astype(np.float32), "history": history, "steps": rounds * per_round,
            "epochs": float(rounds), "learning_rate": rate}


def fit_dask(clf, X, y):
    """SoftmaxClassifier.fit for dask arrays: check, find the classes, solve on the cluster, store."""
    X, y = _as_dask(X, y)
    recipe = clf._recipe()
    classes, finite = dask.compute(da.unique(y), da.isfinite(X).all() if X.dtype.kind == "f" else True)
    if not finite:
        raise ValueError("Input X contains NaN or infinity.")
    from sklearn.utils.multiclass import check_classification_targets

    check_classification_targets(classes)
    if len(classes) < 2:
        raise ValueError(f"this solver needs samples of at least 2 classes in the data, but the data contains "
                         f"only one class: {classes[0]!r}")
    yi = y.map_blocks(partial(np.searchsorted, classes), dtype=np.intp)
    rng = np.random.default_rng(clf._seed())
    result = solve_dask(X, yi, len(classes), recipe, rng)
    clf.classes_ = classes
    clf.n_features_in_ = X.shape[1]
    clf.coef_, clf.intercept_ = result["coef"], result["intercept"]
    clf.history_ = result["history"]
    clf.n_iter_ = result["steps"]
    clf.n_epochs_ = result["epochs"]
    clf.learning_rate_ = result["learning_rate"]
    return clf


def predict_blockwise(clf, method: str, X):
    """clf.<method> applied to each row block of the dask array X, lazily (a dask array, like dask-ml's
    ParallelPostFit): the model travels to the blocks, the data never comes to the client."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(clf)
    if X.ndim != 2 or X.shape[1] != clf.n_features_in_:
        raise ValueError(f"X has shape {X.shape}, but SoftmaxClassifier is expecting {clf.n_features_in_} features")
    X = X.rechunk({1: -1})
    func = getattr(clf, method)
    k = len(clf.classes_)
    if method == "predict":
        return X.map_blocks(func, drop_axis=1, dtype=clf.classes_.dtype, meta=np.array((), clf.classes_.dtype))
    if method == "decision_function" and k == 2:
        return X.map_blocks(func, drop_axis=1, dtype=np.float32, meta=np.array((), np.float32))
    return X.map_blocks(func, chunks=(X.chunks[0], (k,)), dtype=np.float32, meta=np.array((), np.float32))


def shards_array(shards, transform=None, chunk_rows: int | None = None):
    """The images and labels of an out-of-core ShardSet as lazy dask arrays (n, d) and (n,), one block per chunk
    of rows: each worker reads its own rows from the files (so they must be where the workers can read them)."""
    from .outofcore import CHUNK_ROWS

    d = int(np.prod(shards.image_shape))
    blocks, labels = [], []
    for chunk in shards.chunks(chunk_rows or CHUNK_ROWS * 8):
        rows = chunk[2] - chunk[1]
        part = dask.delayed(shards.read, pure=True, nout=2)(*chunk)
        images = da.from_delayed(part[0], (rows, *shards.image_shape), dtype=np.uint8).reshape(rows, d)
        blocks.append(images if transform is None else images.map_blocks(transform, dtype=np.float32))
        labels.append(da.from_delayed(part[1], (rows,), dtype=np.int64))
    return da.concatenate(blocks), da.concatenate(labels)


def connect(address: str):
    """A dask.distributed Client: to the scheduler at `address` ("tcp://host:8786"), or to a new LocalCluster of
    one single-threaded worker process per core (at most 4) for "local"."""
    from distributed import Client, LocalCluster

    if address == "local":
        import os

        workers = max(1, min(4, os.cpu_count() or 1))
        return Client(LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None))
    try:
        return Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
