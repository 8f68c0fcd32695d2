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

CHOOSE_RUN = 4  # a digit is made of at most this many units (segment.line_units) ...
CHOOSE_WIDTH = 1.3  # ... together at most this many digit heights wide
CHOOSE_HEIGHT = 0.45  # a digit is at least this share of the line's digit height tall
CHOOSE_TALL = 0.8  # digits are about as tall as the line's digits (the 75th percentile); this share is usual
CHOOSE_SHORT = 2.0  # cost per digit height a digit falls short of that
CHOOSE_GAP = 3.0  # cost per digit height of blank columns between the units joined into one digit
CHOOSE_DIGIT = 0.3  # cost of each digit read (against reading one piece of a digit as a digit of its own)
CHOOSE_SKIP = 4.0  # cost of leaving out a unit as much ink as a typical digit (less for specks, in proportion)
CHOOSE_DOUBT = 0.5  # cost of a digit the model is unsure of, times one less its largest probability
CHOOSE_CAP = 3.0  # refusal ratios above this count as this: all equally unlike a digit
TURNS = (-10.0, 10.0)  # read also turned by these degrees (photos only) and average (_turned)
MAX_TILT = 12.0  # ... and turned level with the line of writing, up to this many degrees (_tilt)
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


def _median(values: np.ndarray) -> float:
    """The median of all the values, as np.median gives it, by one partition: np.median's generic machinery cost
    predict as much per file as decoding a small PNG."""
    flat = values.ravel()
    half = flat.size // 2
    if flat.size % 2:
        return float(np.partition(flat, half)[half])
    low, high = np.partition(flat, (half - 1, half))[half - 1 : half + 1]
    return float((low + high) / 2)


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
        ink = (1 - pixels) if _median(pixels) > 0.5 else pixels
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
    image: np.ndarray | None = None  # the model input in [0, 1] while its novelty is still to be scored


def one_digit(model, path, *, judge: bool = True) -> OneDigit:
    """Prepare one image for `predict`, refusing what is not one digit: blank or nearly blank, several digits (or
    marks as big as digits) side by side, or a shape unlike every class's training images (refuse.py). With
    judge=False the last test is left to `judge_novelty`, which scores many images at once."""
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
        if not ink.is_photo and ink.ink.shape == shape and _median(ink.ink) < 0.1:
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
    image = np.asarray(image, np.float32)
    found = OneDigit(image / scale, image=image)
    return judge_novelty(model, [found])[0] if judge else found


def judge_novelty(model, found: list[OneDigit]) -> list[OneDigit]:
    """Score the images of `found` that are still to be judged, all in one batch (refuse.score is vectorised), and
    refuse those unlike every class; returns `found`. Models without refusal statistics refuse nothing."""
    todo = [f for f in found if f.image is not None and f.refusal is None]
    if getattr(model, "novelty", None) is None or not todo:
        return found
    from .refuse import score
    from .threads import blas_threads

    with blas_threads(1):  # small products: on a busy machine a second BLAS thread made a batch 8x slower
        images = np.stack([f.image for f in todo if f.image is not None])  # all of todo
        ratios = score(model.novelty, images) / max(model.novelty.threshold, 1e-12)
    for f, ratio in zip(todo, ratios.tolist()):
        f.novelty, f.image = ratio, None
        if ratio > 1:
            f.refusal, f.reason = "unlike", REASONS["unlike"].format(thing=_thing(model))
    return found


def _choose(model, units, height, shape, convention, is_photo):
    """The digits among a line's units (segment.line_units), chosen as a whole: each run of up to CHOOSE_RUN
    neighbouring units may be one digit, and each unit may be left out as a stray mark. The choice costs least
    where each digit looks most like a digit the model knows (its refusal score, refuse.py), is as tall as the
    line's digits, and the ink left out is small; found by dynamic programming over the units left to right."""
    from .refuse import score
    from .segment import merge_digits

    m = len(units)
    if not m:
        return []
    masses = np.array([float(u.ink.sum()) for u in units])
    full = [u.box[2] - u.box[0] >= 0.6 * height for u in units]
    typical = float(np.median(masses[full])) if any(full) else float(masses.max())
    runs, images = [], []
    for i in range(m):
        merged, gaps = units[i], 0.0
        for j in range(i + 1, min(m, i + CHOOSE_RUN) + 1):
            if j > i + 1:
                gaps += max(0, units[j - 1].box[1] - merged.box[3])
                merged = merge_digits(merged, units[j - 1])
            top, left, bottom, right = merged.box
            if units[i].group != units[j - 1].group and right - left > CHOOSE_WIDTH * height:
                break
            if bottom - top < CHOOSE_HEIGHT * height:
                continue
            image = model_input(merged.ink, shape, convention, is_photo)
            if image is not None:
                runs.append((i, j, merged, bottom - top, gaps))
                images.append(np.asarray(image, np.float32))
    if not runs:
        return []
    images = np.stack(images)
    ratios = score(model.novelty, images) / max(model.novelty.threshold, 1e-12)
    doubt = 1 - model.predict_proba(images / np.float32(model.preprocessing.scale)).max(axis=1)
    ending: dict[int, list] = {}
    for (i, j, merged, tall, gaps), ratio, unsure in zip(runs, ratios.tolist(), doubt.tolist()):
        cost = (min(ratio, CHOOSE_CAP) + CHOOSE_DOUBT * unsure + CHOOSE_SHORT * max(0.0, CHOOSE_TALL - tall / height)
                + CHOOSE_GAP * gaps / height + CHOOSE_DIGIT)
        ending.setdefault(j, []).append((i, cost, merged))
    best = [0.0] + [np.inf] * m
    back: list = [None] * (m + 1)
    for j in range(1, m + 1):
        best[j], back[j] = best[j - 1] + CHOOSE_SKIP * masses[j - 1] / max(typical, 1e-9), (j - 1, None)
        for i, cost, merged in ending.get(j, []):
            if best[i] + cost < best[j]:
                best[j], back[j] = best[i] + cost, (i, merged)
    out, j = [], m
    while j > 0:
        i, merged = back[j]
        if merged is not None:
            out.append(merged)
        j = i
    return out[::-1]


def _tilt(found) -> float:
    """The angle (degrees, as scipy.ndimage.rotate takes it) that brings the line of writing level, from a line
    fitted through the digits' centres; 0 for fewer than 3 digits (two centres say too little), at most MAX_TILT."""
    if len(found) < 3:
        return 0.0
    cy = np.array([(d.box[0] + d.box[2]) / 2 for d in found], np.float64)
    cx = np.array([(d.box[1] + d.box[3]) / 2 for d in found], np.float64)
    if np.ptp(cx) <= 0:
        return 0.0
    slope = np.polyfit(cx, cy, 1)[0]
    return float(np.clip(np.degrees(np.arctan(slope)), -MAX_TILT, MAX_TILT))


def _turned(model, kept, inputs, proba, shape, convention, tilt: float = 0.0) -> np.ndarray:
    """Probabilities averaged over each digit as cut from the photo, turned by each of TURNS degrees, and turned
    by `tilt` (the line of writing brought level, _tilt): a photo is taken a few degrees off the writing's line,
    and a linear model's borderline answers change with that; the average is steadier than any one angle
    (bench_read: about 2-5 points more numbers read exactly)."""
    from scipy import ndimage

    scale = np.float32(model.preprocessing.scale)
    angles = [*TURNS, *([tilt] if tilt else [])]
    total = proba.astype(np.float64)
    for angle in angles:
        turned = []
        for d, image in zip(kept, inputs):
            made = model_input(ndimage.rotate(d.ink, angle, order=1, reshape=True), shape, convention, True)
            turned.append(image if made is None else np.asarray(made, np.float32))
        total += model.predict_proba(np.stack(turned) / scale)
    return (total / (1 + len(angles))).astype(proba.dtype)


@dataclass
class ReadDigit:
    box: tuple[int, int, int, int]  # top, left, bottom, right in the original image's pixels (bottom, right exclusive)
    raw: np.ndarray  # the model's raw input (h, w)
    probabilities: np.ndarray  # (k,) calibrated
    index: int  # the predicted class index
    novelty: float | None


def read_number(model, path) -> tuple[Ink, list[ReadDigit]]:
    """The digits written on a line in the image at `path`, left to right, each classified (calibrated)."""
    from .preprocess import convention_of
    from .segment import find_digits, line_units

    shape = tuple(model.preprocessing.image_shape)
    scale = np.float32(model.preprocessing.scale)
    convention = convention_of(model)
    ink = load_ink(path)
    if getattr(model, "novelty", None) is not None:
        units, height = line_units(ink.ink)
        units = [u for u in units if u.box[2] - u.box[0] >= MIN_HEIGHT * min(ink.ink.shape)]
        found = _choose(model, units, height, shape, convention, ink.is_photo)
    else:  # older model files, without refusal statistics: the strokes alone decide
        found = [d for d in find_digits(ink.ink) if d.box[2] - d.box[0] >= MIN_HEIGHT * min(ink.ink.shape)]
    inputs, kept = [], []
    for d in found:
        image = model_input(d.ink, shape, convention, ink.is_photo)
        if image is not None:
            inputs.append(np.asarray(image, np.float32))
            kept.append(d)
    if not kept:
        return ink, []
    raws = np.stack(inputs) / scale
    proba = model.predict_proba(raws)
    if ink.is_photo and TURNS:
        proba = _turned(model, kept, inputs, proba, shape, convention, _tilt(kept))
    sy, sx = ink.scale
    out = []
    for d, raw, p, image in zip(kept, raws, proba, inputs):
        t, lft, b, r = d.box
        box = (int(np.floor(t * sy)), int(np.floor(lft * sx)), int(np.ceil(b * sy)), int(np.ceil(r * sx)))
        out.append(ReadDigit(box, raw, p, int(np.argmax(p)), novelty_ratio(model, image)))
    return ink, out
