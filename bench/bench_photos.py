"""Benchmark: `predict` on realistic phone photos and on handwriting typefaces, against the same models' clean
MNIST test accuracy, and the time and memory each photo takes.

300 photos of MNIST test digits (tests/photos.py: ink colours, ballpoint/marker/pencil, plain/ruled/squared paper,
white/cream/grey/tinted paper, shadows, rotation +-8 degrees, perspective, 1000-2000 px JPEGs at quality 60-90,
stray marks), read by the default and the --deskew model; the same photos through the pipeline without photo
cleanup (the peer: how predict read them before); digits 0-9 in every installed handwriting font (Debian
fonts-bwht, fonts-dkg-handwriting, fonts-femkeklaver, fonts-breip, fonts-klee), as clean renders and as photos;
seconds per photo for the 1000-2000 px photos and for 4000 px ones, and the peak memory of one 4000 px photo.
Usage: python bench/bench_photos.py [--data-dir DIR] [--n 300] [--models DEFAULT DESKEW] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from mnist_softmax import load_dataset, load_model  # noqa: E402
from mnist_softmax.cli import main  # noqa: E402
from mnist_softmax.preprocess import image_for_model, load_pixels, to_model_input  # noqa: E402
from photos import font_digit, font_files, photograph, write_photos  # noqa: E402


def predictions(model, paths, old: bool = False):
    """Predicted labels (-1 for 'no digit found'), and seconds per image: wall-clock and this process's CPU time
    (on a shared machine the wall clock also counts other people's work)."""
    out, times, cpu = [], [], []
    for path in paths:
        start, start_cpu = time.perf_counter(), time.process_time()
        if old:  # the pipeline without photo cleanup: Pillow's greyscale, median polarity, to_model_input
            grey, _ = load_pixels(path, photo=False)
            raw = to_model_input(1 - grey if np.median(grey) > 0.5 else grey)
            raw = None if raw is None else raw / np.float32(model.preprocessing.scale)
        else:
            raw = image_for_model(path, model.preprocessing.image_shape, model.preprocessing.scale)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        out.append(-1 if raw is None else int(model.predict(raw[None])[0]))
    return np.array(out), (np.array(times), np.array(cpu))


def cli_predict(model_path, paths):
    """What `mnist-softmax predict --json` answers for each photo: the label, or None when it declines."""
    import json

    result = subprocess.run([sys.executable, "-m", "mnist_softmax", "predict", str(model_path), *map(str, paths),
                             "--json"], capture_output=True, text=True)
    rows = {row["path"]: row for row in map(json.loads, result.stdout.splitlines())}
    return [rows.get(str(p), {}).get("prediction") for p in paths]


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--models", nargs=2, metavar=("DEFAULT", "DESKEW"))
    parser.add_argument("--work", default="/tmp/mnist-softmax-bench-photos")
    args = parser.parse_args()
    work = Path(args.work)
    ds = load_dataset("mnist", args.data_dir)
    if args.models:
        paths = [Path(p) for p in args.models]
    else:
        paths = []
        for name, extra in (("default", []), ("deskew", ["--deskew"])):
            out = work / f"model-{name}"
            if not (out / "model.npz").exists():
                main(["train", "--data-dir", args.data_dir, "--out", str(out), "-q", "--no-plots", *extra])
            paths.append(out / "model.npz")
    models = {"default": load_model(paths[0]), "deskew": load_model(paths[1])}

    index = np.linspace(0, len(ds.test_images) - 1, args.n).astype(int)
    folder = work / f"photos-{args.n}"
    photos = sorted(folder.glob("digit*.jpg"))
    if len(photos) != args.n:
        start = time.perf_counter()
        photos = write_photos(ds.test_images[index], folder, seed=2026)
        print(f"made {args.n} photos in {time.perf_counter() - start:.0f} s ({folder})")
    labels = ds.test_labels[index]

    fonts = font_files()
    font_paths, font_labels, font_photo_paths = [], [], []
    rng = np.random.default_rng(7)
    (work / "fonts").mkdir(parents=True, exist_ok=True)
    for font in fonts:
        for digit in range(10):
            path = work / "fonts" / f"{font.stem}-{digit}.png"
            page = font_digit(font, digit)
            page.save(path)
            shot = work / "fonts" / f"{font.stem}-{digit}.photo.jpg"
            glyph = 255 - np.asarray(page.resize((28, 28)), np.uint8)  # the glyph as a digit for the photographer
            photograph(glyph, rng).save(shot, quality=85)
            font_paths.append(path)
            font_photo_paths.append(shot)
            font_labels.append(digit)
    font_labels = np.array(font_labels)

    image_for_model(photos[0], (28, 28), 1 / 255)  # imports scipy and scikit-image once, outside the timings
    print(f"{'model':8} {'clean test':>10} {'clean, same':>11} {'photos':>7} {'no cleanup':>10} "
          f"{'fonts':>6} {'fonts photographed':>18}")
    for name, model in models.items():
        clean = model.score(ds.test_images, ds.test_labels)
        same = model.score(ds.test_images[index], labels)
        got, times = predictions(model, photos)
        old, _ = predictions(model, photos, old=True)
        line = (f"{name:8} {100 * clean:9.1f}% {100 * same:10.1f}% {100 * np.mean(got == labels):6.1f}% "
                f"{100 * np.mean(old == labels):9.1f}%")
        if fonts:
            f_got, _ = predictions(model, font_paths)
            f_photo, _ = predictions(model, font_photo_paths)
            line += f" {100 * np.mean(f_got == font_labels):5.1f}% {100 * np.mean(f_photo == font_labels):17.1f}%"
        answers = cli_predict(paths[0] if name == "default" else paths[1], photos)
        declined = np.array([a is None for a in answers])
        right = np.array([a == y for a, y in zip(answers, labels)])
        line += (f"   predict: {100 * right.mean():.1f}% right, {100 * declined.mean():.1f}% declined, "
                 f"{100 * right[~declined].mean():.1f}% of the answers right")
        print(line)
    print(f"photos {photos[0].parent}: {len(photos)} JPEGs, {len(fonts)} font files")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for what, values in zip(("wall", "CPU"), times):
        print(f"{what} seconds per 1000-2000 px photo: median {np.median(values):.3f}, 95th percentile "
              f"{np.percentile(values, 95):.3f}, max {values.max():.3f}")

    big = work / "big"
    big.mkdir(exist_ok=True)
    from PIL import Image

    big_paths = []
    for i, path in enumerate(photos[:20]):
        with Image.open(path) as img:
            scale = 4000 / max(img.size)
            target = big / f"big{i}.jpg"
            if not target.exists():
                img.resize((int(img.width * scale), int(img.height * scale))).save(target, quality=85)
            big_paths.append(target)
    _, (big_wall, big_cpu) = predictions(models["default"], big_paths)
    tracemalloc.start()
    image_for_model(big_paths[0], (28, 28), 1 / 255)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = {}
    for name, path in (("4000 px photo", big_paths[0]), ("28x28 PNG", None)):
        if path is None:
            path = work / "tiny.png"
            Image.fromarray(ds.test_images[0]).save(path)
        code = ("from mnist_softmax.preprocess import image_for_model; "
                f"image_for_model({str(path)!r}, (28, 28), 1 / 255); "
                "print([line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')][0])")
        # VmHWM: this process's own peak (ru_maxrss can carry the parent's over exec)
        rss[name] = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout) / 1024
    print(f"seconds per 4000 px photo: wall median {np.median(big_wall):.3f}, max {big_wall.max():.3f}; CPU median "
          f"{np.median(big_cpu):.3f}, max {big_cpu.max():.3f}; numpy peak of one {peak / 1e6:.0f} MB; "
          f"process peak RSS {rss['4000 px photo']:.0f} MB (a 28x28 PNG: {rss['28x28 PNG']:.0f} MB)")


if __name__ == "__main__":
    main_bench()
