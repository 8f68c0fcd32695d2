"""Scale-out figures: out-of-core training on growing prefixes of a shard set (time per image, peak memory), the
same set on a Dask LocalCluster (time, memory per worker), the exact distributed optimum against the numpy one,
and scikit-learn's one-vs-rest SGDClassifier.partial_fit on the same stream as a peer.

    nice python bench/make_shards.py /tmp/mnist2m --images 2000000
    nice python bench/bench_scale.py /tmp/mnist2m --sizes 500000,1000000,2000000 --workers 4

Each out-of-core run is its own process, so its peak resident memory (ru_maxrss) is its own. Accuracy is on
MNIST's 10,000 test images, which the shards never contain.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)

CHILD = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np
    from mnist_softmax import load_dataset
    from mnist_softmax.outofcore import ShardSet, fit_shards, open_shards
    from mnist_softmax.recipes import RECIPES
    folder, size, epochs, peer = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
    shards = open_shards(folder)
    keep = int(np.searchsorted(np.cumsum([f.shape[0] for f in shards.images]), size) + 1)
    shards = ShardSet(shards.images[:keep], shards.labels[:keep])
    test = load_dataset("mnist")
    X_test = test.test_images.reshape(10000, -1).astype(np.float32) / 255
    features = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255
    started = time.perf_counter()
    if peer:  # scikit-learn's SGDClassifier (one-vs-rest logistic) on the same shuffled blocks, one pass
        from sklearn.linear_model import SGDClassifier
        from mnist_softmax.outofcore import shuffled_blocks
        clf = SGDClassifier(loss="log_loss", random_state=0)
        for images, labels in shuffled_blocks(shards, np.random.default_rng(0)):
            clf.partial_fit(features(images), labels, classes=np.arange(10))
        accuracy = clf.score(X_test, test.test_labels)
    else:
        recipe = RECIPES["default"].with_overrides(epochs=epochs)
        state, seen = fit_shards(shards, 10, recipe, np.random.default_rng(0), features)
        coef, intercept = state.coef_intercept()
        accuracy = float(np.mean(np.argmax(X_test @ coef.T + intercept, 1) == test.test_labels))
    seconds = time.perf_counter() - started
    print(json.dumps({"images": shards.n, "seconds": seconds, "accuracy": accuracy,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def out_of_core(folder, size, epochs, peer=False) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(size), str(epochs), "1" if peer else "0"],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": SRC})
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def on_cluster(folder, workers: int, epochs: float) -> dict:
    from distributed import Client, LocalCluster

    from mnist_softmax import load_dataset
    from mnist_softmax.distributed import shards_array, solve_dask
    from mnist_softmax.model import loss_and_grad
    from mnist_softmax.outofcore import open_shards
    from mnist_softmax.recipes import RECIPES
    from mnist_softmax.solvers import solve

    ds = load_dataset("mnist")
    X_test = ds.test_images.reshape(10000, -1).astype(np.float32) / 255
    result = {}
    with (LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit="1GB", dashboard_address=None) as cluster,
          Client(cluster) as client):
        shards = open_shards(folder)
        features = _Features()
        X, y = shards_array(shards, features)
        started = time.perf_counter()
        fit = solve_dask(X, y, 10, RECIPES["default"].with_overrides(epochs=epochs), np.random.default_rng(0))
        result["sgd_seconds"] = time.perf_counter() - started
        result["sgd_images"] = shards.n
        predicted = np.argmax(X_test @ fit["coef"].T + fit["intercept"], 1)
        result["sgd_accuracy"] = float(np.mean(predicted == ds.test_labels))
        result["worker_peak_rss_mb"] = sorted(client.run(peak_rss_mb).values())

        # The exact optimum on the 55,000 MNIST training images: on the cluster and with numpy.
        import dask.array as da

        train_X, train_y, _, _ = ds.split()
        Xn = train_X.reshape(len(train_X), -1).astype(np.float32) / 255
        optimal = RECIPES["optimal"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            started = time.perf_counter()
            exact = solve_dask(da.from_array(Xn, chunks=(55000 // (2 * workers) + 1, -1)),
                               da.from_array(train_y.astype(np.intp), chunks=55000 // (2 * workers) + 1), 10, optimal,
                               np.random.default_rng(0))
            result["exact_dask_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        local = solve(Xn, train_y, 10, optimal, np.random.default_rng(0))
        result["exact_numpy_seconds"] = time.perf_counter() - started

        def objective(W, b):
            return loss_and_grad(W, b, Xn, train_y, optimal.l2, **_smooth(optimal))[0]

        ours, theirs = objective(exact["coef"], exact["intercept"]), objective(local.coef, local.intercept)
        result["exact_objective_rel_diff"] = abs(ours - theirs) / theirs
        agree = np.argmax(X_test @ exact["coef"].T + exact["intercept"], 1) == np.argmax(
            X_test @ local.coef.T + local.intercept, 1)
        result["exact_prediction_agreement"] = float(np.mean(agree))
        result["exact_iterations"] = exact["steps"]
    return result


class _Features:
    """uint8 rows -> float32 / 255 (a class, so the workers can unpickle it)."""

    def __call__(self, x):
        return x.reshape(len(x), -1).astype(np.float32) / 255


def _smooth(recipe) -> dict:
    from mnist_softmax.stream import loss_options

    return loss_options(recipe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path)
    parser.add_argument("--sizes", default="500000,1000000,2000000")
    parser.add_argument("--epochs", type=float, default=1.0, help="passes over each set (default: 1)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-cluster", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"out of core, one process, default recipe, {args.epochs:g} pass(es):")
    print(f"{'images':>10} {'seconds':>8} {'us/image':>9} {'peak RSS':>9} {'test acc':>9}")
    rows = []
    for size in sizes:
        r = out_of_core(args.shards, size, args.epochs)
        rows.append(r)
        print(f"{r['images']:>10,} {r['seconds']:>8.1f} {1e6 * r['seconds'] / (r['images'] * args.epochs):>9.2f} "
              f"{r['peak_rss_mb']:>7.0f}MB {100 * r['accuracy']:>8.2f}%", flush=True)
    per_image = [r["seconds"] / r["images"] for r in rows]
    print(f"time per image, largest / smallest set: {per_image[-1] / per_image[0]:.2f} (1.00 is linear)")
    peer = out_of_core(args.shards, sizes[0], 1, peer=True)
    ours = rows[0]
    print(f"peer on {peer['images']:,} images, one pass: SGDClassifier(loss='log_loss').partial_fit (one-vs-rest) "
          f"{peer['seconds']:.1f} s, {100 * peer['accuracy']:.2f}% test, {peer['peak_rss_mb']:.0f} MB; ours "
          f"{ours['seconds']:.1f} s ({peer['seconds'] / ours['seconds']:.1f}x faster), {100 * ours['accuracy']:.2f}%")
    if args.no_cluster:
        return
    r = on_cluster(args.shards, args.workers, args.epochs)
    print(f"\nDask LocalCluster, {args.workers} worker processes x 1 thread, memory limit 1 GB each:")
    print(f"  SGD by model averaging, {args.epochs:g} round(s) over {r['sgd_images']:,} images: "
          f"{r['sgd_seconds']:.1f} s, test {100 * r['sgd_accuracy']:.2f}%, peak RSS per worker "
          f"{', '.join(f'{m:.0f}' for m in r['worker_peak_rss_mb'])} MB")
    print(f"  exact optimum (distributed L-BFGS) on MNIST's 55,000: {r['exact_dask_seconds']:.1f} s, "
          f"{r['exact_iterations']} iterations; numpy (optimal recipe) {r['exact_numpy_seconds']:.1f} s; objective "
          f"relative difference {r['exact_objective_rel_diff']:.1e}, predictions agree on "
          f"{100 * r['exact_prediction_agreement']:.2f}% of test images")


if __name__ == "__main__":
    main()
