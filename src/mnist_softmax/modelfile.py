"""Model files: weights in an .npz (no pickle, ever) with the metadata as JSON inside it.

The file holds four arrays: coef (k, d) and intercept (k,) as float32, classes (k,) as integers or fixed-width
strings, and metadata, the UTF-8 bytes of a JSON object (format version, preprocessing, class names, dataset and
its checksums, hyperparameters, metrics, package version). Loading reads with allow_pickle=False and checks every
array's type and shape before building the model, so a file can hold numbers and text but never code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFileError, OutputError
from .files import atomic_write
from .model import Preprocessing, SoftmaxModel

FORMAT = "mnist-softmax-model"
FORMAT_VERSION = 1
_KEYS = {"coef", "intercept", "classes", "metadata"}


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
    blob = np.frombuffer(json.dumps(metadata, sort_keys=True).encode(), dtype=np.uint8)
    try:
        with atomic_write(path) as out:
            np.savez(
                out,
                coef=np.asarray(model.coef, np.float32),
                intercept=np.asarray(model.intercept, np.float32),
                classes=_classes_array(model.classes),
                metadata=blob,
            )
    except OSError as exc:
        raise OutputError(f"cannot write the model to {path}: {exc.strerror or exc}") from None
    return path


def load_model(path: str | Path) -> SoftmaxModel:
    """Read a model file, checking it completely; raises ModelFileError saying what is wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise ModelFileError(f"{path}: not a model file (expected an .npz archive)")
        with np.load(path, allow_pickle=False) as npz:
            missing = _KEYS - set(npz.files)
            if missing:
                raise ModelFileError(f"{path}: not a model file: missing {', '.join(sorted(missing))}")
            arrays = {key: npz[key] for key in _KEYS}
    except ModelFileError:
        raise
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, expected a model .npz file") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise ModelFileError(f"{path}: holds object arrays (pickled Python objects); refusing to load") from None
        raise ModelFileError(f"{path}: not a valid model file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: not a valid model file ({exc})") from None
    return _build(path, **arrays)


def _build(path: Path, coef, intercept, classes, metadata) -> SoftmaxModel:
    def bad(what: str) -> ModelFileError:
        return ModelFileError(f"{path}: {what}")

    if coef.ndim != 2 or coef.dtype.kind != "f":
        raise bad(f"coef must be a 2-d float array, found {coef.dtype} of shape {coef.shape}")
    k, d = coef.shape
    if k < 2 or d < 1:
        raise bad(f"coef must have at least 2 classes and 1 feature, found shape {coef.shape}")
    if intercept.shape != (k,) or intercept.dtype.kind != "f":
        raise bad(f"intercept must be float of shape ({k},), found {intercept.dtype} of shape {intercept.shape}")
    if classes.shape != (k,) or classes.dtype.kind not in "biuU":
        raise bad(f"classes must be {k} integers or strings, found {classes.dtype} of shape {classes.shape}")
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise bad("weights contain NaN or infinity")
    if metadata.ndim != 1 or metadata.dtype != np.uint8:
        raise bad("metadata must be UTF-8 JSON bytes")
    try:
        meta = json.loads(metadata.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise bad(f"metadata does not describe an {FORMAT} file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise bad(f"format version {meta.get('format_version')!r} is not supported (this version reads {FORMAT_VERSION})")
    try:
        preprocessing = Preprocessing.from_json(meta["preprocessing"])
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"metadata has no valid preprocessing ({exc})") from None
    if not (np.isfinite(preprocessing.scale) and preprocessing.scale > 0):
        raise bad(f"preprocessing scale must be a positive number, found {preprocessing.scale}")
    if preprocessing.image_shape and int(np.prod(preprocessing.image_shape)) != d:
        raise bad(f"image shape {preprocessing.image_shape} does not hold the {d} features of coef")
    names = meta.get("class_names") or []
    if not isinstance(names, list) or (names and len(names) != k) or not all(isinstance(n, str) for n in names):
        raise bad(f"class_names must be a list of {k} strings")
    return SoftmaxModel(
        coef.astype(np.float32),
        intercept.astype(np.float32),
        classes,
        preprocessing,
        tuple(names) or tuple(str(c) for c in classes),
        meta,
    )
