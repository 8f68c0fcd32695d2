"""Image preprocessing shared by training and prediction: deskewing, and turning a photo or scan into MNIST form.

MNIST digits were made by fitting each NIST digit into a 20x20 box (keeping its aspect ratio, anti-aliased) and
placing that box in a 28x28 field so that the centre of mass of the ink is at the centre. `to_model_input` does
the same to any greyscale image with ink brighter than the background; `read_image` gets such an image from a
file of any format, size or polarity.
"""

from __future__ import annotations

import contextlib
import struct
import warnings
from pathlib import Path

import numpy as np

from .errors import DataFormatError

MAX_PIXELS = 50_000_000  # larger images are refused before decoding (a 40000x40000 "decompression bomb" is 1.6e9)
_CHUNK = 512  # images per vectorised step: small enough to stay in cache


def _moments(images: np.ndarray):
    """Centre of mass (cy, cx), and the shear cov(x, y) / var(y) of each image in (n, h, w), as float32.

    Computed in float64, so each is the float32 nearest the exact moment whatever the BLAS and its summation order:
    the ONNX export and the drawing page, which compute them their own way, then read the very same pixels.
    """
    n, h, w = images.shape
    images = images.astype(np.float64)
    ys = np.arange(h, dtype=np.float64)
    xs = np.arange(w, dtype=np.float64)
    rows = images @ np.ones(w)  # (n, h); matrix products are faster than sums over an axis here
    cols = np.ones(h) @ images  # (n, w)
    mass = rows.sum(axis=1)
    safe = np.where(mass > 0, mass, 1)
    cy, cx = rows @ ys / safe, cols @ xs / safe
    dy, dx = ys - cy[:, None], xs - cx[:, None]  # (n, h), (n, w)
    var_y = (rows * dy**2).sum(axis=1) / safe
    cov = ((images @ dx[:, :, None])[..., 0] * dy).sum(axis=1) / safe
    alpha = np.divide(cov, var_y, out=np.zeros_like(cov), where=var_y > 1e-6)
    return cy.astype(np.float32), cx.astype(np.float32), alpha.astype(np.float32)


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


def _quiet_stderr():
    """Silence what C libraries (libtiff's warnings about unknown tags) write straight to file descriptor 2 while
    an image is decoded; Python's own errors still arrive as exceptions."""
    import contextlib
    import os
    import sys

    @contextlib.contextmanager
    def quiet():
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no real stderr (embedded, captured): nothing to silence
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)

    return quiet()


def _open_regular(path: Path):
    """The file opened for reading, or DataFormatError when it is absent, a folder, or not a regular file (a FIFO
    or a device would block or never end)."""
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataFormatError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(mode):
        raise DataFormatError(f"{path}: is a directory")
    if not stat.S_ISREG(mode):
        raise DataFormatError(f"{path}: not a regular file (images are read only from ordinary files)")
    try:
        handle = open(path, "rb")  # noqa: SIM115 (returned; the caller closes it with `with`)
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced between the two looks
            handle.close()
            raise DataFormatError(f"{path}: not a regular file (images are read only from ordinary files)")
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if os.fstat(handle.fileno()).st_size == 0:
        handle.close()
        raise DataFormatError(f"{path}: the file is empty")
    return handle


def _wide_grey(img) -> np.ndarray:
    """A 16-bit, 32-bit integer or floating-point greyscale image as float32 (H, W) in [0, 1], scaled, not clipped:
    integer images by the largest value their bit depth holds, floating-point ones by their own range."""
    values = np.asarray(img, dtype=np.float32)
    if img.mode == "F":
        finite = values[np.isfinite(values)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if lo >= 0 and hi <= 1:
            lo, hi = 0.0, 1.0
        values = np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo)
        return np.clip((values - lo) / max(hi - lo, 1e-30), 0, 1).astype(np.float32)
    top = float(values.max()) if values.size else 1.0
    lo = min(0.0, float(values.min())) if values.size else 0.0
    depth = 255.0 if top <= 255 and img.mode != "I;16" and not img.mode.startswith("I;16") else 65535.0
    if top > 65535:
        depth = top
    return np.clip((values - lo) / (depth - lo), 0, 1).astype(np.float32)


_EXIF_FORMATS = {"JPEG", "MPO", "TIFF", "WEBP"}  # formats whose orientation tag is not in info["exif"]


def load_pixels(path: str | Path, photo: bool | None = None):
    """Decode an image file -> (pixels, is_photo). `pixels` is greyscale float32 (H, W) in [0, 1] for drawings
    and clean images (Pillow's own greyscale, so the drawing page can compute the very same numbers), and for photos
    and scans (photo.looks_like_photo, or `photo` forced) RGB float32 (h, w, 3) brought down to at most
    photo.WORK_SIZE pixels on its longer side (big JPEGs decoded at a reduced scale, which is fast).

    Transparency is laid over white paper, EXIF rotation applied, 16-bit and floating-point images scaled to [0, 1]
    rather than clipped, the first frame of an animation or multi-page TIFF taken. Raises DataFormatError for what
    is not an ordinary, readable image file of at most MAX_PIXELS pixels.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    from . import photo as photos

    path = Path(path)
    handle = _open_regular(path)

    def decode(draft: bool):
        handle.seek(0)
        with Image.open(handle) as img:
            size = img.size
            if draft and img.format == "JPEG" and max(size) > photos.WORK_SIZE:
                # JPEG decodes at 1/2, 1/4 or 1/8 scale for a fraction of the time: ask for at least 3/4 of the
                # working size, so a photo lands between 480 and 640 px after the box filter below.
                factor = max(size) / (0.75 * photos.WORK_SIZE)
                img.draft(img.mode, (int(size[0] / factor) + 1, int(size[1] / factor) + 1))
            drafted = img.size != size
            img.load()  # a PNG's chunks after the image data (an eXIf among them) are read with it
            if img.format in _EXIF_FORMATS or "exif" in img.info:  # ImageOps.exif_transpose costs 45 us otherwise
                with contextlib.suppress(SyntaxError, ValueError, OSError, struct.error):  # unreadable EXIF: as stored
                    img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                return _wide_grey(img), None, drafted
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGB")
            img.load()
            return None, img, drafted

    try:
        with handle, warnings.catch_warnings(), _quiet_stderr():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                wide, img, drafted = decode(draft=photo is not False)
                if wide is not None:
                    grey8 = np.round(wide * 255).astype(np.uint8)
                    is_photo = photos.looks_like_photo(grey8) if photo is None else photo
                    return (photos.shrink(wide) if is_photo else wide), is_photo
                grey8 = np.asarray(img.convert("L"))
                is_photo = photos.looks_like_photo(grey8) if photo is None else photo
                if is_photo:
                    rgb = img.convert("RGB")
                    if max(rgb.size) > photos.WORK_SIZE:  # area-averaged down to the working size
                        ratio = photos.WORK_SIZE / max(rgb.size)
                        rgb = rgb.resize((max(1, round(rgb.width * ratio)), max(1, round(rgb.height * ratio))),
                                         Image.Resampling.BOX)
                    return np.asarray(rgb, dtype=np.float32) / 255, True
                if drafted:  # a clean image: at full size, as ever
                    grey8 = np.asarray(decode(draft=False)[1].convert("L"))
                return grey8.astype(np.float32) / 255, False
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataFormatError(f"{path}: image is too large (more than {MAX_PIXELS:,} pixels)") from None
    except UnidentifiedImageError:
        raise DataFormatError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt image data
        raise DataFormatError(f"{path}: cannot decode the image ({exc})") from None


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB float32 (h, w, 3) in 0-255 (transparency over white, at most photo.WORK_SIZE pixels on
    the longer side): for conventions that need the colours, such as Fashion-MNIST's."""
    pixels, _ = load_pixels(path, photo=True)
    if pixels.size == 0:
        raise DataFormatError(f"{Path(path)}: the image has no pixels")
    return 255 * (np.repeat(pixels[:, :, None], 3, axis=2) if pixels.ndim == 2 else pixels)


def read_image(path: str | Path) -> np.ndarray:
    """Any image file -> greyscale float32 (H, W) in [0, 1] with the ink bright and the background 0.

    Drawings and clean images (PNG, JPEG, BMP, GIF, TIFF, WebP; grey or colour; either polarity) come back as
    today's MNIST pipeline expects them: Pillow's greyscale, inverted when the median level is light. Photos and
    scans of handwriting (photo.looks_like_photo) come back cleaned by photo.clean: ink found by colour and
    darkness, shadows, paper colour, rulings and specks removed, at most photo.WORK_SIZE pixels on the longer side.
    Either way the result is the whole page's ink, ready for to_model_input (one digit) or for splitting into
    digits. Raises DataFormatError for files that are not images, are truncated, too large, or not regular files.
    """
    pixels, is_photo = load_pixels(path)
    if pixels.size == 0:
        raise DataFormatError(f"{Path(path)}: the image has no pixels")
    if is_photo:
        from .photo import clean

        return clean(pixels)
    background = float(np.median(pixels))
    return (1 - pixels) if background > 0.5 else pixels


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


def _area_shrink(image: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    """Area-average `image` (float64) down to n_out cells along `axis` (n_out <= the length there) without a
    weight matrix: the whole cells of each output cell summed in one pass, its two part-covered end cells added
    by the part they cover. Memory is the output's, whatever the input's size (a 1 x 30,000,000 image is fine)."""
    n_in = image.shape[axis]
    o = np.arange(n_out, dtype=np.int64)
    start = -(-o * n_in // n_out)  # first whole cell: ceil(o n_in / n_out)
    end = (o + 1) * n_in // n_out  # the cell where the output cell ends (part-covered unless exact)
    sums = np.add.reduceat(image, start, axis=axis, dtype=np.float64)  # cells start[o] .. start[o + 1] - 1
    shape = [1] * image.ndim
    shape[axis] = n_out
    head = ((start * n_out - o * n_in) / n_out).reshape(shape)  # part of cell start - 1 inside, from the left
    tail = (((o + 1) * n_in - end * n_out) / n_out).reshape(shape)  # part of cell `end` inside
    left = np.take(image, np.maximum(start - 1, 0), axis=axis)
    right = np.take(image, np.minimum(end, n_in - 1), axis=axis)
    # start[o + 1] - 1 is `end` when the output cell ends inside a cell: that cell was summed whole.
    sums = sums + head * left - np.where(tail > 0, 1 - tail, 0) * right
    return sums / (n_in / n_out)


def _resize_axis(image: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    n_in = image.shape[axis]
    if n_in == n_out:
        return image
    if n_in > n_out:
        return _area_shrink(image, n_out, axis)
    return np.moveaxis(np.tensordot(_area_weights(n_in, n_out), image, axes=([1], [axis])), 0, axis)


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (h, w) to (height, width) by exact area averaging: every input pixel counts by the area it covers.
    The axis that shrinks most goes first, so memory stays near the input's size for any shape (a 1 x 30,000,000
    strip included); sums are in float64."""
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
    if image.shape[1] / width > image.shape[0] / height:
        return _resize_axis(_resize_axis(image, width, 1), height, 0).astype(np.float32)
    return _resize_axis(_resize_axis(image, height, 0), width, 1).astype(np.float32)


def _ink_level(ink: np.ndarray) -> np.ndarray | None:
    """Ink (H, W), bright -> its level in [0, 1] with the background (the median) at 0 and a noise floor at 30% of
    the contrast, or None when nothing stands out. The first step of every convention below."""
    ink = np.asarray(ink, dtype=np.float32)
    background = float(np.median(ink))
    contrast = float(ink.max()) - background
    if contrast < 0.15:  # nothing stands out from the paper
        return None
    level = np.clip((ink - background) / contrast, 0, 1)
    level = np.clip((level - 0.3) / 0.7, 0, 1)  # a noise floor: paper texture and sensor noise go to 0
    if level.sum() < 2:
        return None
    return level


def _crop(level: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(level.any(axis=1))[0], np.nonzero(level.any(axis=0))[0]
    return level[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def to_model_input(ink: np.ndarray, shape: tuple[int, int] = (28, 28)) -> np.ndarray | None:
    """A greyscale image (H, W), ink bright, -> an MNIST-style image of `shape` in [0, 1], or None if blank.

    Background subtraction and a noise floor, crop to the ink, fit into a box of 20/28 of the field keeping the
    aspect ratio (area-averaged, so anti-aliased), strokes brought to MNIST's strength, then place it so the ink's
    centre of mass is at the centre. The drawing page (app.js) implements exactly these steps. For one digit cut
    from a photo, use photo_digit_input, which first evens out the strokes.
    """
    level = _ink_level(ink)
    if level is None:
        return None
    crop = _crop(level)
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


def to_digits_input(ink: np.ndarray, shape: tuple[int, int] = (8, 8)) -> np.ndarray | None:
    """A greyscale image (H, W), ink bright, -> an image made as scikit-learn's 8x8 digits were, in [0, 1]
    (counts / 16), or None if blank.

    Those digits (UCI optdigits) are 32x32 bitmaps with the digit filling the frame, counted in 4x4 blocks: so the
    ink is cropped, scaled to fill 4 * shape keeping its aspect ratio (area-averaged), centred, made a bitmap (on
    where the ink is at least half its typical strength), and each 4x4 block's "on" pixels counted. The drawing
    page (app.js, toDigitsInput) does exactly the same.
    """
    level = _ink_level(ink)
    if level is None:
        return None
    crop = _crop(level)
    h, w = 4 * shape[0], 4 * shape[1]
    ratio = min(h, w) / max(crop.shape)
    height, width = max(1, _half_up(crop.shape[0] * ratio)), max(1, _half_up(crop.shape[1] * ratio))
    resized = area_resize(crop, height, width)
    inked = resized[resized > 0]
    strength = max(float(np.median(inked)) if len(inked) else 1.0, 1e-6)
    bitmap = np.zeros((h, w), dtype=np.float32)
    top, left = (h - height) // 2, (w - width) // 2
    bitmap[top : top + height, left : left + width] = resized >= 0.5 * strength
    return bitmap.reshape(shape[0], 4, shape[1], 4).sum(axis=(1, 3)) / 16


def fashion_input(rgb: np.ndarray, shape: tuple[int, int] = (28, 28)) -> np.ndarray | None:
    """A product photo (H, W, 3), values 0-255, on a plain background -> an image made as Fashion-MNIST's were, in
    [0, 1] with the article bright, or None when there is nothing but background.

    Fashion-MNIST's paper (Xiao, Rasul, Vollgraf 2017) lists the steps: trim the edges close to the corner pixel's
    colour (within 5% of the largest distance in RGB space), resize the longest edge to 28 by subsampling rows and
    columns, sharpen (Gaussian, radius and sigma 1), extend the shortest edge to 28 with the article centred,
    negate, greyscale. The drawing page (app.js, toFashionInput) does the same.
    """
    rgb = np.asarray(rgb, dtype=np.float64)
    corner = rgb[0, 0]
    far = np.sqrt(((rgb - corner) ** 2).sum(axis=2)) > 0.05 * 255 * np.sqrt(3)
    if not far.any():
        return None
    rows, cols = np.nonzero(far.any(axis=1))[0], np.nonzero(far.any(axis=0))[0]
    crop = rgb[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = shape
    ratio = min(h, w) / max(crop.shape[:2])
    height = min(h, max(1, _half_up(crop.shape[0] * ratio)))
    width = min(w, max(1, _half_up(crop.shape[1] * ratio)))
    picked_rows = np.floor((np.arange(height) + 0.5) * crop.shape[0] / height).astype(np.intp)
    picked_cols = np.floor((np.arange(width) + 0.5) * crop.shape[1] / width).astype(np.intp)
    small = crop[picked_rows][:, picked_cols]  # (height, width, 3): subsampled
    kernel = np.exp(-0.5 * np.arange(-1, 2) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(small, ((1, 1), (1, 1), (0, 0)), mode="edge")
    blur = sum(kernel[i] * padded[i : i + height] for i in range(3))
    blur = sum(kernel[j] * blur[:, j : j + width] for j in range(3))
    sharp = np.clip(2 * small - blur, 0, 255)  # unsharp masking: the difference from the blur added back
    canvas = np.empty((h, w, 3))
    canvas[:] = corner
    top, left = (h - height) // 2, (w - width) // 2
    canvas[top : top + height, left : left + width] = sharp
    grey = canvas @ np.array([0.299, 0.587, 0.114])
    return np.clip((255 - grey) / 255, 0, 1).astype(np.float32)


CONVENTIONS = ("mnist", "digits", "fashion")


def convention_of(model) -> str:
    """How images are made into this model's inputs: "mnist" (fit 20x20, centre of mass in 28x28), "digits"
    (scikit-learn's 8x8 digits: 32x32 bitmap counted in 4x4 blocks) or "fashion" (Fashion-MNIST's product-photo
    steps). Read from the model's metadata ("convention" in its preprocessing) when present, else from the name of
    the dataset it was trained on, else "mnist", so that older model files keep working."""
    meta = getattr(model, "metadata", {}) or {}
    stored = (meta.get("preprocessing") or {}).get("convention") or meta.get("convention")
    if stored in CONVENTIONS:
        return stored
    name = (meta.get("dataset") or {}).get("name", "")
    return {"digits": "digits", "fashion-mnist": "fashion"}.get(name, "mnist")


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def photo_digit_input(ink: np.ndarray, shape: tuple[int, int] = (28, 28), convention: str = "mnist"):
    """One digit's ink (H, W) cut from a cleaned photo (photo.clean) -> the model's input in [0, 1], or None if
    blank: its strokes redrawn at the convention's width (photo.normalise_strokes), then to_model_input (or
    to_digits_input). For a whole photo of one digit, image_for_model also picks the digit among the marks."""
    from .photo import DIGITS_STROKE_WIDTH, STROKE_WIDTH, normalise_strokes

    if convention == "digits":
        return to_digits_input(normalise_strokes(ink, DIGITS_STROKE_WIDTH), (shape[0], shape[1]))
    return to_model_input(normalise_strokes(ink, STROKE_WIDTH), (shape[0], shape[1]))


def image_for_model(path: str | Path, image_shape, scale: float, convention: str = "mnist") -> np.ndarray | None:
    """An image file as the raw input a model takes (h, w), in the units its preprocessing scales (0-255 for
    MNIST), or None when no digit is found. The model then applies its own scaling and deskewing.

    `convention` (see convention_of) says how the model's training images were made. An image already of the
    model's shape, on a dark background, goes in as it is (an MNIST digit saved as a PNG gives the same answer as
    the array). Photos and scans are cleaned first (photo.clean), the digit picked among the marks
    (photo.isolate_digit) and its strokes evened out; drawings and clean images go straight to the pipeline."""
    shape = tuple(image_shape)
    if convention == "fashion":
        image = fashion_input(load_rgb(path), shape)
    else:
        pixels, is_photo = load_pixels(path)
        if pixels.size == 0:
            raise DataFormatError(f"{Path(path)}: the image has no pixels")
        if is_photo:
            from .photo import clean, isolate_digit

            image = photo_digit_input(isolate_digit(clean(pixels)), shape, convention)
        else:
            ink = (1 - pixels) if float(np.median(pixels)) > 0.5 else pixels
            if ink.shape == shape and float(np.median(ink)) < 0.1:
                image = ink  # already in the model's form
            elif convention == "digits":
                image = to_digits_input(ink, shape)
            else:
                image = to_model_input(ink, shape)
    return None if image is None else image / np.float32(scale)
