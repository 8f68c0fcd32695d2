"""Benchmark: what each of train's figures costs, in one process, on one default MNIST run.

Measures (median of interleaved rounds) weights.gif (numpy + Pillow frames) against the two matplotlib figures,
weights.png and curves.png, and the training itself, and prints each as a share of the fit; then the report's own
extras (class means, reading the GIF back into the slider's frames). The whole `train` process with and without
figures is measured by bench_train.py. Usage: python bench/bench_figures.py [--data-dir DIR] [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from mnist_softmax import load_dataset, plots
    from mnist_softmax.recipes import get_recipe
    from mnist_softmax.report import class_means, read_animation
    from mnist_softmax.train import train, write_animation

    ds = load_dataset("mnist", args.data_dir)
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} before")
    times = {name: [] for name in ("fit", "weights.gif", "weights.png", "curves.png", "class means", "read gif")}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for _ in range(args.rounds):
            started = time.perf_counter()
            run = train(ds, get_recipe("default"))
            times["fit"].append(time.perf_counter() - started)
            model = run.model
            jobs = {
                "weights.gif": (write_animation, run, out / "weights.gif"),
                "weights.png": (lambda m: plots.save(plots.weight_maps(m.coef, (28, 28), m.class_names),
                                                     out / "weights.png"), model),
                "curves.png": (lambda r: plots.save(plots.learning_curves(r.history), out / "curves.png"), run),
                "class means": (class_means, model, *ds.split()[:2], len(model.class_names)),
                "read gif": (read_animation, out / "weights.gif"),
            }
            for name, (job, *job_args) in jobs.items():
                started = time.perf_counter()
                job(*job_args)
                times[name].append(time.perf_counter() - started)
        frames = len(read_animation(out / "weights.gif"))
        size = (out / "weights.gif").stat().st_size
    fit = np.median(times["fit"])
    print(f"default run: {len(run.snapshots[0])} record points, weights.gif {frames} frames, {size / 1e3:.0f} kB")
    print(f"{'':14} {'median s':>9} {'of the fit':>11}")
    for name, values in times.items():
        print(f"{name:14} {np.median(values):9.3f} {np.median(values) / fit:10.0%}")
    matplotlib = np.median(times["weights.png"]) + np.median(times["curves.png"])
    print(f"weights.gif costs {np.median(times['weights.gif']) / matplotlib:.0%} of the two matplotlib figures")
    print(f"load {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
