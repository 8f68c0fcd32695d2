"""Finding the digits of a written number: ink grouped into digits, left to right.

The ink of a line (ink bright, background 0, as preprocess.read_image returns it) is cut into connected strokes.
Specks and marks much smaller than the line's digits are dropped, and so are marks off the line. Strokes that lie
mostly above one another belong to one digit (a 5's separate bar, a 7 written with a gap, a 4 in two strokes);
strokes side by side are separate digits. A group much wider than a digit is tall is two or more digits touching:
it is cut where its vertical projection (the ink in each column) is thinnest, near where even spacing would cut.

`find_digits` decides by these rules alone (predict's count of digits, and `read` with models that have no refusal
statistics). `line_units` stops short of deciding: it gives the units (stroke groups, wide ones cut at every
candidate column) from which reading.py chooses the digits with the model's help.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPECK = 0.04  # strokes with less ink than this share of the largest are specks or dirt (unless on a digit)
LIGHT = 0.15  # a group with less ink than this share of the typical digit's is loose fragments, not a digit
FRAGMENT = 0.003  # ... but down to this share they are kept as a broken stroke's fragments if they lie on the line
SHORT = 0.35  # marks less tall than this share of the line's digit height are not digits (unless part of one)
OVERLAP = 0.3  # strokes overlapping horizontally by this share of the narrower are one digit
PIECE = 0.6  # a group less tall than this share of the digit height is part of a digit if one is near
REACH = 0.15  # ... within this share of the digit height
TOUCH = 0.05  # neighbours closer than this share of the digit height ...
NARROW = 0.75  # ... and together narrower than this share of it are one broken digit
LINE = 1.8  # thin strokes longer than this times the tallest compact stroke are lines (rulings, edges), not digits
WIDE = 1.15  # a group wider than this times the digit height holds more than one digit
DIGIT_WIDTH = 0.7  # a typical digit's width / height, for guessing how many digits a wide group holds
BORDER = 0.03  # thin marks this close to the image's side (share of its shorter side) are the sheet's edge
SPECK_HEIGHT = 0.12  # marks less tall than this share of the digit height are specks (a grid's remnant, a dot)


@dataclass
class Digit:
    """One digit found on the line: its box (top, left, bottom, right; bottom and right exclusive) in the ink
    image's pixels, and its ink alone (the box's pixels that belong to it, others 0)."""

    box: tuple[int, int, int, int]
    ink: np.ndarray  # (bottom - top, right - left) float32
    group: int = 0  # line_units: the stroke group it was cut from (the pieces of one wide group share it)


def ink_mask(ink: np.ndarray) -> np.ndarray:
    """Where the ink is: above 30% of the contrast over the median (the background), as to_model_input's floor."""
    ink = np.asarray(ink, np.float32)
    background = float(np.median(ink))
    contrast = float(ink.max()) - background
    if contrast < 0.15:
        return np.zeros(ink.shape, bool)
    return ink > background + 0.3 * contrast


def _strokes(mask: np.ndarray, ink: np.ndarray):
    """Connected strokes: labels (H, W) and per stroke (top, left, bottom, right) boxes and ink masses."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if not n:
        return labels, np.zeros((0, 4), int), np.zeros(0)
    boxes = np.array([(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in ndimage.find_objects(labels)])
    mass = ndimage.sum_labels(np.where(mask, ink, 0), labels, np.arange(1, n + 1))
    return labels, boxes, np.asarray(mass, float)


def _overlap(a, b) -> float:
    """Horizontal overlap of boxes a and b as a share of the narrower one's width."""
    inter = min(a[3], b[3]) - max(a[1], b[1])
    return max(0, inter) / max(1, min(a[3] - a[1], b[3] - b[1]))


def _groups(boxes: np.ndarray, keep: np.ndarray) -> list[list[int]]:
    """Indices of kept strokes grouped into digits (strokes overlapping horizontally), left to right."""
    strokes = [i for i in np.argsort(boxes[:, 1], kind="stable") if keep[i]]
    groups: list[list[int]] = []
    spans: list[list[int]] = []  # each group's box
    for i in strokes:
        b = boxes[i]
        best, share = None, OVERLAP
        for g, span in enumerate(spans):
            s = _overlap(span, b)
            if s >= share:
                best, share = g, s
        if best is None:
            groups.append([i])
            spans.append(list(b))
        else:
            groups[best].append(i)
            span = spans[best]
            spans[best] = [min(span[0], b[0]), min(span[1], b[1]), max(span[2], b[2]), max(span[3], b[3])]
    order = np.argsort([s[1] for s in spans], kind="stable")
    return [groups[g] for g in order]


def _cuts(column_ink: np.ndarray, n: int) -> list[int]:
    """n - 1 columns at which to cut a group of n touching digits: the thinnest column of the projection within
    a third of a digit's width of each evenly spaced cut."""
    width = len(column_ink)
    step = width / n
    cuts = []
    for j in range(1, n):
        lo, hi = int(j * step - step / 3), int(j * step + step / 3) + 1
        lo, hi = max(lo, 1), min(hi, width - 1)
        cuts.append(lo + int(np.argmin(column_ink[lo:hi])) if hi > lo else int(j * step))
    return cuts


def _merge_pieces(groups, spans, line_height):
    """Short groups (a 5's bar, the top of a 7 written with a gap) joined to the neighbour they nearly touch."""
    i = 0
    while i + 1 < len(groups):  # neighbours that touch and together are no wider than one digit: a broken digit
        a, b = spans[i], spans[i + 1]
        if b[1] - a[3] <= TOUCH * line_height and max(a[3], b[3]) - min(a[1], b[1]) <= NARROW * line_height:
            groups[i] = groups[i] + groups[i + 1]
            spans[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
            del groups[i + 1], spans[i + 1]
        else:
            i += 1
    i = 0
    while i < len(groups):
        t, lft, b, r = spans[i]
        if b - t < PIECE * line_height and len(groups) > 1:
            gaps = [(max(spans[j][1] - r, lft - spans[j][3]), j) for j in (i - 1, i + 1) if 0 <= j < len(groups)]
            gap, j = min(gaps)
            if gap <= REACH * line_height:
                groups[j] = groups[j] + groups[i]
                u = spans[j]
                spans[j] = [min(u[0], t), min(u[1], lft), max(u[2], b), max(u[3], r)]
                del groups[i], spans[i]
                i = 0
                continue
        i += 1
    return groups, spans


@dataclass
class _Line:
    """The strokes of a line of digits: labels, boxes and ink masses, which strokes are kept, where the line runs
    (the middle row of its heavy strokes) and its digit height."""

    labels: np.ndarray
    boxes: np.ndarray
    mass: np.ndarray
    keep: np.ndarray
    centre: float
    height: float


def _line(ink: np.ndarray) -> _Line | None:
    """The line's strokes, without rulings, the sheet's edges and specks (None when there is no ink)."""
    mask = ink_mask(ink)
    labels, boxes, mass = _strokes(mask, ink)
    if not len(mass):
        return None
    heights, widths = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    long, short = np.maximum(heights, widths), np.minimum(heights, widths)
    # thin lines running into the image's edge are the sheet's edge, a margin or a ruling, not a digit
    edge = (boxes[:, 0] == 0) | (boxes[:, 1] == 0) | (boxes[:, 2] == ink.shape[0]) | (boxes[:, 3] == ink.shape[1])
    mass = np.where(edge & (long > 4 * short), 0, mass)
    if not mass.any():
        return None
    keep = mass >= SPECK * mass.max()
    tall = keep & (mass >= 0.15 * mass[keep].max())
    # long straight lines the cleanup left (a margin, the sheet's edge) are far longer than the tallest compact
    # stroke; a 1 is a thin straight stroke too, but no longer than the digits beside it
    compact = tall & (long <= 4 * short)
    tallest = float(heights[compact].max() if compact.any() else np.median(heights[tall]))
    lines = (long > LINE * tallest) & (short < 0.5 * tallest)
    keep &= ~lines
    if not keep.any():
        return None
    tall &= keep
    if (tall & ~edge).any():  # marks cut by the image's edge (a shadow, a digit half out of the frame) mislead
        tall &= ~edge
    if not tall.any():
        tall = keep
    # the line: the middle of the heavy strokes, weighted by their ink (stray marks and corners weigh little), and
    # the height of those that cross it
    middles = (boxes[tall, 0] + boxes[tall, 2]) / 2
    order = np.argsort(middles)
    weight = np.cumsum(mass[tall][order])
    centre = float(middles[order][np.searchsorted(weight, weight[-1] / 2)])
    crossing = tall & (boxes[:, 0] <= centre) & (boxes[:, 2] >= centre)
    line_height = float(np.percentile(heights[crossing if crossing.any() else tall], 75))
    # A faint or skipping pen breaks a digit into fragments, each far smaller than a whole stroke: on the line they
    # join the digit they lie within; off the line they are specks.
    middle = (boxes[:, 0] + boxes[:, 2]) / 2
    fragment = (mass >= FRAGMENT * mass.max()) & (np.abs(middle - centre) <= 0.6 * line_height)
    keep |= fragment & ~lines
    return _Line(labels, boxes, mass, keep, centre, line_height)


def _cut_out(ink: np.ndarray, labels: np.ndarray, group, box) -> Digit:
    """The ink of the strokes `group` (indices) inside `box`, others 0."""
    top, left, bottom, right = box
    members = np.isin(labels[top:bottom, left:right], np.asarray(group) + 1)
    piece = np.where(members, ink[top:bottom, left:right], 0).astype(np.float32)
    return Digit((int(top), int(left), int(bottom), int(right)), piece)


def find_digits(ink: np.ndarray, *, split: bool = True) -> list[Digit]:
    """The digits written on a line in `ink` (H, W), ink bright, left to right (see the module docstring).

    With `split` False a group is never cut (for counting how many separate digits an image holds)."""
    ink = np.asarray(ink, np.float32)
    line = _line(ink)
    if line is None:
        return []
    labels, boxes, mass, keep, centre, line_height = (line.labels, line.boxes, line.mass, line.keep, line.centre,
                                                      line.height)
    heights = boxes[:, 2] - boxes[:, 0]
    # strokes lying mostly above or below the line are stray marks, whatever their size
    inside = np.minimum(boxes[:, 2], centre + line_height / 2) - np.maximum(boxes[:, 0], centre - line_height / 2)
    keep = keep & (inside >= 0.3 * np.minimum(heights, line_height))
    groups = _groups(boxes, keep)
    spans = [[boxes[g, 0].min(), boxes[g, 1].min(), boxes[g, 2].max(), boxes[g, 3].max()] for g in groups]
    groups, spans = _merge_pieces(groups, spans, line_height)
    inks = [float(mass[g].sum()) for g in groups]
    typical = float(np.median([m for m, (t, _, b, _) in zip(inks, spans) if b - t >= SHORT * line_height] or [0]))
    # marks cut by the image's edge (a shadow, the sheet's corner) are not digits, if whole digits are there
    inner = [t > 0 and lft > 0 and b < ink.shape[0] and r < ink.shape[1] for t, lft, b, r in spans]
    digits = []
    for group, span, group_ink, whole in zip(groups, spans, inks, inner):
        if not whole and any(inner):
            continue
        top, _, bottom, _ = span
        height = bottom - top
        off_line = abs((top + bottom) / 2 - centre) > line_height
        if height < SHORT * line_height or (off_line and height < 0.8 * line_height) or group_ink < LIGHT * typical:
            continue  # a dot, dirt, a short stray stroke, a mark off the line, or loose fragments
        digit = _cut_out(ink, labels, group, span)
        n = pieces_in(digit, line_height)
        digits.extend(split_digit(digit, n) if split and n >= 2 else [digit])
    return digits


def line_units(ink: np.ndarray) -> tuple[list[Digit], float]:
    """The line's ink as units left to right, for a reader that chooses how they make digits (reading.py), and
    the line's digit height. A unit is strokes lying above one another (overlapping horizontally and near in
    height: a 5's bar, a 7's top written apart); groups wider than a digit are cut at each column where two
    digits may meet (candidate_cuts), so a unit is at most one digit, or a piece of one; tiny specks inside a
    unit, groups off the line and marks cut by the image's edge are left out."""
    ink = np.asarray(ink, np.float32)
    line = _line(ink)
    if line is None:
        return [], 0.0
    labels, boxes, mass, h = line.labels, line.boxes, line.mass, line.height
    heights = boxes[:, 2] - boxes[:, 0]
    # strokes far above or below the line cannot belong to a digit on it
    inside = np.minimum(boxes[:, 2], line.centre + h) - np.maximum(boxes[:, 0], line.centre - h)
    keep = line.keep & (inside >= 0.5 * np.minimum(heights, h))
    units = []
    border = BORDER * min(ink.shape)
    for number, group in enumerate(_groups(boxes, keep)):
        span = [boxes[group, 0].min(), boxes[group, 1].min(), boxes[group, 2].max(), boxes[group, 3].max()]
        top, left, bottom, right = span
        if bottom - top < SPECK_HEIGHT * h or min(top, left) <= 0 or bottom >= ink.shape[0] or right >= ink.shape[1]:
            continue  # a dot, a grid's remnant, or a mark cut by the image's edge
        if right - left < 0.25 * h and (left < border or right > ink.shape[1] - border):
            continue  # a thin line along the photo's edge: the sheet's edge or its shadow
        if abs((top + bottom) / 2 - line.centre) > 0.75 * h:
            continue  # off the line
        # specks inside a digit's box (a grid's crossing, a dot of dirt) would only blur its shape
        big = [i for i in group if heights[i] >= SPECK_HEIGHT * h or mass[i] >= SPECK * mass[group].sum()]
        group = big or group
        span = [boxes[group, 0].min(), boxes[group, 1].min(), boxes[group, 2].max(), boxes[group, 3].max()]
        unit = _cut_out(ink, labels, group, span)
        n = pieces_in(unit, h)
        for piece in split_at(unit, candidate_cuts(unit, n, h)) if n >= 2 else [unit]:
            piece.group = number
            units.append(piece)
    return units, h


def pieces_in(digit: Digit, line_height: float) -> int:
    """How many touching digits a group holds by its width (1 unless it is much wider than a digit is tall)."""
    top, left, bottom, right = digit.box
    height = max(bottom - top, line_height)
    if right - left <= WIDE * height:
        return 1
    return max(1, int(round((right - left) / (DIGIT_WIDTH * height))))


def split_digit(digit: Digit, n: int) -> list[Digit]:
    """A group of n touching digits cut where its ink is thinnest near even spacing (see _cuts)."""
    return split_at(digit, _cuts(digit.ink.sum(axis=0), n))


def candidate_cuts(digit: Digit, n: int, height: float) -> list[int]:
    """Columns where a group of about n touching digits may be cut, for a reader to choose among: where the ink
    is thinnest near even spacing (two digits joined by a stroke) and at even spacing itself (two round digits
    pressed together are thickest where they touch), none closer than a tenth of
    the digit height to another or to the group's sides."""
    width = digit.box[3] - digit.box[1]
    columns = digit.ink.sum(axis=0)
    found = sorted({*_cuts(columns, n), *(round(j * width / n) for j in range(1, n))})
    cuts: list[int] = []
    for c in found:
        if c >= 0.1 * height and width - c >= 0.1 * height and (not cuts or c - cuts[-1] >= 0.1 * height):
            cuts.append(int(c))
    return cuts


def split_at(digit: Digit, cuts: list[int]) -> list[Digit]:
    """A group cut at the given columns (from its left side), each piece's box shrunk to its ink."""
    top, left, bottom, right = digit.box
    edges = [0, *cuts, right - left]
    parts = []
    for a, b in zip(edges[:-1], edges[1:]):
        part = digit.ink[:, a:b]
        rows = np.flatnonzero(part.any(axis=1))
        if len(rows):
            parts.append(Digit((int(top + rows[0]), int(left + a), int(top + rows[-1] + 1), int(left + b)),
                               part[rows[0] : rows[-1] + 1]))
    return parts


def merge_digits(a: Digit, b: Digit) -> Digit:
    """Two groups as one digit: their ink in the union of their boxes."""
    top, left = min(a.box[0], b.box[0]), min(a.box[1], b.box[1])
    bottom, right = max(a.box[2], b.box[2]), max(a.box[3], b.box[3])
    ink = np.zeros((bottom - top, right - left), np.float32)
    for d in (a, b):
        t, lft, bt, r = d.box
        region = ink[t - top : bt - top, lft - left : r - left]
        np.maximum(region, d.ink, out=region)
    return Digit((top, left, bottom, right), ink)
