"""Out-of-core training: learn from image sets larger than memory, read from disk a window at a time.

The data is a set of shards: pairs of an images file (uint8, (n, h, w) or (n, d)) and a labels file ((n,)
integers), each either a .npy file or a raw (not gzipped) IDX file. Rows are read through a memory map of just the
rows wanted, which is closed at once, so resident memory stays bounded whatever the data's size. Training is the
recipe's SGD (stream.StreamState) on shuffled blocks: each pass visits runs of consecutive rows ("chunks") in a
random order, a window of chunks at a time, and shuffles the rows inside the window, so a block mixes rows from all
over the data and memory never holds more than one window.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataFormatError, DataNotFoundError, UsageError
from .files import atomic_write
from .idx import TYPE_CODES
from .recipes import Recipe
from .stream import StreamState, check_streamable

CHUNK_ROWS = 4096  # rows read together: a few MB, long sequential reads
WINDOW_CHUNKS = 16  # chunks shuffled together: 64k rows, 50 MB of 28x28 uint8 images
BLOCK_ROWS = 4096  # rows per StreamState.update: 13 MB as float32 features


@dataclass(frozen=True)
class ArrayFile:
    """An array stored uncompressed in a file: where its values start, their type and shape."""

    path: Path
    offset: int
    dtype: np.dtype
    shape: tuple[int, ...]

    def rows(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows [start, stop) in memory (into `out` when given), read through a memory map of those rows only,
        closed at once (a long-lived map of the whole file would count every page read in the process's resident
        memory)."""
        stop = max(start, min(stop, self.shape[0]))
        if out is None:
            out = np.empty((stop - start, *self.shape[1:]), self.dtype.newbyteorder("="))
        if stop > start:
            row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
            view = np.memmap(self.path, self.dtype, "r", offset=self.offset + start * row_bytes,
                             shape=(stop - start, *self.shape[1:]))
            out[...] = view
            del view  # unmaps: the copy holds no reference to the map
        return out


def npy_file(path: Path) -> ArrayFile:
    """An .npy file's layout, from its header (no data read)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = header(f)
            offset = f.tell()
    except (ValueError, OSError) as exc:
        raise DataFormatError(f"{path}: not a readable .npy file ({exc})") from None
    if fortran or dtype.hasobject or not shape:
        raise DataFormatError(f"{path}: expected a C-ordered numeric array, found {dtype} {shape}"
                              f"{' in Fortran order' if fortran else ''}")
    _check_size(path, offset, dtype, shape)
    return ArrayFile(Path(path), offset, dtype, tuple(shape))


def idx_file(path: Path) -> ArrayFile:
    """A raw IDX file's layout, from its header; a gzipped one cannot be memory-mapped and is refused."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head[:2] == b"\x1f\x8b":
            raise DataFormatError(f"{path}: gzipped IDX cannot be read out of core; decompress it (gunzip -k)")
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in TYPE_CODES or not 1 <= head[3] <= 4:
            raise DataFormatError(f"{path}: not an IDX file (magic bytes {head.hex()})")
        dims = f.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        raise DataFormatError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{head[3]}I", dims)
    dtype = TYPE_CODES[head[2]]
    _check_size(path, 4 + len(dims), dtype, shape)
    return ArrayFile(Path(path), 4 + len(dims), dtype, shape)


def _check_size(path, offset, dtype, shape) -> None:
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = Path(path).stat().st_size
    if size != need:
        raise DataFormatError(f"{path}: its header promises {need:,} bytes ({dtype} {tuple(shape)}), the file has "
                              f"{size:,}")


def _array_file(path: Path) -> ArrayFile:
    return npy_file(path) if path.suffix == ".npy" else idx_file(path)


@dataclass(frozen=True)
class ShardSet:
    """Pairs of images and labels files that together hold one dataset, read a few rows at a time."""

    images: tuple[ArrayFile, ...]
    labels: tuple[ArrayFile, ...]

    @property
    def n(self) -> int:
        return sum(f.shape[0] for f in self.images)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.images[0].shape[1:]

    def chunks(self, rows: int = CHUNK_ROWS) -> list[tuple[int, int, int]]:
        """(shard, start, stop) runs of at most `rows` consecutive rows covering the data once."""
        return [(i, s, min(s + rows, f.shape[0]))
                for i, f in enumerate(self.images) for s in range(0, f.shape[0], rows)]

    def read(self, shard: int, start: int, stop: int, images=None, labels=None) -> tuple[np.ndarray, np.ndarray]:
        """Images (m, *image_shape) and labels (m,) int64 of rows [start, stop) of one shard (into the given
        arrays, when given)."""
        if labels is None:
            labels = np.empty(stop - start, np.int64)
        return self.images[shard].rows(start, stop, images), self.labels[shard].rows(start, stop, labels)


_IMAGES = re.compile(r"images")


def open_shards(path: str | Path) -> ShardSet:
    """The shards at `path`: a folder of images*.npy / labels*.npy pairs (images-00000.npy beside
    labels-00000.npy), a folder holding raw IDX train-images-idx3-ubyte and train-labels-idx1-ubyte, or one raw
    IDX or .npy images file beside its labels file. Every header is checked before any data is read."""
    path = Path(path)
    if path.is_dir():
        names = sorted(p for p in path.iterdir() if p.name.startswith("images") and p.suffix == ".npy")
        if not names:
            names = [p for p in (path / "train-images-idx3-ubyte", path / "train-images.idx3-ubyte") if p.exists()][:1]
    elif path.is_file():
        names = [path]
    else:
        raise DataNotFoundError(f"{path}: no such file or folder")
    if not names:
        raise DataNotFoundError(f"{path}: no shards found (expected images-*.npy beside labels-*.npy, or a raw "
                                f"train-images-idx3-ubyte beside train-labels-idx1-ubyte)")
    images: list[ArrayFile] = []
    labels: list[ArrayFile] = []
    for name in names:
        label_path = name.with_name(_IMAGES.sub("labels", name.name, count=1).replace("idx3", "idx1"))
        if not label_path.exists():
            raise DataNotFoundError(f"{name}: its labels file {label_path.name} is missing")
        img, lab = _array_file(name), _array_file(label_path)
        if img.dtype != np.uint8:
            raise DataFormatError(f"{name}: expected uint8 images, found {img.dtype}")
        if len(img.shape) not in (2, 3):
            raise DataFormatError(f"{name}: expected images of shape (n, h, w) or (n, d), found {img.shape}")
        if len(lab.shape) != 1 or lab.dtype.kind not in "iu" or lab.shape[0] != img.shape[0]:
            raise DataFormatError(f"{label_path}: expected {img.shape[0]:,} integer labels (n,), found "
                                  f"{lab.dtype} {lab.shape}")
        if images and img.shape[1:] != images[0].shape[1:]:
            raise DataFormatError(f"{name}: images of shape {img.shape[1:]}, but {images[0].path.name} has "
                                  f"{images[0].shape[1:]}")
        images.append(img)
        labels.append(lab)
    return ShardSet(tuple(images), tuple(labels))


def write_shard(folder: str | Path, index: int, images: np.ndarray, labels: np.ndarray) -> Path:
    """Write images-NNNNN.npy and labels-NNNNN.npy into `folder`, each atomically (no half-written shard)."""
    folder = Path(folder)
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or len(images) != len(labels):
        raise UsageError(f"a shard is uint8 images and as many labels; got {images.dtype} {images.shape} and "
                         f"{labels.shape}")
    for name, array in ((f"labels-{index:05d}.npy", labels), (f"images-{index:05d}.npy", images)):
        with atomic_write(folder / name) as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
    return folder / f"images-{index:05d}.npy"


def shuffled_blocks(
    shards: ShardSet, rng: np.random.Generator, block_rows: int = BLOCK_ROWS, chunk_rows: int = CHUNK_ROWS,
    window: int = WINDOW_CHUNKS,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One pass over every row in a random order, with bounded memory: chunks in a random order, `window` of them
    read at a time, their rows shuffled together and yielded as (images, labels) blocks of `block_rows`."""
    chunks = shards.chunks(chunk_rows)
    order = rng.permutation(len(chunks))
    size = min(window * chunk_rows, shards.n)
    window_images = np.empty((size, *shards.image_shape), np.uint8)  # one buffer, reused for every window
    window_labels = np.empty(size, np.int64)
    for w in range(0, len(order), window):
        filled = 0
        for i in order[w : w + window]:
            shard, start, stop = chunks[i]
            shards.read(shard, start, stop, window_images[filled : filled + stop - start],
                        window_labels[filled : filled + stop - start])
            filled += stop - start
        images, labels = window_images[:filled], window_labels[:filled]
        mix = rng.permutation(filled)
        for s in range(0, len(mix), block_rows):
            rows = mix[s : s + block_rows]
            yield images[rows], labels[rows]


def fit_shards(shards: ShardSet, n_classes: int, recipe: Recipe, rng: np.random.Generator, transform,
               block_rows: int = BLOCK_ROWS) -> tuple[StreamState, int]:
    """The recipe's SGD over the shards, out of core. `transform` turns raw images into float32 features (the
    model's preprocessing). Trains for the recipe's epochs (or steps of batch_size rows, or at least its
    min_steps); returns the final state and the number of rows seen."""
    check_streamable(recipe)
    n = shards.n
    B = recipe.batch_size
    epochs = recipe.epochs or 1
    budget = recipe.steps * B if recipe.steps else max(round(epochs * n), recipe.min_steps * min(B, n))
    state: StreamState | None = None
    seen = 0
    while seen < budget:
        for images, labels in shuffled_blocks(shards, rng, block_rows):
            images, labels = images[: budget - seen], labels[: budget - seen]
            if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
                raise DataFormatError(f"labels must be in [0, {n_classes}), found {labels.min()}..{labels.max()}")
            X = transform(images)
            if state is None:
                state = StreamState.start(X, n_classes, recipe, rng)
            state.update(X, labels, recipe)
            seen += len(labels)
            if seen >= budget:
                break
    if state is None:
        raise DataFormatError("the shards hold no rows")
    return state, seen


def evaluate_shards(shards: ShardSet, coef: np.ndarray, intercept: np.ndarray, transform) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of the plain model (coef, intercept) over all the shards, chunk by chunk."""
    from .metrics import curves

    total_loss = correct = 0.0
    for chunk in shards.chunks():
        images, labels = shards.read(*chunk)
        loss, accuracy = curves(coef[None], intercept[None], images, labels, transform)
        total_loss += float(loss[0]) * len(labels)
        correct += float(accuracy[0]) * len(labels)
    return total_loss / shards.n, correct / shards.n
