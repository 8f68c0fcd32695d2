"""Choose a recipe's settings on the validation split: each variant of the default recipe over many seeds.

Trains on MNIST's first 55,000 training images and scores the last 5,000 (the validation split); the test set is
not read. Prints, per variant, the mean and spread of validation accuracy, the weight maps' roughness and the
median CPU time of a fit. This is how the default's smoothness, L2 and per-pixel step sizes were chosen (seeds
100-119, so that the test-set figures elsewhere, seeds 0-9, come from other runs).
Usage: python bench/bench_recipe.py '[{"smooth": 1e-4}, {"precondition": 0.3, "l2": 1e-5}]' [--seeds 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", help="a JSON list of overrides of the default recipe, e.g. '[{}, {\"l2\": 0}]'")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    args = parser.parse_args()

    from mnist_softmax import load_dataset
    from mnist_softmax.metrics import roughness
    from mnist_softmax.recipes import get_recipe
    from mnist_softmax.solvers import solve

    ds = load_dataset("mnist", args.data_dir)
    X = ds.train_images.reshape(60000, -1).astype(np.float32) / np.float32(255)
    y = np.asarray(ds.train_labels)
    X_train, y_train, X_val, y_val = X[:55000], y[:55000], X[55000:], y[55000:]
    for overrides in json.loads(args.variants):
        recipe = get_recipe("default").with_overrides(**overrides)
        accuracy, rough, cpu = [], [], []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            start = time.process_time()
            s = solve(X_train, y_train, 10, recipe, np.random.default_rng(seed), image_shape=(28, 28))
            cpu.append(time.process_time() - start)
            accuracy.append(np.mean((X_val @ s.coef.T + s.intercept).argmax(1) == y_val))
            rough.append(roughness(s.coef, (28, 28)))
        print(f"{json.dumps(overrides):<55} validation {100 * np.mean(accuracy):.2f}% "
              f"(sd {100 * np.std(accuracy):.2f}, "
              f"min {100 * min(accuracy):.2f})  roughness {np.mean(rough):.3f}  CPU {np.median(cpu):.3f} s  "
              f"{s.n_steps} steps", flush=True)


if __name__ == "__main__":
    main()
