"""Model files: weights in an .npz (no pickle, ever) with the metadata as JSON inside it.

The file holds four arrays: coef (k, d) and intercept (k,) as float32, classes (k,) as integers or fixed-width
strings, and metadata, the UTF-8 bytes of a JSON object (format version, preprocessing, class names, dataset and
its checksums, hyperparameters, metrics, package version). Loading reads with allow_pickle=False and checks every
array's type and shape before building the model, so a file can hold numbers and text but never code.
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import ModelFileError, OutputError
from .files import atomic_write
from .model import SCALE_RANGE, Preprocessing, SoftmaxModel

FORMAT = "mnist-softmax-model"
FORMAT_VERSION = 1
_KEYS = {"coef", "intercept", "classes", "metadata"}
_NOVELTY = ("novelty_means", "novelty_bases")  # optional (refuse.Novelty): (k, d) and (k * m, d) float32
MAX_COMPONENTS = 100  # principal directions per class in novelty_bases
MAX_CLUSTERS = 32  # subspaces per class in novelty_means and novelty_bases


def _classes_array(classes) -> np.ndarray:
    classes = np.asarray(classes)
    if classes.dtype == object:
        classes = classes.astype(str)
    return classes


def save_model(model: SoftmaxModel, path: str | Path) -> Path:
    """Write `model` to `path` atomically (a temporary file beside it, then a rename)."""
    from . import __version__

    path = Path(path)
    metadata = {
        **model.metadata,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "preprocessing": model.preprocessing.to_json(),
        "class_names": list(model.class_names),
    }
    novelty = getattr(model, "novelty", None)
    if novelty is not None:
        metadata["novelty"] = novelty.to_json()
    else:
        metadata.pop("novelty", None)
    blob = np.frombuffer(json.dumps(metadata, sort_keys=True).encode(), dtype=np.uint8)
    try:
        with atomic_write(path) as out:
            np.savez(
                out,
                coef=np.asarray(model.coef, np.float32),
                intercept=np.asarray(model.intercept, np.float32),
                classes=_classes_array(model.classes),
                metadata=blob,
                **(novelty.arrays() if novelty is not None else {}),
            )
    except OSError as exc:
        raise OutputError(f"cannot write the model to {path}: {exc.strerror or exc}") from None
    return path


# Bounds on what a model file may hold, checked before anything is inflated: far above any real model (MNIST's is
# 10 x 784), far below what would exhaust memory.
MAX_CLASSES = 1000
MAX_WEIGHTS = 1 << 24  # k * d
MAX_METADATA = 1 << 20  # bytes of JSON
MAX_NAME = 100  # characters of a class name
MAX_TEXT = 1000  # characters of any other metadata string checked below
MAX_DEPTH = 16  # nesting of the metadata JSON
MAX_SIDE = 1 << 16  # pixels along one side of the image shape
MAX_WEIGHT = 1e30  # largest weight or bias in size (real ones are below 10)
MAX_SCORE = 1e30  # largest class score an 8-bit image may reach (float32 ends at 3.4e38)


def load_model(path: str | Path) -> SoftmaxModel:
    """Read a model file, checking it completely; raises ModelFileError saying what is wrong.

    The zip members' sizes and compression and each .npy header are checked before any array is read, so a small
    file cannot make us allocate much; then the arrays' types and shapes, the weights (finite as float32), and the
    metadata against the schema (`check_metadata`).
    """
    path = Path(path)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():  # a FIFO or device would block or never end
            raise ModelFileError(f"{path}: not a regular file, expected a model .npz file")
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise ModelFileError(f"{path}: not a model file (expected an .npz archive)")
            _check_entry_count(path, f)
        arrays = _read_npz(path)
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, expected a model .npz file") from None
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, NotImplementedError,
            RuntimeError, zlib.error) as exc:
        raise ModelFileError(f"{path}: not a valid model file ({exc})") from None
    return _build(path, **arrays)


def _check_entry_count(path: Path, f) -> None:
    """Refuse an archive whose directory lists more than a few entries before zipfile builds an object for each
    (a small file listing a million entries would cost gigabytes)."""
    size = f.seek(0, 2)
    f.seek(max(0, size - (1 << 16) - 22))
    tail = f.read()
    end = tail.rfind(b"PK\x05\x06")  # the end-of-central-directory record
    if end >= 0 and len(tail) >= end + 12:
        entries = int.from_bytes(tail[end + 10 : end + 12], "little")
        if entries > 16:
            raise ModelFileError(f"{path}: not a model file: its archive lists {entries:,} entries "
                                 f"(a model has 4 to 6)")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The four arrays, each read only after its zip entry and .npy header promise a sane size."""
    with zipfile.ZipFile(path) as archive:
        members = {}
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            if key in members:
                raise ModelFileError(f"{path}: not a valid model file: two members named {info.filename}")
            members[key] = info
        missing = _KEYS - set(members)
        if missing:
            raise ModelFileError(f"{path}: not a model file: missing {', '.join(sorted(missing))}")
        arrays = {}
        for key in sorted(_KEYS) + [key for key in _NOVELTY if key in members]:
            info = members[key]
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ModelFileError(f"{path}: not a valid model file: {info.filename} uses compression method "
                                     f"{info.compress_type} (only stored and deflated are read)")
            # the weight-sized arrays hold at most MAX_WEIGHTS float64 numbers; the others are small
            limit = MAX_WEIGHTS * 8 if key in ("coef", *_NOVELTY) else MAX_METADATA + MAX_CLASSES * 4 * MAX_NAME
            if info.file_size > limit + 4096:
                raise ModelFileError(f"{path}: {key} is {info.file_size:,} bytes, more than a model holds "
                                     f"(at most {limit:,})")
            with archive.open(info) as stream:
                arrays[key] = _read_npy(path, key, stream, info.file_size)
    return arrays


def _read_npy(path: Path, key: str, stream, size: int) -> np.ndarray:
    """One .npy member: header checked (plain dtype, integer shape, data length equal to the member's), then read."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ModelFileError(f"{path}: {key} is an .npy of unsupported version {version}")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(stream)
    except ModelFileError:
        raise
    except Exception as exc:  # numpy parses the header text with Python's tokenizer: any error means garbage
        raise ModelFileError(f"{path}: {key} has an invalid .npy header ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise ModelFileError(f"{path}: holds object arrays (pickled Python objects); refusing to load")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in "biufU":
        raise ModelFileError(f"{path}: {key} has type {dtype}, not numbers or text")
    if not all(isinstance(n, int) and n >= 0 for n in shape) or len(shape) > 2:
        raise ModelFileError(f"{path}: {key} has an invalid shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != size - stream.tell():
        raise ModelFileError(f"{path}: {key} claims shape {shape} of {dtype} ({nbytes:,} bytes), but holds "
                             f"{size - stream.tell():,} bytes")
    data = stream.read(nbytes)
    if len(data) != nbytes:
        raise ModelFileError(f"{path}: {key} is truncated")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _build(path: Path, coef, intercept, classes, metadata, **novelty) -> SoftmaxModel:
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{path}: {what}")

    if coef.ndim != 2 or coef.dtype.kind != "f":
        raise bad(f"coef must be a 2-d float array, found {coef.dtype} of shape {coef.shape}")
    k, d = coef.shape
    if k < 2 or d < 1:
        raise bad(f"coef must have at least 2 classes and 1 feature, found shape {coef.shape}")
    if k > MAX_CLASSES or k * d > MAX_WEIGHTS:
        raise bad(f"coef of shape {coef.shape} is larger than allowed (at most {MAX_CLASSES} classes and "
                  f"{MAX_WEIGHTS:,} weights)")
    if intercept.shape != (k,) or intercept.dtype.kind != "f":
        raise bad(f"intercept must be float of shape ({k},), found {intercept.dtype} of shape {intercept.shape}")
    if classes.shape != (k,) or classes.dtype.kind not in "biuU":
        raise bad(f"classes must be {k} integers or strings, found {classes.dtype} of shape {classes.shape}")
    if classes.dtype.kind == "U" and classes.dtype.itemsize > 4 * MAX_NAME:
        raise bad(f"class labels longer than {MAX_NAME} characters")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow becomes infinity, refused just below
        coef, intercept = coef.astype(np.float32), intercept.astype(np.float32)
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise bad("weights contain NaN or infinity (as float32)")
    if max(float(np.abs(coef).max()), float(np.abs(intercept).max())) > MAX_WEIGHT:
        raise bad(f"weights larger than {MAX_WEIGHT:g} in size: the class scores would overflow")
    if metadata.ndim != 1 or metadata.dtype != np.uint8:
        raise bad("metadata must be UTF-8 JSON bytes")
    meta = parse_metadata(metadata.tobytes(), bad)
    check_metadata(meta, k, bad)
    preprocessing = Preprocessing.from_json(meta["preprocessing"])
    if preprocessing.image_shape and math.prod(preprocessing.image_shape) != d:
        raise bad(f"image shape {preprocessing.image_shape} does not hold the {d} features of coef")
    if preprocessing.image_shape:  # pixels are at most 255: the largest score any image can get must be finite
        top = float((np.abs(coef).astype(np.float64).sum(axis=1) * 255 * preprocessing.scale).max())
        if top + float(np.abs(intercept).max()) > MAX_SCORE:
            raise bad(f"weights and scale give class scores up to {top:.3g}, which overflow float32")
    names = meta.get("class_names") or []
    return SoftmaxModel(coef, intercept, classes.copy(), preprocessing,
                        tuple(names) or tuple(str(c) for c in classes), meta, _novelty(novelty, meta, k, d, bad))


def _novelty(arrays: dict, meta: dict, k: int, d: int, bad):
    """The refusal statistics (refuse.Novelty) when the file has them: both arrays and their metadata, or none."""
    if not arrays and "novelty" not in meta:
        return None
    if set(arrays) != set(_NOVELTY) or "novelty" not in meta:
        raise bad("novelty statistics must come complete: novelty_means, novelty_bases and their metadata")
    means, bases = arrays["novelty_means"], arrays["novelty_bases"]
    m = meta["novelty"]["components"]
    n = k * meta["novelty"].get("clusters", 1)  # subspaces: `clusters` per class (1 in files from before them)
    if means.shape != (n, d) or means.dtype.kind != "f":
        raise bad(f"novelty_means must be float of shape ({n}, {d}), found {means.dtype} of shape {means.shape}")
    if bases.shape != (n * m, d) or bases.dtype.kind != "f":
        raise bad(f"novelty_bases must be float of shape ({n * m}, {d}), found {bases.dtype} of shape {bases.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        means, bases = means.astype(np.float32), bases.astype(np.float32)
    if not (np.isfinite(means).all() and np.isfinite(bases).all()):
        raise bad("novelty statistics contain NaN or infinity (as float32)")
    from .refuse import Novelty

    return Novelty.from_stored(means, bases, meta["novelty"])


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_metadata(blob: bytes, bad) -> dict:
    """The metadata bytes as JSON (strict: no NaN or Infinity), at most MAX_METADATA bytes and MAX_DEPTH deep."""
    if len(blob) > MAX_METADATA:
        raise bad(f"metadata is {len(blob):,} bytes, more than the {MAX_METADATA:,} allowed")
    try:
        meta = json.loads(blob.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad(f"metadata is not valid JSON ({exc})") from None
    except RecursionError:
        raise bad(f"metadata is nested more than {MAX_DEPTH} deep") from None
    level, depth = [meta], 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise bad(f"metadata is nested more than {MAX_DEPTH} deep")
        level = [v for x in level if isinstance(x, (dict, list)) for v in (x.values() if isinstance(x, dict) else x)]
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise bad(f"metadata does not describe an {FORMAT} file")
    return meta


# ---------------------------------------------------------------- the metadata schema


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_text(v, limit=MAX_TEXT) -> bool:
    return isinstance(v, str) and len(v) <= limit


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, bool) or _is_number(v) or _is_text(v)


def _is_value(v) -> bool:
    return _is_scalar(v) or (isinstance(v, list) and len(v) <= 1000 and all(map(_is_scalar, v)))


def _is_table(v, value_ok) -> bool:
    return isinstance(v, dict) and len(v) <= 200 and all(_is_text(key, 100) and value_ok(x) for key, x in v.items())


def _is_preprocessing(v) -> bool:
    if not isinstance(v, dict) or not _is_number(v.get("scale")):
        return False
    shape = v.get("image_shape")
    return (SCALE_RANGE[0] <= v["scale"] <= SCALE_RANGE[1]
            and (shape is None or (isinstance(shape, list) and len(shape) == 2
                                   and all(_is_int(n) and 1 <= n <= MAX_SIDE for n in shape)))
            and isinstance(v.get("deskew", False), bool) and not (v.get("deskew") and shape is None))


def _is_dataset(v) -> bool:
    return isinstance(v, dict) and all(_is_text(v.get(key, ""), 200) for key in ("name", "title")) and (
        _is_table(v.get("checksums", {}), lambda x: _is_text(x, 200))) and (
        v.get("validation_size") is None or _is_int(v["validation_size"]))


# key: (required, check, what is allowed). Keys not listed here may hold any JSON within the size and depth limits.
SCHEMA = {
    "format": (True, lambda v: v == FORMAT, f'"{FORMAT}"'),
    "format_version": (True, lambda v: v == FORMAT_VERSION, f"{FORMAT_VERSION} (the version this package reads)"),
    "preprocessing": (True, _is_preprocessing,
                      f"an object with scale (a number from {SCALE_RANGE[0]:g} to {SCALE_RANGE[1]:g}), image_shape "
                      f"(null or two integers from 1 to {MAX_SIDE}) and deskew (true or false; true needs a shape)"),
    "class_names": (False, lambda v: isinstance(v, list) and all(_is_text(n, MAX_NAME) for n in v),
                    f"a list of one string of at most {MAX_NAME} characters per class"),
    "dataset": (False, _is_dataset, "an object with name, title, checksums and validation_size"),
    "hyperparameters": (False, lambda v: _is_table(v, _is_value), "an object of numbers, strings, booleans or lists"),
    "metrics": (False, lambda v: _is_table(v, _is_value), "an object of numbers, strings, booleans or lists"),
    "seed": (False, lambda v: v is None or _is_int(v), "an integer"),
    "calibration": (False, lambda v: _is_table(v, _is_value) and _is_number(v.get("temperature"))
                    and 0.01 <= v["temperature"] <= 100, "an object whose temperature is a number from 0.01 to 100"),
    "novelty": (False, lambda v: isinstance(v, dict) and _is_int(v.get("components"))
                and 1 <= v["components"] <= MAX_COMPONENTS and _is_number(v.get("threshold")) and v["threshold"] >= 0
                and _is_number(v.get("blur")) and 0 <= v["blur"] <= 10
                and (v.get("quantile") is None or (_is_number(v["quantile"]) and 0 < v["quantile"] <= 1))
                and (v.get("clusters") is None or (_is_int(v["clusters"]) and 1 <= v["clusters"] <= MAX_CLUSTERS)),
                f"an object with components (1 to {MAX_COMPONENTS}), threshold (>= 0), blur (0 to 10), quantile and "
                f"clusters (1 to {MAX_CLUSTERS})"),
    "created": (False, lambda v: _is_text(v, 100), "a date as text"),
    "package_version": (False, lambda v: _is_text(v, 100), "a version as text"),
}


def check_metadata(meta: dict, k: int, bad) -> None:
    """Raise `bad(...)` naming the first metadata field that does not match SCHEMA (or does not fit k classes)."""
    if meta.get("format_version") != FORMAT_VERSION:
        raise bad(f"format version {meta.get('format_version')!r} is not supported "
                  f"(this version reads {FORMAT_VERSION})")
    for key, (required, ok, allowed) in SCHEMA.items():
        if key not in meta:
            if required:
                raise bad(f"metadata has no {key} (expected {allowed})")
            continue
        if not ok(meta[key]):
            raise bad(f"metadata {key} must be {allowed}, found {_preview(meta[key])}")
    names = meta.get("class_names") or []
    if names and len(names) != k:
        raise bad(f"class_names must be a list of {k} strings, found {len(names)}")


def _preview(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
