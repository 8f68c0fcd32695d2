"""The weights animation (weights.gif): the weight maps at the record points, drawn with numpy and Pillow only.

A colour lookup table and palette images make each frame a few array copies, where drawing dozens of matplotlib
figures would cost seconds; and no matplotlib import (half a second) is needed, so `train` can write the animation
while another process draws the matplotlib figures. The colours are matplotlib's RdBu, as in the other figures.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .explain import colour_limit
from .files import atomic_write

# matplotlib's RdBu (ColorBrewer's 11-class RdBu, red to blue), as 8-bit sRGB: _palette interpolates it exactly as
# matplotlib's 256-entry colormap does (test_plots checks that the two agree)
_RDBU = ((103, 0, 31), (178, 24, 43), (214, 96, 77), (244, 165, 130), (253, 219, 199), (247, 247, 247),
         (209, 229, 240), (146, 197, 222), (67, 147, 195), (33, 102, 172), (5, 48, 97))
_LUT_SIZE = 256  # matplotlib's colormap resolution
_LEVELS = 64  # palette entries for the colour scale; the 16 after them are greys for text, white to black
_GREYS = 16
_PANEL = 84  # pixels per weight map
_GAP = 8


def _palette() -> list[int]:
    """The GIF palette: _LEVELS entries of RdBu from -1 to +1, then _GREYS greys from white to black."""
    lut = np.stack([np.interp(np.linspace(0, 1, _LUT_SIZE), np.linspace(0, 1, len(_RDBU)), channel)
                    for channel in np.array(_RDBU, float).T / 255], axis=1)  # (256, 3), as matplotlib builds it
    rgb = lut[np.minimum((np.linspace(0, 1, _LEVELS) * _LUT_SIZE).astype(int), _LUT_SIZE - 1)]
    greys = np.repeat(np.linspace(1, 0, _GREYS)[:, None], 3, axis=1)
    return (np.concatenate([rgb, greys]) * 255).round().astype(np.uint8).ravel().tolist()


def _font(size: int):
    from PIL import ImageFont

    try:  # the font of the other figures, shipped with matplotlib (found without importing it)
        spec = importlib.util.find_spec("matplotlib")
        if spec is None or spec.origin is None:  # no matplotlib
            return ImageFont.load_default(size)
        folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
        return ImageFont.truetype(str(folder / "DejaVuSans.ttf"), size)
    except (OSError, AttributeError, TypeError):  # no matplotlib, or a build without its data folder
        return ImageFont.load_default(size)


def _text(canvas: np.ndarray, xy, text: str, font, anchor: str = "la") -> None:
    """Write anti-aliased text in place into a palette-index canvas (h, w) uint8, over a white background."""
    from PIL import Image, ImageDraw

    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox(xy, text, font=font, anchor=anchor)
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(canvas.shape[1], int(right) + 1), min(canvas.shape[0], int(bottom) + 1)
    if right <= left or bottom <= top:
        return
    mask = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(mask).text((xy[0] - left, xy[1] - top), text, fill=255, font=font, anchor=anchor)
    ink = np.asarray(mask)
    region = canvas[top:bottom, left:right]
    region[ink > 0] = _LEVELS + np.rint(ink[ink > 0] / 255 * (_GREYS - 1)).astype(np.uint8)


def animation_frames(steps, max_frames: int = 32) -> np.ndarray:
    """Indices of at most `max_frames` of the snapshots taken at `steps` (ascending), the first and last included.

    They are spaced evenly in the square root of the step, since the weights change most early in training.
    """
    steps = np.asarray(steps, dtype=float)
    if len(steps) <= max_frames:
        return np.arange(len(steps))
    targets = np.linspace(np.sqrt(steps[0]), np.sqrt(steps[-1]), max_frames) ** 2
    picked = np.clip(np.searchsorted(steps, targets), 0, len(steps) - 1)  # ascending, repeats adjacent
    return picked[np.r_[True, picked[1:] != picked[:-1]]]  # np.unique's result, without its numpy.ma import


def weights_animation(coefs: np.ndarray, image_shape, class_names, steps, accuracy=None, *,
                      accuracy_label: str = "validation accuracy", epochs=None, step_label: str = "step") -> list:
    """The weight maps at each snapshot (s, k, d) as Pillow palette images, one per snapshot.

    All frames share one colour scale (symmetric about zero, set by the largest weight of any frame), so a colour
    means the same weight in every frame and the maps visibly grow; each frame is captioned with its step (and
    epoch) and, when given, the accuracy (s,) at that step.
    """
    from PIL import Image

    coefs = np.asarray(coefs, dtype=np.float32)
    s, k, _ = coefs.shape
    h, w = image_shape
    scale = max(1, round(_PANEL / max(h, w)))
    ph, pw = h * scale, w * scale
    cols = min(5, k)
    rows = (k + cols - 1) // cols
    label, header, footer = 18, 30, 34
    width = cols * pw + (cols - 1) * _GAP + 2 * _GAP
    height = header + rows * (label + ph) + (rows - 1) * _GAP + footer
    limit = max(colour_limit(c) for c in coefs)  # the largest frame's: one scale for the whole animation

    small, big = _font(12), _font(14)
    template = np.full((height, width), _LEVELS, np.uint8)  # white
    origins = []
    for c in range(k):
        r, q = divmod(c, cols)
        x, y = _GAP + q * (pw + _GAP), header + r * (label + ph + _GAP)
        _text(template, (x + pw // 2, y + label - 3), str(class_names[c]), small, anchor="ms")
        origins.append((x, y + label))
    bar_y, bar_w = height - footer + 8, min(width - 2 * _GAP, 320)
    bar_x = (width - bar_w) // 2
    template[bar_y : bar_y + 8, bar_x : bar_x + bar_w] = np.linspace(0, _LEVELS - 1, bar_w).round().astype(np.uint8)
    _text(template, (bar_x - 6, bar_y + 4), f"{-limit:.3g}", small, anchor="rm")
    _text(template, (bar_x + bar_w + 6, bar_y + 4), f"+{limit:.3g}", small, anchor="lm")
    _text(template, (width // 2, bar_y + 11), "weight: red against the class, blue for it (one scale for all frames)",
          _font(10), anchor="mt")

    levels = np.rint((np.clip(coefs / limit, -1, 1) + 1) / 2 * (_LEVELS - 1)).astype(np.uint8)
    levels = levels.reshape(s, k, h, w).repeat(scale, axis=2).repeat(scale, axis=3)  # (s, k, ph, pw)
    palette = _palette()
    frames = []
    for i in range(s):
        canvas = template.copy()
        for c, (x, y) in enumerate(origins):
            canvas[y : y + ph, x : x + pw] = levels[i, c]
        caption = f"{step_label} {int(steps[i]):,}"
        if epochs is not None:
            caption += f" (epoch {float(epochs[i]):.2f})"
        if accuracy is not None:
            caption += f" · {accuracy_label} {100 * float(accuracy[i]):.1f}%"
        _text(canvas, (_GAP, header // 2), caption, big, anchor="lm")
        frame = Image.fromarray(canvas, "P")
        frame.putpalette(palette)
        frames.append(frame)
    return frames


def save_animation(frames: list, path: str | Path, *, frame_seconds: float = 0.15, hold_seconds: float = 2.0,
                   comment: str = "") -> Path:
    """Write frames as a looping GIF atomically; the last frame is held for `hold_seconds`."""
    path = Path(path)
    durations = [round(1000 * frame_seconds)] * (len(frames) - 1) + [round(1000 * hold_seconds)]
    with atomic_write(path) as out:
        frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                       optimize=False, comment=comment.encode())
    return path
