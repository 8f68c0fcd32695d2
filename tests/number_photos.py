"""Realistic phone photos of written numbers (2-6 MNIST test digits on a line), for the read tests and benchmark.

The paper, pens, inks, stray marks, light and camera are those of photos.py (one digit per photo); here several
digits are written side by side, each at its own slightly different size and height, with gaps that vary from
generous to none at all (neighbours touching or overlapping a little), as people write numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from photos import INKS, PENS, _blend, _paper, _stray_marks, camera, digit_coverage


def photograph_number(digits: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Digits (n, 28, 28) uint8, ink bright, written left to right on paper and photographed (RGB image)."""
    long_side = int(rng.uniform(1000, 2000))
    aspect = rng.choice([4 / 3, 3 / 2, 1.0])
    out_w, out_h = long_side, int(long_side / aspect)
    unit = long_side / 1000
    margin = 1.25
    H, W = int(out_h * margin), int(out_w * margin)
    page = _paper(H, W, rng, unit)
    pen = rng.choice(PENS, p=[0.45, 0.25, 0.3])
    n = len(digits)
    height = min(rng.uniform(0.15, 0.3) * out_h, 0.65 * out_w / (n * 0.9))  # the whole number in the frame
    colour = np.asarray((80, 80, 85) if pen == "pencil" else INKS[rng.choice(list(INKS))]) + rng.normal(0, 8, 3)
    covers = [digit_coverage(np.asarray(d, np.uint8), int(height * rng.uniform(0.85, 1.1)), pen, rng) for d in digits]
    gaps = [height * rng.choice([rng.uniform(0.08, 0.35), rng.uniform(-0.04, 0.08)], p=[0.85, 0.15])
            for _ in range(n - 1)]
    total = sum(c.shape[1] for c in covers) + sum(gaps)
    left = W / 2 - total / 2 + rng.uniform(-0.05, 0.05) * out_w
    base = H / 2 + rng.uniform(-0.12, 0.12) * out_h
    boxes = []
    for i, cover in enumerate(covers):
        h, w = cover.shape
        top = int(base - h / 2 + rng.uniform(-0.06, 0.06) * height)
        _blend(page, cover, colour, top, int(left))
        boxes.append((top, int(left), top + h, int(left) + w))
        left += w + (gaps[i] if i < n - 1 else 0)
    box = (min(b[0] for b in boxes), boxes[0][1], max(b[2] for b in boxes), boxes[-1][3])
    _stray_marks(page, box, rng, unit)
    pixels = camera(page, out_w, out_h, rng, unit) + rng.normal(0, rng.uniform(1.5, 5), (out_h, out_w, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def write_numbers(images: np.ndarray, labels: np.ndarray, folder: Path, count: int, seed: int = 0,
                  lengths=(2, 6), picks: list | None = None) -> list[tuple[Path, str]]:
    """`count` photos of numbers of lengths[0]..lengths[1] digits drawn from (images, labels); JPEG quality 60-90.
    Returns (path, the digits written) for each; `picks`, if given, gets each number's image indices."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        n = int(rng.integers(lengths[0], lengths[1] + 1))
        pick = rng.choice(len(images), n, replace=False)
        if picks is not None:
            picks.append(pick)
        path = folder / f"number{i:04d}.jpg"
        photograph_number(images[pick], rng).save(path, quality=int(rng.integers(60, 91)))
        out.append((path, "".join(str(int(v)) for v in labels[pick])))
    return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: insertions, deletions and substitutions to turn a into b."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def digits_right(read: str, truth: str) -> int:
    """Digits of `truth` read right once the two strings are aligned by edit distance."""
    return max(0, len(truth) - edit_distance(read, truth))
