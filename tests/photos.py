"""Realistic phone photos of handwritten digits, made from MNIST digits, for the predict tests and benchmarks.

Each photo: a 1000-2000 px JPEG (quality 60-90) of a sheet of white, cream, grey or tinted paper, plain, ruled or
squared, with the digit written in blue, black, red or green ink by a ballpoint, a marker or a pencil (the digit's
centre lines redrawn at that pen's width), a few stray marks around it, under uneven light (a gradient, sometimes a
shadow's edge), turned by up to 8 degrees, seen slightly in perspective, a little out of focus and noisy.
Everything is drawn from one seed, so the same seed gives the same photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

PAPERS = {"white": (246, 246, 244), "cream": (244, 236, 212), "grey": (205, 205, 200), "blue": (222, 234, 246),
          "pink": (248, 226, 230), "green": (226, 242, 224), "yellow": (250, 243, 190)}
INKS = {"blue": (25, 45, 150), "black": (25, 25, 30), "red": (190, 25, 35), "green": (25, 115, 50)}
PENS = ("ballpoint", "marker", "pencil")
RULINGS = ("plain", "ruled", "squared")


def pen_strokes(shape: np.ndarray, width: float) -> np.ndarray:
    """A digit's shape (bool, h x w) redrawn along its centre lines with strokes `width` pixels wide (coverage)."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    pad = int(width) + 2
    skeleton = skeletonize(np.pad(shape, pad))
    distance = ndimage.distance_transform_edt(~skeleton)
    return np.clip(width / 2 + 0.5 - distance, 0, 1)


def digit_coverage(digit: np.ndarray, height: int, pen: str, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 uint8 MNIST digit (ink bright) as ink coverage (h, w) in [0, 1] for a digit `height` px tall."""
    rows, cols = np.nonzero(digit.any(axis=1))[0], np.nonzero(digit.any(axis=0))[0]
    crop = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    scale = height / crop.shape[0]
    size = (max(2, int(crop.shape[1] * scale)), height)
    big = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BICUBIC), np.float32) / 255
    shape = big > 0.45
    if pen == "marker":
        width = height * rng.uniform(0.09, 0.18)
    elif pen == "pencil":
        width = height * rng.uniform(0.025, 0.05)
    else:
        width = height * rng.uniform(0.02, 0.05)
    cover = pen_strokes(shape, max(2.0, width))
    if pen == "pencil":  # graphite: grey, grainy
        grain = np.asarray(Image.fromarray((rng.random(cover.shape) * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(1)), np.float32) / 255
        cover = cover * rng.uniform(0.45, 0.7) * np.clip(0.4 + grain, 0, 1)
    elif pen == "ballpoint":  # ballpoints skip a little
        cover = cover * rng.uniform(0.75, 1.0) * (1 - 0.25 * (rng.random(cover.shape) < 0.05))
    return cover


def _blend(page: np.ndarray, cover: np.ndarray, colour, top: int, left: int) -> None:
    """Ink of `colour` with coverage `cover` (h, w) laid on page (H, W, 3) at (top, left), in place, clipped."""
    h, w = cover.shape
    t0, l0 = max(0, top), max(0, left)
    t1, l1 = min(page.shape[0], top + h), min(page.shape[1], left + w)
    if t1 <= t0 or l1 <= l0:
        return
    a = cover[t0 - top : t1 - top, l0 - left : l1 - left, None]
    region = page[t0:t1, l0:l1]
    region *= 1 - a * (1 - np.asarray(colour, np.float32) / 255)


def _paper(height: int, width: int, rng: np.random.Generator, unit: float) -> np.ndarray:
    """Paper (H, W, 3) in 0-255 with its rulings."""
    colour = np.asarray(PAPERS[rng.choice(list(PAPERS))], np.float32) + rng.normal(0, 4, 3)
    page = np.empty((height, width, 3), np.float32)
    page[:] = colour
    page *= 1 + 0.01 * rng.standard_normal((height, width, 1), dtype=np.float32)  # paper texture
    kind = rng.choice(RULINGS, p=[0.3, 0.35, 0.35])
    line = np.asarray(rng.choice([(150, 185, 230), (160, 160, 165), (120, 170, 220), (175, 200, 225)]), np.float32)
    thick = rng.uniform(1.2, 3.0) * unit

    def lines(n: int, spacing: float) -> np.ndarray:
        pos = np.arange(n, dtype=np.float32)
        phase = rng.uniform(0, spacing)
        d = np.abs((pos - phase + spacing / 2) % spacing - spacing / 2)
        return np.clip(thick / 2 + 0.5 - d, 0, 1) * rng.uniform(0.6, 1.0)

    if kind == "ruled":
        a = lines(height, rng.uniform(0.07, 0.12) * height)[:, None, None]
        page *= 1 - a * (1 - line / 255)
        if rng.random() < 0.4:  # a red margin
            x = int(rng.uniform(0.05, 0.2) * width)
            page[:, x : x + max(1, int(thick))] *= np.asarray((235, 120, 120), np.float32) / 255
    elif kind == "squared":
        spacing = rng.uniform(0.04, 0.07) * height
        a = np.maximum(lines(height, spacing)[:, None], lines(width, spacing)[None, :])[:, :, None]
        page *= 1 - a * (1 - line / 255)
    return page


def _stray_marks(page: np.ndarray, box, rng: np.random.Generator, unit: float) -> None:
    """0-3 marks away from the digit's box (top, left, bottom, right): dots, dirt, short pen strokes."""
    top, left, bottom, right = box
    size = max(bottom - top, right - left)
    for _ in range(rng.integers(0, 4)):
        for _try in range(20):
            y, x = rng.integers(0, page.shape[0]), rng.integers(0, page.shape[1])
            gap = max(top - y, y - bottom, left - x, x - right)
            if gap > 0.3 * size:
                break
        else:
            continue
        kind = rng.choice(["dot", "dirt", "stroke"])
        if kind == "stroke":
            length = rng.uniform(0.1, 0.3) * size
            shape = np.zeros((int(length) + 8, int(length) + 8), bool)
            t = np.linspace(0, 1, 200)
            angle = rng.uniform(0, np.pi)
            ys = (length / 2 + 4 + np.sin(angle) * (t - 0.5) * length).astype(int)
            xs = (length / 2 + 4 + np.cos(angle) * (t - 0.5) * length).astype(int)
            shape[ys, xs] = True
            cover = pen_strokes(shape, max(2.0, rng.uniform(2, 5) * unit)) * 0.9
            colour = INKS[rng.choice(list(INKS))]
        else:
            r = rng.uniform(1.5, 5 if kind == "dot" else 9) * unit
            yy, xx = np.mgrid[-int(r) - 2 : int(r) + 3, -int(r) - 2 : int(r) + 3]
            cover = np.clip(r + 0.5 - np.hypot(yy, xx), 0, 1) * (0.9 if kind == "dot" else rng.uniform(0.2, 0.5))
            colour = INKS[rng.choice(list(INKS))] if kind == "dot" else (90, 80, 60)
        _blend(page, cover, colour, y - cover.shape[0] // 2, x - cover.shape[1] // 2)


def _light(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Illumination (H, W, 1): a gradient across the sheet, sometimes the soft edge of a shadow, a vignette."""
    yy = (np.arange(height, dtype=np.float32) / height - 0.5)[:, None]
    xx = (np.arange(width, dtype=np.float32) / width - 0.5)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    along = np.cos(angle) * xx + np.sin(angle) * yy
    light = 1 - np.float32(rng.uniform(0, 0.4)) * (along + 0.7) / 1.4
    if rng.random() < 0.5:  # the edge of a shadow (a phone, a hand)
        angle = rng.uniform(0, 2 * np.pi)
        across = np.cos(angle) * xx + np.sin(angle) * yy - rng.uniform(0.15, 0.45)
        soft = rng.uniform(0.01, 0.08)
        light *= 1 - rng.uniform(0.2, 0.45) / (1 + np.exp(-across / soft))
    light *= 1 - rng.uniform(0, 0.3) * (xx**2 + yy**2)
    return light[:, :, None]


def photograph(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 28x28 uint8 MNIST digit (ink bright) as a realistic phone photo of it written on paper (RGB image)."""
    long_side = int(rng.uniform(1000, 2000))
    aspect = rng.choice([3 / 4, 1.0, 4 / 3])
    out_w, out_h = (long_side, int(long_side / aspect)) if aspect >= 1 else (int(long_side * aspect), long_side)
    unit = long_side / 1000  # pixels per "millimetre-ish" detail at this resolution
    margin = 1.25  # draw a larger sheet, then photograph part of it turned and tilted
    H, W = int(out_h * margin), int(out_w * margin)
    page = _paper(H, W, rng, unit)
    pen = rng.choice(PENS, p=[0.45, 0.25, 0.3])
    cover = digit_coverage(digit, int(rng.uniform(0.3, 0.55) * min(out_h, out_w)), pen, rng)
    h, w = cover.shape
    cy = H / 2 + rng.uniform(-0.12, 0.12) * out_h
    cx = W / 2 + rng.uniform(-0.12, 0.12) * out_w
    top, left = int(cy - h / 2), int(cx - w / 2)
    colour = (80, 80, 85) if pen == "pencil" else INKS[rng.choice(list(INKS))]
    _blend(page, cover, np.asarray(colour) + rng.normal(0, 8, 3), top, left)
    _stray_marks(page, (top, left, top + h, left + w), rng, unit)
    pixels = camera(page, out_w, out_h, rng, unit)
    pixels += np.float32(rng.uniform(1.5, 5)) * rng.standard_normal((out_h, out_w, 1), dtype=np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def camera(page: np.ndarray, out_w: int, out_h: int, rng: np.random.Generator, unit: float) -> np.ndarray:
    """A photo (out_h, out_w, 3) float32 of the middle of the sheet `page`: turned up to 8 degrees, each corner
    moved up to 3% (perspective), then uneven light and focus (the caller adds the sensor's noise)."""
    H, W = page.shape[:2]
    sheet = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "RGB")
    angle = np.deg2rad(rng.uniform(-8, 8))
    corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]], np.float64) * [out_w / 2, out_h / 2]  # UL LL LR UR
    corners += rng.uniform(-0.03, 0.03, (4, 2)) * [out_w, out_h]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    quad = corners @ rot.T + [W / 2, H / 2]
    photo = sheet.transform((out_w, out_h), Image.Transform.QUAD, tuple(quad.ravel()), Image.Resampling.BILINEAR)
    pixels = np.asarray(photo, np.float32) * _light(out_h, out_w, rng)
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.4, 1.5) * unit))
    return np.asarray(photo, np.float32)


def write_photos(digits: np.ndarray, folder: Path, seed: int = 0) -> list[Path]:
    """Save each 28x28 digit as a realistic photo, a JPEG of quality 60-90; returns the paths in order."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, digit in enumerate(digits):
        path = folder / f"digit{i:04d}.jpg"
        photograph(np.asarray(digit, np.uint8), rng).save(path, quality=int(rng.integers(60, 91)))
        paths.append(path)
    return paths


HANDWRITING_FONTS = {  # Debian packages of typefaces made from people's handwriting, and where their files go
    "fonts-bwht": "/usr/share/fonts/opentype/bwht",
    "fonts-dkg-handwriting": "/usr/share/fonts/truetype/fifthhorseman",
    "fonts-femkeklaver": "/usr/share/fonts/truetype/femkeklaver",
    "fonts-breip": "/usr/share/fonts/truetype/breip",
    "fonts-klee": "/usr/share/fonts/truetype/klee",
}


def font_files() -> list[Path]:
    """The installed handwriting font files (empty when none of the packages is installed)."""
    return sorted(p for folder in HANDWRITING_FONTS.values() if Path(folder).is_dir()
                  for p in Path(folder).iterdir() if p.suffix.lower() in (".ttf", ".otf"))


def font_digit(font: Path, digit: int, size: int = 200) -> Image.Image:
    """The digit written in `font`, black on white, about `size` px tall, on a page 1.6 times its size."""
    from PIL import ImageDraw, ImageFont

    face = ImageFont.truetype(str(font), size)
    page = Image.new("L", (int(size * 1.6), int(size * 1.6)), 255)
    draw = ImageDraw.Draw(page)
    draw.text((page.width / 2, page.height / 2), str(digit), font=face, fill=0, anchor="mm")
    return page
