"""People's images through the model, with the judgement `predict` and `read` need: is this one digit, and which.

`one_digit` prepares an image for `predict` and says why it should not be answered (blank, several digits side by
side, or unlike any digit the model knows); `read_number` finds the digits of a written number and classifies each.
Both use the same cleanup as preprocess.image_for_model (photo.clean for photos and scans, the MNIST pipeline for
drawings) and report boxes in the original image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

JOIN_GAP = 0.2  # neighbours this close (share of the digit height) ...
JOIN_WIDTH = 1.0  # ... and together no wider than this may be one broken digit
MIN_HEIGHT = 0.03  # a digit is at least this share of the image's shorter side tall; less is a speck on blank paper

REASONS = {
    "blank": "no digit found: the image is blank or nearly blank",
    "several": "{n} digits or marks side by side, not one digit (read a number with 'mnist-softmax read')",
    "unlike": "does not look like any {thing} the model knows (a letter, a symbol or a scribble?)",
}


@dataclass
class Ink:
    """An image's ink (h, w), ink bright, background 0, and how its pixels map to the original image's."""

    ink: np.ndarray
    is_photo: bool
    scale: tuple[float, float]  # original pixels per ink pixel, (rows, columns)


def _original_size(path: Path) -> tuple[int, int] | None:
    """(height, width) of the image as displayed (EXIF rotation applied), from its header alone."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            w, h = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
                w, h = h, w
            return h, w
    except Exception:  # the decoder already accepted the file; without a header size, keep the ink's pixels
        return None


def load_ink(path: str | Path) -> Ink:
    """An image file as ink: photos and scans cleaned (photo.clean, at most photo.WORK_SIZE pixels), drawings and
    clean images as the MNIST pipeline takes them (inverted when the paper is light). Raises DataFormatError."""
    from .errors import DataFormatError
    from .preprocess import load_pixels

    pixels, is_photo = load_pixels(path)
    if pixels.size == 0:
        raise DataFormatError(f"{Path(path)}: the image has no pixels")
    if is_photo:
        from .photo import clean

        ink = clean(pixels)
    else:
        ink = (1 - pixels) if float(np.median(pixels)) > 0.5 else pixels
    size = _original_size(Path(path)) if is_photo else None
    scale = (size[0] / ink.shape[0], size[1] / ink.shape[1]) if size else (1.0, 1.0)
    return Ink(np.asarray(ink, np.float32), bool(is_photo), scale)


def model_input(piece: np.ndarray, shape, convention: str, is_photo: bool, pad: bool = True) -> np.ndarray | None:
    """One digit's ink -> the model's input in [0, 1] (None if blank), as preprocess.image_for_model makes it.
    With `pad`, for a digit cut from a line (background exactly 0): a margin of paper around it first, since the
    pipelines take the median as the background and a digit's tight box can be all ink."""
    from .preprocess import photo_digit_input, to_digits_input, to_model_input

    if pad:
        piece = np.pad(np.asarray(piece, np.float32), max(2, max(piece.shape) // 4))
    if is_photo:
        return photo_digit_input(piece, tuple(shape), convention)
    if convention == "digits":
        return to_digits_input(piece, tuple(shape))
    return to_model_input(piece, tuple(shape))


def novelty_ratio(model, image: np.ndarray) -> float | None:
    """The refusal score of one model input (h, w) in [0, 1] over the model's threshold (above 1: refused), or None
    for a model file without refusal statistics (trained before they existed)."""
    if getattr(model, "novelty", None) is None:
        return None
    from .refuse import score

    return float(score(model.novelty, image[None])[0] / max(model.novelty.threshold, 1e-12))


def _thing(model) -> str:
    from .preprocess import convention_of

    return "article" if convention_of(model) == "fashion" else "digit"


@dataclass
class OneDigit:
    """What predict needs: the model's raw input (None when refused before the model), why it is refused, if it is,
    and the novelty ratio (score / threshold)."""

    raw: np.ndarray | None
    refusal: str | None = None
    reason: str | None = None
    novelty: float | None = None
    extra: dict = field(default_factory=dict)


def one_digit(model, path) -> OneDigit:
    """Prepare one image for `predict`, refusing what is not one digit: blank or nearly blank, several digits (or
    marks as big as digits) side by side, or a shape unlike every class's training images (refuse.py)."""
    from .preprocess import convention_of, image_for_model
    from .segment import find_digits

    shape = tuple(model.preprocessing.image_shape)
    scale = np.float32(model.preprocessing.scale)
    convention = convention_of(model)
    thing = _thing(model)
    if convention == "fashion":
        raw = image_for_model(path, shape, float(scale), convention)
        if raw is None:
            return OneDigit(None, "blank", REASONS["blank"].replace("digit", thing))
        image = raw * scale
    else:
        ink = load_ink(path)
        if not ink.is_photo and ink.ink.shape == shape and float(np.median(ink.ink)) < 0.1:
            image = ink.ink  # already in the model's form (an MNIST image saved as a file)
        else:
            pieces = [d for d in find_digits(ink.ink, split=False)
                      if d.box[2] - d.box[0] >= MIN_HEIGHT * min(ink.ink.shape)]
            if not pieces:
                return OneDigit(None, "blank", REASONS["blank"])
            tall = max(d.box[2] - d.box[0] for d in pieces)
            heavy = max(float(d.ink.sum()) for d in pieces)
            big = [d for d in pieces if d.box[2] - d.box[0] >= 0.5 * tall and d.ink.sum() >= 0.15 * heavy]
            if len(big) >= 2:
                return OneDigit(None, "several", REASONS["several"].format(n=len(big)), extra={"pieces": len(big)})
            if ink.is_photo:
                from .photo import isolate_digit

                image = model_input(isolate_digit(ink.ink), shape, convention, True, pad=False)
            else:
                image = model_input(ink.ink, shape, convention, False, pad=False)
        if image is None:
            return OneDigit(None, "blank", REASONS["blank"])
    ratio = novelty_ratio(model, np.asarray(image, np.float32))
    raw = np.asarray(image, np.float32) / scale
    if ratio is not None and ratio > 1:
        return OneDigit(raw, "unlike", REASONS["unlike"].format(thing=thing), ratio)
    return OneDigit(raw, novelty=ratio)


def _settle(model, digits, shape, convention, is_photo):
    """Where the strokes alone cannot tell, let the shapes decide: a group much wider than a digit is cut into
    touching digits, and neighbours that touch are joined into one broken digit, when the result looks more like
    digits (a lower refusal score, refuse.py) than what it replaces. Without refusal statistics (older model
    files) wide groups are cut by width and neighbours left apart."""
    from .segment import line_height_of, merge_digits, pieces_in, split_digit

    height = line_height_of(digits)
    has_novelty = getattr(model, "novelty", None) is not None

    def strangeness(d) -> float:
        image = model_input(d.ink, shape, convention, is_photo)
        ratio = None if image is None else novelty_ratio(model, np.asarray(image, np.float32))
        return float("inf") if ratio is None else ratio

    out = []
    for d in digits:
        n = pieces_in(d, height)
        if n < 2:
            out.append(d)
            continue
        parts = split_digit(d, n)
        if not has_novelty or max(map(strangeness, parts)) < strangeness(d):
            out.extend(parts)
        else:
            out.append(d)
    if not has_novelty:
        return out
    i = 0
    while i + 1 < len(out):
        a, b = out[i], out[i + 1]
        gap = b.box[1] - a.box[3]
        width = max(a.box[3], b.box[3]) - min(a.box[1], b.box[1])
        if gap <= JOIN_GAP * height and width <= JOIN_WIDTH * height:
            joined = merge_digits(a, b)
            score = strangeness(joined)
            if score < 1 and score < max(strangeness(a), strangeness(b)):
                out[i : i + 2] = [joined]
                continue
        i += 1
    return out


@dataclass
class ReadDigit:
    box: tuple[int, int, int, int]  # top, left, bottom, right in the original image's pixels (bottom, right exclusive)
    raw: np.ndarray  # the model's raw input (h, w)
    probabilities: np.ndarray  # (k,) calibrated
    index: int  # the predicted class index
    novelty: float | None


def read_number(model, path) -> tuple[Ink, list[ReadDigit]]:
    """The digits written on a line in the image at `path`, left to right, each classified (calibrated)."""
    from .model import softmax
    from .preprocess import convention_of
    from .segment import find_digits

    shape = tuple(model.preprocessing.image_shape)
    scale = np.float32(model.preprocessing.scale)
    convention = convention_of(model)
    ink = load_ink(path)
    found = [d for d in find_digits(ink.ink, split=False) if d.box[2] - d.box[0] >= MIN_HEIGHT * min(ink.ink.shape)]
    found = _settle(model, found, shape, convention, ink.is_photo)
    inputs, kept = [], []
    for d in found:
        image = model_input(d.ink, shape, convention, ink.is_photo)
        if image is not None:
            inputs.append(np.asarray(image, np.float32))
            kept.append(d)
    if not kept:
        return ink, []
    raws = np.stack(inputs) / scale
    proba = softmax(model.logits(raws) / np.float32(model.temperature))
    sy, sx = ink.scale
    out = []
    for d, raw, p, image in zip(kept, raws, proba, inputs):
        t, lft, b, r = d.box
        box = (int(np.floor(t * sy)), int(np.floor(lft * sx)), int(np.ceil(b * sy)), int(np.ceil(r * sx)))
        out.append(ReadDigit(box, raw, p, int(np.argmax(p)), novelty_ratio(model, image)))
    return ink, out
