"""Photo and scan cleanup: from a phone photo of a handwritten digit to a clean ink image, before the MNIST pipeline.

A photo is not a drawing: the paper is grey, tinted or shadowed, the ink is blue or red or pencil-grey, the paper
has rulings or a grid, JPEG adds noise, and there are other marks on the page. The steps here, each a plain function:

- `looks_like_photo`: decides whether an image needs any of this (clean drawings and MNIST-form images do not);
- `clean`: ink found by colour and darkness against a paper background estimated at a large scale (a grey closing,
  which keeps shadow edges sharp), a noise-aware hysteresis threshold, and long straight rulings (a Hough transform,
  each line then located to the pixel) removed where they are thin, so a digit stroke crossing a ruling is kept,
  or by colour where the pen's differs from the ruling's (pencil on blue squares: the stroke kept whole, stubs of
  the ruling beside it removed).
  Returns the whole page's ink, for one digit or many (the `read` command splits it into digits);
- `isolate_digit`: the digit among the marks: the mark with the most ink near the middle that neither runs off nor
  spans the photo, with the strokes near it (a 5's bar, a 7's gap); stray marks, dirt, shadow edges dropped;
- `normalise_strokes`: a ballpoint line and a marker stroke both redrawn at one width relative to the digit's size.

scipy.ndimage and scikit-image are imported here only, so only photos pay for them.
"""

from __future__ import annotations

import numpy as np

WORK_SIZE = 640  # photos are brought down to at most this many pixels on their longer side (JPEGs: 480-640)
STROKE_WIDTH = 0.09  # stroke width / longest side of the digit's box; calibrated on MNIST training digits
DIGITS_STROKE_WIDTH = 0.18  # the same for scikit-learn's 8x8 digits, whose bitmaps have bolder strokes


def looks_like_photo(grey8: np.ndarray) -> bool:
    """Whether an 8-bit greyscale image (H, W) is a photo or scan rather than a clean drawing.

    A drawing, a screenshot or a rendered image has a flat background: most of its pixels share one exact value.
    A photo or scan never does (sensor noise, paper texture, JPEG, uneven light). Tiny images (MNIST-size) and
    extreme strips are never photos.
    """
    h, w = grey8.shape
    if min(h, w) < 48:
        return False
    counts = np.bincount(np.asarray(grey8, np.uint8).ravel(), minlength=256)
    return counts.max() < 0.25 * grey8.size


def _block_reduce(image: np.ndarray, factor: int, how) -> np.ndarray:
    """(H, W, ...) -> (ceil(H/f), ceil(W/f), ...) by `how` (np.max, np.mean...) over f x f blocks (edges padded)."""
    h, w = image.shape[:2]
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw)) + ((0, 0),) * (image.ndim - 2), mode="edge")
    H, W = image.shape[0] // factor, image.shape[1] // factor
    return how(image.reshape(H, factor, W, factor, *image.shape[2:]), axis=(1, 3))


def shrink(image: np.ndarray, size: int = WORK_SIZE) -> np.ndarray:
    """Bring a big photo (H, W[, 3]) down to at most `size` on its longer side by block averaging."""
    factor = int(np.ceil(max(image.shape[:2]) / size))
    return image if factor <= 1 else _block_reduce(np.asarray(image, np.float32), factor, np.mean)


def paper(image: np.ndarray, scale: int) -> np.ndarray:
    """The paper's colour at each pixel (H, W, c), ink removed: a grey closing (max then min filter) of about
    `scale` pixels, which erases dark strokes narrower than that but keeps the edges of shadows where they are."""
    from scipy import ndimage

    h, w = image.shape[:2]
    step = max(1, scale // 8)  # work on a coarse grid: the paper varies slowly
    coarse = _block_reduce(image, step, np.max)  # (h', w', c): the lightest pixel per block is paper
    k = max(3, int(round(scale / step)) | 1)
    closed = ndimage.minimum_filter(ndimage.maximum_filter(coarse, size=(k, k, 1)), size=(k, k, 1))
    closed = ndimage.uniform_filter(closed, size=(3, 3, 1), mode="nearest")
    if step == 1:
        return closed
    from PIL import Image

    # Bilinear enlargement, one channel at a time in Pillow (much faster than ndimage.zoom here).
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(closed[:, :, c]), "F").resize(
        (closed.shape[1] * step, closed.shape[0] * step), Image.Resampling.BILINEAR))[:h, :w]
        for c in range(closed.shape[2])], axis=2)


def darkness(image: np.ndarray, scale: int | None = None, absorbance: bool = False):
    """How much each pixel absorbs compared with the paper around it, (H, W) in [0, 1].

    Each colour channel is divided by the paper's colour there (so shadows and gradients cancel), and the ink is
    the channel that absorbs most: blue ink shows in red, red ink in green and blue, black and pencil in all.
    With `absorbance`, also each channel's optical density (H, W, c), -log of that ratio, in which inks laid over
    one another add up (a pen stroke across a ruling: the stroke's colour plus the ruling's).
    """
    image = np.asarray(image, np.float32)
    if image.ndim == 2:
        image = image[:, :, None]
    if scale is None:
        scale = max(9, min(image.shape[:2]) // 6)
    background = paper(image, scale)
    ratio = np.clip(image / np.maximum(background, 1e-3), 1e-3, 1)
    dark = 1 - ratio.min(axis=2)
    if absorbance:
        return dark, -np.log(ratio)
    return dark


def _runs(mask: np.ndarray, axis: int) -> np.ndarray:
    """Length of the run of True along `axis` that each pixel belongs to (0 off the mask)."""
    m = np.moveaxis(mask, axis, 0)
    n = m.shape[0]
    idx = np.arange(n).reshape(-1, *([1] * (m.ndim - 1)))
    last_off = np.maximum.accumulate(np.where(m, -1, idx), axis=0)  # index of the last False at or before
    before = idx - last_off
    next_off = np.flip(np.minimum.accumulate(np.flip(np.where(m, n, idx), 0), axis=0), 0)
    after = next_off - idx
    return np.moveaxis(np.where(m, before + after - 1, 0), 0, axis)


def rulings(mask: np.ndarray, max_angle: float = 12.0, coverage: float = 0.6):
    """Long straight lines across the page (rulings, grids, margins): a list of (angle, distance) in
    skimage.transform.hough_line's terms, each line present along at least `coverage` of its length."""
    from skimage.transform import hough_line, hough_line_peaks

    h, w = mask.shape
    near = np.deg2rad(np.arange(-max_angle, max_angle + 0.01, 0.5))
    # theta near 0: near-vertical lines; near +-90 degrees: near-horizontal ones
    horizontal = np.concatenate([np.pi / 2 + near[near < 0], -np.pi / 2 + near[near >= 0]])
    found = []
    for thetas, length in ((near, h), (horizontal, w)):
        accumulator, angles, dists = hough_line(mask, theta=thetas)
        peaks = hough_line_peaks(accumulator, angles, dists, min_distance=4, min_angle=1,
                                 threshold=0.4 * length, num_peaks=200)
        for _, angle, dist in zip(*peaks):
            if _coverage(mask, angle, dist) >= coverage:
                found.append((float(angle), float(dist)))
    return found


def _line_points(shape, angle: float, dist: float):
    """Integer pixel coordinates (ys, xs) of the line x cos(angle) + y sin(angle) = dist inside `shape`."""
    h, w = shape
    if abs(np.sin(angle)) > abs(np.cos(angle)):  # near-horizontal: one point per column
        xs = np.arange(w, dtype=np.float64)
        ys = (dist - xs * np.cos(angle)) / np.sin(angle)
    else:
        ys = np.arange(h, dtype=np.float64)
        xs = (dist - ys * np.sin(angle)) / np.cos(angle)
    ys, xs = np.round(ys).astype(np.intp), np.round(xs).astype(np.intp)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    return ys[inside], xs[inside]


def _coverage(mask: np.ndarray, angle: float, dist: float, reach: int = 2) -> float:
    """Fraction of a line's points that have ink within `reach` pixels across it; 0 for lines barely inside."""
    ys, xs = _line_points(mask.shape, angle, dist)
    if len(ys) < 0.3 * max(mask.shape):
        return 0.0
    horizontal = abs(np.sin(angle)) > abs(np.cos(angle))
    h, w = mask.shape
    hit = np.zeros(len(ys), bool)
    for d in range(-reach, reach + 1):
        y, x = (np.clip(ys + d, 0, h - 1), xs) if horizontal else (ys, np.clip(xs + d, 0, w - 1))
        hit |= mask[y, x]
    return float(hit.mean())


def _blobs(mask: np.ndarray) -> np.ndarray:
    """Parts of the mask thicker than a ruling in both directions (shadows, marker strokes), which would otherwise
    vote for lines in every direction."""
    return (_runs(mask, 0) > 12) & (_runs(mask, 1) > 12)


def _fit_line(loose: np.ndarray, ys: np.ndarray, xs: np.ndarray, horizontal: bool, reach: int = 6):
    """Where a Hough line really is: its offset across (per point) and thickness, from the loose ink mask in eight
    stretches along it (the Hough angle and distance are only as fine as their bins)."""
    h, w = loose.shape
    offsets = np.arange(-reach, reach + 1)
    if horizontal:
        hits = loose[np.clip(ys[None, :] + offsets[:, None], 0, h - 1), xs[None, :]]  # (offsets, points)
    else:
        hits = loose[ys[None, :], np.clip(xs[None, :] + offsets[:, None], 0, w - 1)]
    centres, weights, widths = [], [], []
    chunks = np.array_split(np.arange(len(ys)), 8)
    for chunk in chunks:
        profile = hits[:, chunk].mean(axis=1)
        top = float(profile.max())
        on = profile >= 0.5 * top
        centres.append(float((offsets * profile * on).sum() / max((profile * on).sum(), 1e-9)))
        weights.append(top)
        widths.append(int(on.sum()))
    where = np.array([c.mean() for c in chunks])
    good = np.array(weights) > 0.3
    if good.sum() >= 2:
        slope, intercept = np.polyfit(where[good], np.array(centres)[good], 1)
    else:
        slope, intercept = 0.0, 0.0
    along = np.arange(len(ys))
    shift = np.round(intercept + slope * along).astype(np.intp)
    thickness = int(np.median(np.array(widths)[good])) if good.any() else 2
    return shift, thickness


def remove_rulings(mask: np.ndarray, lines, loose: np.ndarray | None = None,
                   density: np.ndarray | None = None) -> np.ndarray:
    """The mask without the given lines: each line is located precisely (its offset and thickness measured on
    `loose`, a lower-threshold mask, or on `mask`), and its pixels cleared where the ink there is no thicker across
    the line than the line itself, so strokes crossing it survive; the nicks this leaves in faint strokes are
    mended (_mend), and with `density` (the photo's optical density, H x W x 3) the ruling's pixels are decided by
    colour where the pen's colour differs from the ruling's (_by_colour)."""
    out = mask.copy()
    if not lines:
        return out
    loose = mask if loose is None else loose
    across = {True: _runs(mask, 0), False: _runs(mask, 1)}  # run lengths across horizontal / vertical lines
    bands = []
    for angle, dist in lines:
        horizontal = abs(np.sin(angle)) > abs(np.cos(angle))
        ys, xs = _line_points(mask.shape, angle, dist)
        shift, thickness = _fit_line(loose, ys, xs, horizontal)
        reach = thickness // 2 + 1
        for d in range(-reach, reach + 1):
            y, x = _band(mask.shape, ys, xs, shift, d, horizontal)
            thin = across[horizontal][y, x] <= thickness + 2
            out[y[thin], x[thin]] = False
        bands.append((ys, xs, shift, reach, horizontal))
    out = _mend(mask, out, bands)
    if density is not None and density.ndim == 3 and density.shape[2] == 3:
        out = _by_colour(mask, out, bands, density)
    return out


def _band(shape, ys, xs, shift, d: int, horizontal: bool):
    """The pixels (y, x) at offset d across a located line (its points ys, xs, moved by shift)."""
    h, w = shape
    if horizontal:
        return np.clip(ys + shift + d, 0, h - 1), xs
    return ys, np.clip(xs + shift + d, 0, w - 1)


def _mend(mask: np.ndarray, out: np.ndarray, bands, side: int = 3, along: int = 2) -> np.ndarray:
    """Put back what removing the rulings cut out of strokes crossing them: a band's pixels (from `mask`) where
    the ink left (`out`) comes up to the band on both sides, within `side` pixels across and `along` pixels along
    the line (a slanted stroke). A faint or grainy stroke is thin across a ruling too, so the widths alone cut it."""
    from scipy import ndimage

    mended = out.copy()
    for ys, xs, shift, reach, horizontal in bands:
        before = np.zeros(len(ys), bool)
        after = np.zeros(len(ys), bool)
        for k in range(1, side + 1):
            before |= out[_band(mask.shape, ys, xs, shift, -reach - k, horizontal)]
            after |= out[_band(mask.shape, ys, xs, shift, reach + k, horizontal)]
        bridge = ndimage.maximum_filter1d(before, 2 * along + 1) & ndimage.maximum_filter1d(after, 2 * along + 1)
        for d in range(-reach, reach + 1):
            y, x = _band(mask.shape, ys, xs, shift, d, horizontal)
            keep = bridge & mask[y, x]
            mended[y[keep], x[keep]] = True
    return mended


def _by_colour(mask: np.ndarray, out: np.ndarray, bands, density: np.ndarray, contrast: float = 3.0,
               share: float = 0.4) -> np.ndarray:
    """Decide the rulings' pixels by colour where the ink's colour differs from theirs (pencil or black on blue
    lines, red or green ink): in optical density (H, W, 3) a pen stroke over a ruling is the ruling's colour plus
    the pen's, so what is left of a pixel's density once the ruling's colour direction is taken out is the pen's.
    The ruling's direction comes from the pixels removed as thin (the ruling alone), the pen's from ink away from
    the lines. Where the two differ by less than `contrast` times the rulings' own spread (blue ink on blue
    lines), `out` is returned as it is; otherwise a band pixel is ink when its pen part is at least `share` of the
    ink's typical one: strokes along or across a ruling kept whole, the ruling's stubs beside them removed."""
    from scipy import ndimage

    inband = np.zeros(mask.shape, bool)
    for ys, xs, shift, reach, horizontal in bands:
        for d in range(-reach, reach + 1):
            inband[_band(mask.shape, ys, xs, shift, d, horizontal)] = True
    line_only = inband & mask & ~out
    ink_only = out & ~ndimage.binary_dilation(inband, iterations=2)
    if line_only.sum() < 20 or ink_only.sum() < 20:
        return out
    direction = density[line_only].mean(axis=0)
    direction /= max(float(np.linalg.norm(direction)), 1e-9)

    def pen_part(values: np.ndarray) -> np.ndarray:
        return np.linalg.norm(values - (values @ direction)[:, None] * direction[None, :], axis=1)

    noise = float(np.percentile(pen_part(density[line_only]), 90))
    typical = float(np.median(pen_part(density[ink_only])))
    if typical < contrast * noise:
        return out
    ys, xs = np.nonzero(inband & mask)
    result = out.copy()
    result[ys, xs] = pen_part(density[ys, xs]) > max(noise, share * typical)
    return result


def _levels(dark: np.ndarray):
    """(paper level, paper noise, ink peak) of a darkness map, from every 9th pixel (plenty, and fast): the median,
    the robust spread (1.4826 MAD) and the 99.8th percentile."""
    sample = dark[::3, ::3].ravel()
    median = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - median)))
    return median, noise, float(np.percentile(sample, 99.8))


def threshold(dark: np.ndarray, levels=None) -> np.ndarray:
    """Ink mask from darkness (H, W): hysteresis between levels set by the paper's noise and the ink's strength,
    so a faint pencil line stays whole while JPEG noise and paper texture stay out."""
    from skimage.filters import apply_hysteresis_threshold

    median, noise, peak = levels or _levels(dark)
    high = max(median + 6 * noise, 0.5 * peak, 0.08)
    low = max(median + 3 * noise, 0.25 * peak, 0.05)
    return apply_hysteresis_threshold(dark, min(low, high), high)


def clean(image: np.ndarray) -> np.ndarray:
    """A photo or scan (H, W) grey or (H, W, 3) RGB, values in [0, 1] or 0-255, dark ink on light paper (light on
    dark is turned round) -> ink (h, w) float32 in [0, 1], ink bright, background exactly 0, rulings and specks
    removed. The image is first brought down to at most WORK_SIZE pixels on its longer side, so (h, w) may be
    smaller than (H, W). The whole page is kept: for one digit, follow with `isolate_digit`; for a number, split
    the ink into digits yourself."""
    from scipy import ndimage

    image = np.asarray(image, np.float32)
    if image.max() > 1.0:
        image = image / 255
    image = shrink(image)
    grey = image if image.ndim == 2 else image.mean(axis=2)
    if np.median(grey) < 0.5:  # chalk on a board, a negative: make the ink dark
        image = 1 - image
    dark, density = darkness(image, absorbance=True)
    levels = _levels(dark)
    mask = threshold(dark, levels)
    if min(mask.shape) >= 32:
        # Rulings are found on a looser mask, where a faint grid is whole rather than dashed.
        loose = dark > max(5 * levels[1], 0.15 * levels[2], 0.05)
        mask = remove_rulings(mask, rulings(loose & ~_blobs(loose)), loose, density)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n:
        sizes = np.bincount(labels.ravel())[1:]
        keep = np.concatenate([[False], sizes >= max(6, 0.02 * sizes.max())])
        mask = keep[labels]
    peak = float(np.percentile(dark[mask], 90)) if mask.any() else 1.0
    return np.where(mask, np.clip(dark / max(peak, 1e-3), 0, 1), 0).astype(np.float32)


def _scores(ink: np.ndarray, labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """How much each labelled region (1..n; index 0 unused) looks like the digit: its ink, counted less the
    further it lies from the middle, and far less when it runs off the photo or spans all of it (shadows' edges,
    the ends of rulings, the edge of the sheet: `suspect`, the second array returned)."""
    from scipy import ndimage

    h, w = ink.shape
    ys, xs = np.nonzero(labels)
    which, weight = labels[ys, xs], ink[ys, xs]
    total = np.bincount(which, weight, n + 1)
    safe = np.maximum(total, 1e-9)
    cy, cx = np.bincount(which, ys * weight, n + 1) / safe, np.bincount(which, xs * weight, n + 1) / safe
    score = total * (1 - np.hypot((cy - h / 2) / h, (cx - w / 2) / w))  # a mark at the very edge counts ~half
    edge = np.zeros(ink.shape, bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    suspect = np.zeros(n + 1, bool)
    suspect[np.unique(labels[edge])] = True
    score[suspect] *= 0.1
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None and (box[0].stop - box[0].start > 0.9 * h or box[1].stop - box[1].start > 0.9 * w):
            score[k] *= 0.1
            suspect[k] = True
    score[0] = -1
    return score, suspect


def isolate_digit(ink: np.ndarray, reach: float = 0.15) -> np.ndarray:
    """Keep only the digit among the marks of `ink` (H, W), as returned by `clean`: the mark that looks most like
    a digit (see _scores), with every stroke closer to it than `reach` times its size (a 5's bar, a 7's gap, a 4
    in two strokes); stray marks, dirt, margin scribbles and shadow edges are set to 0."""
    from scipy import ndimage

    mask = ink > 0
    if not mask.any():
        return ink
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    scores, suspect = _scores(ink, labels, n)
    best = int(np.argmax(scores))
    rows, cols = np.nonzero((labels == best).any(axis=1))[0], np.nonzero((labels == best).any(axis=0))[0]
    size = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    gaps = ndimage.distance_transform_edt(~mask)
    groups, m = ndimage.label(gaps <= max(2.0, reach * size), structure=np.ones((3, 3)))
    group = groups[labels == best][0]
    # Grouping may have reached a shadow's edge or the sheet's: keep the digit's strokes, not what runs off the photo.
    keep = np.unique(labels[(groups == group) & mask])
    keep = keep[~suspect[keep] | (keep == best)]
    return np.where(np.isin(labels, keep), ink, 0).astype(np.float32)


def normalise_strokes(ink: np.ndarray, width: float = STROKE_WIDTH, size: int = 96) -> np.ndarray:
    """Redraw a digit's ink (H, W) with strokes `width` times the longest side of its box, whatever pen drew it:
    the ink is brought to `size` pixels on its longer side, thinned to its centre lines (scikit-image's skeleton)
    and drawn again, anti-aliased, at the new width. Returns (h, w) float32 in [0, 1], ink bright."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    mask = ink > 0
    if not mask.any():
        return np.zeros_like(ink, dtype=np.float32)
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    crop = np.asarray(ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], np.float32)
    zoom = size / max(crop.shape)
    crop = ndimage.zoom(crop, zoom, order=1, grid_mode=True, mode="grid-constant") if zoom != 1 else crop
    radius = width * size / 2
    pad = int(np.ceil(radius)) + 2
    solid = np.pad(crop > 0.5 * crop.max(), pad)
    solid = ndimage.binary_closing(solid, iterations=1)  # mend pin-holes so the skeleton has no loops from noise
    skeleton = skeletonize(solid)
    distance = ndimage.distance_transform_edt(~skeleton)
    out = np.clip(radius + 0.5 - distance, 0, 1).astype(np.float32)
    return out


def digit_ink(image: np.ndarray) -> np.ndarray:
    """A photo of one digit (H, W[, 3]) -> that digit's ink alone, strokes normalised: `clean`, `isolate_digit`,
    `normalise_strokes`. Feed the result to preprocess.to_model_input."""
    return normalise_strokes(isolate_digit(clean(image)))
