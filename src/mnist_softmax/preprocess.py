"""Image preprocessing shared by training and prediction: deskewing, and turning a photo or scan into MNIST form.

MNIST digits were made by fitting each NIST digit into a 20x20 box (keeping its aspect ratio, anti-aliased) and
placing that box in a 28x28 field so that the centre of mass of the ink is at the centre. `to_model_input` does
the same to any greyscale image with ink brighter than the background; `read_image` gets such an image from a
file of any format, size or polarity.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .errors import DataFormatError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (a 40000x40000 "decompression bomb" is 1.6e9)
_CHUNK = 512  # images per vectorised step: small enough to stay in cache


def _moments(images: np.ndarray):
    """Centre of mass (cy, cx), and the shear cov(x, y) / var(y) of each image in (n, h, w)."""
    n, h, w = images.shape
    ys = np.arange(h, dtype=np.float32)
    xs = np.arange(w, dtype=np.float32)
    rows = images @ np.ones(w, np.float32)  # (n, h); matrix products are faster than sums over an axis here
    cols = np.ones(h, np.float32) @ images  # (n, w)
    mass = rows.sum(axis=1)
    safe = np.where(mass > 0, mass, 1)
    cy, cx = rows @ ys / safe, cols @ xs / safe
    dy, dx = ys - cy[:, None], xs - cx[:, None]  # (n, h), (n, w)
    var_y = (rows * dy**2).sum(axis=1) / safe
    cov = ((images @ dx[:, :, None])[..., 0] * dy).sum(axis=1) / safe
    alpha = np.divide(cov, var_y, out=np.zeros_like(cov), where=var_y > 1e-6)
    return cy, cx, alpha


def deskew(images: np.ndarray) -> np.ndarray:
    """Straighten slanted digits (n, h, w): shear each so its ink has no x-y covariance, centred exactly.

    Output pixel (y, x) reads the input at (y + cy - h/2, x + cx - w/2 + alpha * (y - h/2)), with the centre of mass
    (cy, cx) and alpha = cov(x, y) / var(y) (limited to [-1, 1], a 45-degree slant) from the image's own moments:
    the slant is removed and the centre of mass lands exactly on the centre of the field. Bilinear interpolation
    keeps values within the input's range; blank images stay blank. Vectorised: all of MNIST in about half a second.
    """
    images = np.asarray(images, dtype=np.float32)
    out = np.empty_like(images)
    n, h, w = images.shape
    ys = np.arange(h, dtype=np.float32)
    pad_rows, pad_cols = h // 2 + 2, w // 2 + h // 2 + 2  # the furthest any read can reach: no clipping needed
    width = w + 2 * pad_cols
    for start in range(0, n, _CHUNK):
        batch = images[start : start + _CHUNK]  # (c, h, w)
        c = len(batch)
        cy, cx, alpha = _moments(batch)
        blank = ~(batch.reshape(c, -1) > 0).any(axis=1)
        cy[blank], cx[blank] = h / 2, w / 2
        # Bilinear interpolation is separable here: the row offset is one number per image, the column offset one
        # number per output row. First blend whole rows, then shift each row.
        row = (cy - h / 2)[:, None] + ys  # (c, h): input row each output row reads
        r0 = np.floor(row)
        fr = (row - r0)[:, :, None]
        tall = np.zeros((c, h + 2 * pad_rows, w), np.float32)
        tall[:, pad_rows : pad_rows + h] = batch
        rows = (np.arange(c)[:, None] * (h + 2 * pad_rows) + r0.astype(np.intp) + pad_rows).ravel()
        tall = tall.reshape(-1, w)
        above = tall.take(rows, axis=0).reshape(c, h, w)  # whole-row copies: fast
        below = tall.take(rows + 1, axis=0).reshape(c, h, w)
        below -= above
        below *= fr
        below += above
        wide = np.zeros((c, h, width), np.float32)
        wide[:, :, pad_cols : pad_cols + w] = below
        col = np.clip(alpha, -1, 1)[:, None] * (ys - h / 2) + (cx - w / 2)[:, None]  # (c, h): column offset
        c0 = np.floor(col)
        fc = (col - c0)[:, :, None]
        first = (np.arange(c * h, dtype=np.int32).reshape(c, h) * width + pad_cols + c0.astype(np.int32))[:, :, None]
        left = np.arange(w, dtype=np.int32) + first  # (c, h, w): flat index of the left neighbour
        flat = wide.ravel()
        result = flat.take(left)
        right = flat.take(left + 1)
        right -= result
        right *= fc
        result += right
        out[start : start + c] = result
    return out


def read_image(path: str | Path) -> np.ndarray:
    """Any image file -> greyscale float32 (H, W) in [0, 1] with the ink bright and the background 0.

    Handles PNG, JPEG, BMP, GIF, TIFF (first frame), colour or grey, transparency (over white paper), EXIF
    rotation, and either polarity: the background is taken to be the median level, and the image is inverted when
    that is light. Raises DataFormatError for files that are not images, are truncated, or are too large.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataFormatError(f"{path}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                with Image.open(path) as img:
                    img = ImageOps.exif_transpose(img)
                    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                        rgba = img.convert("RGBA")
                        paper = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                        img = Image.alpha_composite(paper, rgba)
                    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataFormatError(f"{path}: image is too large (more than {MAX_PIXELS:,} pixels)") from None
    except UnidentifiedImageError:
        raise DataFormatError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataFormatError(f"{path}: is a directory") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt image data
        raise DataFormatError(f"{path}: cannot decode the image ({exc})") from None
    if grey.size == 0:
        raise DataFormatError(f"{path}: the image has no pixels")
    background = float(np.median(grey))
    return (1 - grey) if background > 0.5 else grey


def _half_up(x: float) -> int:
    """Round half up, as JavaScript's Math.round does, so the drawing page computes the very same pixels."""
    return int(np.floor(x + 0.5))


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): how much of each output cell each input cell covers, rows summing to 1 (area averaging)."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (h, w) to (height, width) by exact area averaging: every input pixel counts by the area it covers."""
    return (_area_weights(image.shape[0], height) @ image @ _area_weights(image.shape[1], width).T).astype(np.float32)


def to_model_input(ink: np.ndarray, shape: tuple[int, int] = (28, 28)) -> np.ndarray | None:
    """A greyscale image (H, W), ink bright, -> an MNIST-style image of `shape` in [0, 1], or None if blank.

    Background subtraction and a noise floor, crop to the ink, fit into a box of 20/28 of the field keeping the
    aspect ratio (area-averaged, so anti-aliased), strokes brought to MNIST's strength, then place it so the ink's
    centre of mass is at the centre. The drawing page (app.js) implements exactly these steps.
    """
    ink = np.asarray(ink, dtype=np.float32)
    background = float(np.median(ink))
    contrast = float(ink.max()) - background
    if contrast < 0.15:  # nothing stands out from the paper
        return None
    level = np.clip((ink - background) / contrast, 0, 1)
    level = np.clip((level - 0.3) / 0.7, 0, 1)  # a noise floor: paper texture and sensor noise go to 0
    if level.sum() < 2:
        return None
    rows, cols = np.nonzero(level.any(axis=1))[0], np.nonzero(level.any(axis=0))[0]
    crop = level[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = shape
    box = max(1, _half_up(min(h, w) * 20 / 28))
    ratio = box / max(crop.shape)
    height, width = max(1, _half_up(crop.shape[0] * ratio)), max(1, _half_up(crop.shape[1] * ratio))
    resized = area_resize(crop, height, width)
    inked = resized[resized > 0]
    # Pen strokes in MNIST are saturated at their core: scale so half the inked pixels are at full strength.
    resized = np.clip(resized / max(float(np.median(inked)) if len(inked) else 1.0, 1e-6), 0, 1)
    mass = resized.sum()
    cy = (resized.sum(axis=1) @ np.arange(height)) / mass
    cx = (resized.sum(axis=0) @ np.arange(width)) / mass
    top = int(np.clip(_half_up(h / 2 - cy), 0, h - height))
    left = int(np.clip(_half_up(w / 2 - cx), 0, w - width))
    out = np.zeros(shape, dtype=np.float32)
    out[top : top + height, left : left + width] = resized
    return out


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def image_for_model(path: str | Path, image_shape, scale: float) -> np.ndarray | None:
    """An image file as the raw input a model takes (h, w), in the units its preprocessing scales (0-255 for
    MNIST), or None when no digit is found. The model then applies its own scaling and deskewing."""
    image = to_model_input(read_image(path), tuple(image_shape))
    return None if image is None else image / np.float32(scale)
