"""Benchmark: images per second a loaded model predicts in memory, and files per second `predict` reads from a folder.

In memory: `model.predict` on MNIST's 10,000 test images (uint8, as load_dataset returns them), as it runs (every
core for a large batch on an idle machine), on one core, and on every core whatever the load, against two peers
timed in the same rounds: the plain path (all features as float32, then one product, one BLAS thread) and one
product on float32 features already scaled (no conversion, but not in chunks). A folder: `mnist-softmax predict
MODEL DIR` (in this process, output discarded) on N MNIST test images saved as PNGs, against just decoding the
same files with Pillow. Variants take turns within each round, in a shuffled order, so a change in the machine's
load touches all of them; medians and ratios are printed (wall time, and per CPU-second), with the load before and
after. Usage: python bench/bench_predict.py [--data-dir DIR] [--rounds R] [--files N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def timed(fn) -> tuple[float, float]:
    """Wall and CPU seconds of one call (the CPU time, of all threads, does not count waiting for a busy core)."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def rounds(variants: dict, repeat: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU seconds per call of each variant over `repeat` rounds, each round calling each once, in
    an order shuffled per round (what ran just before changes a call's time: caches, the other processes)."""
    for fn in variants.values():
        fn()  # warm up: imports, caches, thread pools
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    rng = np.random.default_rng(0)
    for _ in range(repeat):
        for name in rng.permutation(list(variants)):
            times[name].append(timed(variants[name]))
    return ({name: float(np.median([w for w, _ in t])) for name, t in times.items()},
            {name: float(np.median([c for _, c in t])) for name, t in times.items()})


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def one_core():
    """model.predict as it runs with the machine busy: no split of a batch between threads."""
    from mnist_softmax import model as module

    saved = getattr(module, "_PARALLEL_ROWS", None)  # None: a version that never splits (for a before/after)
    module._PARALLEL_ROWS = 1 << 62
    try:
        yield
    finally:
        module._PARALLEL_ROWS = saved


@contextlib.contextmanager
def every_core():
    """model.predict as it runs on an idle machine: a large batch split between one thread per core."""
    from mnist_softmax import threads

    saved, threads.pass_threads = threads.pass_threads, lambda: None
    try:
        yield
    finally:
        threads.pass_threads = saved


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--rounds", type=int, default=15, help="rounds in memory (default 15; a folder: a third)")
    parser.add_argument("--files", type=int, default=2000, help="PNG files in the folder (default 2000)")
    args = parser.parse_args()

    from PIL import Image

    from mnist_softmax import load_dataset, load_model, save_model
    from mnist_softmax.cli import main as cli
    from mnist_softmax.recipes import get_recipe
    from mnist_softmax.threads import blas_threads
    from mnist_softmax.train import train

    print(f"load before: {load()}  ({os.cpu_count()} cores)", flush=True)
    ds = load_dataset("mnist", args.data_dir)
    run = train(ds, get_recipe("default"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        save_model(run.model, path)
        model = load_model(path)
        images = np.ascontiguousarray(ds.test_images)
        n = len(images)
        scaled = images.reshape(n, -1).astype(np.float32) * np.float32(model.preprocessing.scale)
        W, b, classes = model.coef, model.intercept, model.classes

        def plain():
            with blas_threads(1):
                return classes[np.argmax(model.features(images) @ W.T + b, axis=1)]

        def product():
            with blas_threads(1):
                return classes[np.argmax(scaled @ W.T + b, axis=1)]

        def single():
            with one_core():
                return model.predict(images)

        def split():
            with every_core():
                return model.predict(images)

        variants = {"model.predict(uint8 images)": lambda: model.predict(images),
                    "model.predict, one core": single,
                    "model.predict, every core (forced)": split,
                    "peer: features, then one product": plain,
                    "peer: one product on scaled float32": product}
        assert all((fn() == plain()).all() for fn in variants.values())  # the same answers
        median, cpu = rounds(variants, args.rounds)
        peer = "peer: features, then one product"
        print(f"\npredict on {n:,} MNIST test images in memory (median of {args.rounds} rounds; "
              f"per CPU-second: images over the CPU time of all threads)")
        for name, seconds in median.items():
            print(f"  {name:<38} {n / seconds / 1e6:6.2f} M images/s  {median[peer] / seconds:5.2f}x the plain path"
                  f"   per CPU-second {n / cpu[name] / 1e6:6.2f} M  {cpu[peer] / cpu[name]:5.2f}x")

        folder = Path(tmp) / "pngs"
        folder.mkdir()
        files = [folder / f"{i:05d}.png" for i in range(min(args.files, n))]
        for i, file in enumerate(files):
            Image.fromarray(images[i]).save(file)

        def decode():
            for file in files:
                with Image.open(file) as img:
                    np.asarray(img.convert("L"))

        def predict():
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                assert cli(["predict", "-q", path, str(folder)]) == 0

        folder_rounds = max(3, args.rounds // 3)
        median, cpu = rounds({"decode": decode, "predict": predict}, folder_rounds)
        print(f"\n`mnist-softmax predict MODEL DIR` on {len(files):,} MNIST test PNGs "
              f"(in process, median of {folder_rounds} rounds)")
        for name, label in (("decode", "decode only (Pillow open, greyscale, array)"), ("predict", "predict")):
            print(f"  {label:<44} {len(files) / median[name]:7,.0f} files/s  "
                  f"{median['decode'] / median[name]:5.2f}x decoding's rate   per CPU-second "
                  f"{len(files) / cpu[name]:7,.0f}  {cpu['decode'] / cpu[name]:5.2f}x")
    print(f"\nload after:  {load()}")


if __name__ == "__main__":
    main()
