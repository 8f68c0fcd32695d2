"""Turn MNIST digits into what a person's photo or scan of a handwritten digit looks like (for predict tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter


def photograph(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 28x28 uint8 MNIST digit as a photo: dark ink on light paper, 4-10x larger, off-centre, grey or RGB,
    slightly blurred, with mild noise and a tinted, uneven background."""
    scale = rng.uniform(4, 10)
    size = int(28 * scale)
    big = Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BICUBIC)
    canvas_w, canvas_h = int(size * rng.uniform(1.3, 2.0)), int(size * rng.uniform(1.3, 2.0))
    paper = rng.uniform(190, 240)
    ink = np.asarray(big, dtype=np.float32) / 255  # 1 = paper, 0 = ink
    page = np.full((canvas_h, canvas_w), 1.0, np.float32)
    top, left = rng.integers(0, canvas_h - size + 1), rng.integers(0, canvas_w - size + 1)
    page[top : top + size, left : left + size] = ink
    shade = np.linspace(0, rng.uniform(-15, 15), canvas_w)[None, :]  # uneven lighting
    pixels = 25 + (paper - 25) * page + shade + rng.normal(0, 6, page.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(scale / 6))
    if rng.random() < 0.5:
        tint = rng.uniform(0.9, 1.05, 3)
        rgb = np.asarray(image, np.float32)[:, :, None] * tint
        image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    return image


def write_photos(digits: np.ndarray, folder: Path, seed: int = 0) -> list[Path]:
    """Save each digit as a photo, alternating JPEG and PNG; returns the paths in order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, digit in enumerate(digits):
        path = folder / f"digit{i:04d}.{'jpg' if i % 2 else 'png'}"
        photograph(digit, rng).save(path, **({"quality": 85} if path.suffix == ".jpg" else {}))
        paths.append(path)
    return paths
