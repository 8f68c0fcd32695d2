"""Benchmark: how many images per second a loaded model predicts, in memory, from raw 8-bit pixels.

Trains the default model once, saves and loads it, then times `model.predict` on MNIST's 10,000 test images
(uint8, as load_dataset returns them) and on float32 pixels already scaled, one BLAS thread and all threads.
Usage: python bench/bench_predict.py [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def rate(fn, images: int, repeat: int = 15) -> tuple[float, float]:
    """Median and best images per second over `repeat` calls."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return images / float(np.median(times)), images / min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    args = parser.parse_args()

    from mnist_softmax import load_dataset, load_model, save_model
    from mnist_softmax.recipes import get_recipe
    from mnist_softmax.threads import blas_threads
    from mnist_softmax.train import train

    ds = load_dataset("mnist", args.data_dir)
    run = train(ds, get_recipe("default"))
    with tempfile.TemporaryDirectory() as tmp:
        save_model(run.model, os.path.join(tmp, "model.npz"))
        model = load_model(os.path.join(tmp, "model.npz"))
    images = np.ascontiguousarray(ds.test_images)
    scaled = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    print(f"predict on {len(images):,} MNIST test images in memory (median and best of 15 calls)")
    for threads in (1, None):
        with blas_threads(threads):
            for name, X in (("uint8 pixels", images), ("float32 features", scaled)):
                if name == "float32 features":  # features already scaled: predict through the weights only
                    fn = lambda X=X: model.classes[np.argmax(X @ model.coef.T + model.intercept, axis=1)]  # noqa: E731
                    label = "float32 features, one GEMM (the floor)"
                else:
                    fn = lambda X=X: model.predict(X)  # noqa: E731
                    label = "model.predict(uint8 images)"
                median, best = rate(fn, len(images))
                print(f"  {label:<42} {'1 thread' if threads else 'all threads':<12} "
                      f"{median / 1e6:6.2f} M images/s (best {best / 1e6:.2f})")


if __name__ == "__main__":
    main()
