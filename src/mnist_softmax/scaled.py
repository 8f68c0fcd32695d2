"""Training runs that scale out: training data read out of core from shards, or computed on a Dask cluster.

`train --shards DIR` and `train --dask ADDRESS` end here. The validation and test images still come from the
named dataset (for the figures that say how good the model is); the training images come from the shards when
given, else from the dataset. The run is a train.Run, written like any other.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .data import Dataset
from .metrics import curves
from .model import Preprocessing, SoftmaxModel
from .recipes import Recipe
from .train import Run


def train_scaled(dataset: Dataset, recipe: Recipe, *, seed: int = 0, validation_size: int | None = None,
                 deskew: bool = False, shards: str | Path | None = None, dask: str | None = None) -> Run:
    """Train on `shards` (out of core) or the dataset's training split, on this machine or on the Dask cluster at
    `dask` ("local" starts one); select on the dataset's validation split, report on its test set."""
    from .errors import DataFormatError

    spec = dataset.spec
    X, y, X_val, y_val = dataset.split(validation_size)
    preprocessing = Preprocessing(scale=1.0 / spec.pixel_max, image_shape=spec.image_shape, deskew=deskew)
    k = len(spec.class_names)
    source = None
    if shards is not None:
        from .outofcore import open_shards

        source = open_shards(shards)
        if source.image_shape not in (tuple(spec.image_shape), (int(np.prod(spec.image_shape)),)):
            raise DataFormatError(f"{shards}: images of shape {source.image_shape}, but {spec.name} has "
                                  f"{tuple(spec.image_shape)}")
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    if dask:
        coef, intercept, steps, epochs, rate, workers = _on_cluster(dask, source, X, y, k, recipe, rng, preprocessing)
    elif source is not None:
        from .outofcore import fit_shards

        state, seen = fit_shards(source, k, recipe, rng, preprocessing.apply)
        coef, intercept = state.coef_intercept()
        steps, epochs, rate, workers = state.steps, seen / source.n, state.rate, None
    else:
        from .solvers import solve

        s = solve(X, y, k, recipe, rng, transform=preprocessing.apply)
        coef, intercept, steps, epochs, rate = s.coef, s.intercept, s.n_steps, s.n_epochs, s.learning_rate
        workers = None
    seconds = time.perf_counter() - started

    n_train = source.n if source is not None else len(y)
    metrics = {
        "dataset": spec.name, "recipe": recipe.name, "seed": seed, "deskew": deskew,
        "n_train": n_train, "n_validation": len(y_val), "n_test": len(dataset.test_labels),
        "steps": int(steps), "epochs": round(float(epochs), 4), "learning_rate": rate,
        "train_seconds": round(seconds, 4),
        "training_data": str(Path(shards).resolve()) if shards is not None else "dataset",
        "dask": dask, "dask_workers": workers,
    }
    # Curves: the zero start and the final model on each set in memory; over the shards, one streaming pass.
    coefs = np.stack([np.zeros_like(coef), coef])
    intercepts = np.stack([np.zeros_like(intercept), intercept])
    history = {"step": np.array([0, steps]), "epoch": np.array([0.0, float(epochs)])}
    sets = {"validation": (X_val, y_val), "test": (dataset.test_images, dataset.test_labels)}
    if source is None:
        sets["train"] = (X, y)
    else:
        from .outofcore import evaluate_shards

        loss, accuracy = evaluate_shards(source, coef, intercept, preprocessing.apply)
        metrics["train_loss"], metrics["train_accuracy"] = round(loss, 6), round(accuracy, 6)
    for name, (images, labels) in sets.items():
        if not len(labels):
            metrics[f"{name}_loss"] = metrics[f"{name}_accuracy"] = None
            continue
        losses, accuracies = curves(coefs, intercepts, images, labels, preprocessing.apply)
        metrics[f"{name}_loss"] = round(float(losses[-1]), 6)
        metrics[f"{name}_accuracy"] = round(float(accuracies[-1]), 6)
        if name != "test":
            history[f"{name}_loss"], history[f"{name}_accuracy"] = losses, accuracies

    from . import __version__

    model = SoftmaxModel(coef, intercept, np.arange(k), preprocessing, spec.class_names, metadata={
        "dataset": {"name": spec.name, "title": spec.title, "checksums": dataset.checksums,
                    "validation_size": len(y_val), "sources": dataset.sources},
        "training_data": metrics["training_data"],
        "hyperparameters": recipe.to_json(), "seed": seed, "metrics": metrics,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "package_version": __version__,
    })
    return Run(model, metrics, history)


def _on_cluster(address, source, X, y, k, recipe, rng, preprocessing):
    """Fit on the Dask cluster at `address`: the shards read by the workers, or the in-memory split sent to them."""
    try:
        import dask.array as da

        from .distributed import connect, shards_array, solve_dask
    except ImportError as exc:
        from .errors import UsageError

        raise UsageError(f"--dask needs dask and distributed ({exc}); pip install 'dask[array]' distributed") from None

    client = connect(address)
    try:
        workers = len(client.scheduler_info()["workers"])
        if source is not None:
            dX, dy = shards_array(source, preprocessing.apply)
        else:
            rows = max(4096, -(-len(y) // (4 * workers)))  # a few blocks per worker
            dX = da.from_array(np.asarray(X).reshape(len(X), -1), chunks=(rows, -1)).map_blocks(
                preprocessing.apply, dtype=np.float32)
            dy = da.from_array(np.asarray(y), chunks=(rows,))
        low, high = da.compute(dy.min(), dy.max())
        if low < 0 or high >= k:
            from .errors import DataFormatError

            raise DataFormatError(f"labels must be in [0, {k}), found {low}..{high}")
        result = solve_dask(dX, dy.astype(np.intp), k, recipe, rng, preprocessing.image_shape)
    finally:
        cluster = client.cluster
        client.close()
        if address == "local" and cluster is not None:
            cluster.close()
    return (result["coef"], result["intercept"], result["steps"], result["epochs"], result["learning_rate"],
            workers)
