"""Finding, verifying, caching and loading datasets.

Where each file comes from, in order: an explicit data folder (`data_dir`), else $MNIST_SOFTMAX_DATA_DIR (its
NAME/ subfolder when it has one; files there that do not verify as this dataset are passed over, so one dataset's
folder never stands in for another's), the per-dataset cache ($MNIST_SOFTMAX_CACHE_DIR, else
$XDG_CACHE_HOME/mnist-softmax, else ~/.cache/mnist-softmax), folders a system package fills (Debian's
dataset-fashion-mnist), the copy inside the package (MNIST), then a download from the mirrors.

Every file is verified against its pinned digest when first read. Its decoded arrays are then cached as .npy beside
the downloads, keyed by the source file's path, size and modification time, with a fingerprint of the arrays, so a
warm load is a memory map plus a cheap integrity check rather than a gzip inflate; a damaged cache entry is blamed
on the cache, removed and rebuilt from the verified source.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np

from .datasets import DATASETS, ROLES, DatasetSpec, FileSpec, get_dataset
from .errors import ChecksumError, DataError, DataFormatError, DataNotFoundError, DownloadError, OutputError, UsageError
from .files import atomic_write
from .idx import read_idx

DATA_DIR_ENV = "MNIST_SOFTMAX_DATA_DIR"
CACHE_DIR_ENV = "MNIST_SOFTMAX_CACHE_DIR"
MIRRORS_ENV = "MNIST_SOFTMAX_MIRRORS"
OFFLINE_ENV = "MNIST_SOFTMAX_OFFLINE"
PINS = "PINNED.json"  # in an archive dataset's cache: payload digests of the members extracted from the archive
MAX_CLASS_NAME = 100  # characters of one class name in a folder's classes.txt


class DataWarning(UserWarning):
    """Something was wrong and has been repaired (a damaged cache entry rebuilt); the CLI shows it as a note."""


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: uint8 images (n, h, w) and integer labels (n,), with where each file came from."""

    spec: DatasetSpec
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    sources: dict[str, str] = field(default_factory=dict)  # role -> path (or "bundled")
    digests: dict[str, str] = field(default_factory=dict)  # file name -> the digest it was verified against
    data_dir: str | None = None  # the data folder given (or $MNIST_SOFTMAX_DATA_DIR's) that the files came from

    @property
    def checksums(self) -> dict[str, str]:
        """The digest each file was verified against (of the kind `spec.digest_kind`), by file name."""
        return self.digests or {f.name: f.sha256 for f in self.spec.files if f.sha256}

    def split(self, validation_size: int | None = None):
        """The training set cut into (train_images, train_labels, val_images, val_labels).

        The validation set is the *last* `validation_size` training images (the tutorial's 55k/5k for MNIST).
        """
        size = self.spec.validation_size if validation_size is None else validation_size
        n = len(self.train_labels)
        if not 0 <= size < n:
            raise UsageError(f"validation size must be between 0 and {n - 1} for {self.spec.name}, got {size}")
        cut = n - size
        return self.train_images[:cut], self.train_labels[:cut], self.train_images[cut:], self.train_labels[cut:]

    def _repr_html_(self) -> str:
        """Jupyter: sizes, classes, files and one training image per class (display.py; no matplotlib)."""
        from .display import dataset_html

        return dataset_html(self)


# ---------------------------------------------------------------- where things are


def cache_root() -> Path:
    """The folder holding one cache folder per dataset."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "mnist-softmax"


def dataset_cache(spec: DatasetSpec) -> Path:
    if spec.folder:  # a folder dataset's decoded arrays, keyed by where the folder is
        return cache_root() / "folders" / hashlib.sha1(spec.folder.encode()).hexdigest()[:16]
    return cache_root() / spec.name


def bundled_dir(spec: DatasetSpec) -> Path | None:
    """The copy of the dataset inside the package, if it ships one."""
    if not spec.bundled:
        return None
    folder = Path(str(resources.files("mnist_softmax") / "bundled" / spec.name))
    return folder if folder.is_dir() else None


def mirrors(spec: DatasetSpec) -> tuple[str, ...]:
    """The dataset's mirrors, or those in $MNIST_SOFTMAX_MIRRORS (space-separated base URLs) when set."""
    override = os.environ.get(MIRRORS_ENV, "").split()
    return tuple(override) or spec.mirrors


def find_file(spec: FileSpec, folder: Path) -> Path | None:
    """The file in `folder` under any usual spelling: train-images-idx3-ubyte or train-images.idx3-ubyte, .gz or not."""
    dotted = spec.name.replace("-idx", ".idx", 1)
    for name in (spec.name, dotted):
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    return None


def _env_folder(spec: DatasetSpec) -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    folder = Path(value).expanduser()
    return folder / spec.name if (folder / spec.name).is_dir() else folder


def _folders(spec: DatasetSpec, data_dir) -> list[tuple[str, Path]]:
    """(kind, folder) to search, in order; an explicit data folder is the only one."""
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(f"data folder {folder} does not exist")
        return [("explicit", folder)]
    if spec.folder:
        return [("explicit", Path(spec.folder))]
    found = []
    if env := _env_folder(spec):
        found.append(("environment", env))
    found.append(("cache", dataset_cache(spec)))
    found += [("system", Path(d)) for d in spec.system_dirs]
    if bundled := bundled_dir(spec):
        found.append(("bundled", bundled))
    return found


def locate(spec: DatasetSpec, data_dir: str | Path | None = None) -> dict[str, Path | None]:
    """Where each file of `spec` is now, unverified (None where it must still be downloaded)."""
    folders = _folders(spec, data_dir)
    return {f.role: next((p for _, d in folders if (p := find_file(f, d))), None) for f in spec.files}


# ---------------------------------------------------------------- verified decoding and the decoded cache


def fingerprint(array: np.ndarray) -> str:
    """A cheap integrity check of a decoded array: SHA-256 of its per-row sums of 64-bit words.

    One pass at memory speed (about 10 ms for MNIST's training images): it changes with any changed byte and any
    reordering of rows, which is what damage to a cache file does, and it needs no second copy of the data.
    """
    array = np.ascontiguousarray(array)
    if array.ndim == 1:
        return hashlib.sha256(array.tobytes()).hexdigest()
    rows = array.reshape(len(array), -1)
    if rows.dtype.itemsize * rows.shape[1] % 8 == 0:
        sums = rows.view(np.uint64).sum(axis=1)
    else:
        sums = rows.view(np.uint8).sum(axis=1, dtype=np.uint64)
    return hashlib.sha256(sums.tobytes() + str(array.shape).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _pins(spec: DatasetSpec) -> dict[str, str]:
    """Payload digests of the members extracted from a verified archive (an archive dataset's cache)."""
    try:
        pins = json.loads((dataset_cache(spec) / PINS).read_text())
        return {str(k): str(v) for k, v in pins.items()} if isinstance(pins, dict) else {}
    except (OSError, ValueError):
        return {}


def _expected(spec: DatasetSpec, file: FileSpec, kind: str) -> str | None:
    """The digest `file` must have where it was found (None: a folder dataset not yet pinned by a model)."""
    if file.digest != "archive":
        return file.sha256
    pin = _pins(spec).get(file.name) if kind == "cache" else None
    if pin is None:
        assert spec.archive is not None  # only an archive dataset's files carry digest "archive"
        why = (f"{file.name}: cannot be verified here: {spec.name}'s published digest covers its archive "
               f"{spec.archive.name}")
        raise ChecksumError(f"{why}; import that with import_dataset({spec.name!r}, DIR)",
                            cli=f"{why}; import that with 'mnist-softmax data fetch --dataset {spec.name} --from DIR'")
    return pin


def _decode(spec: DatasetSpec, file: FileSpec, array: np.ndarray) -> np.ndarray:
    """A verified IDX array as the dataset's uint8 images (upright) or class indices."""
    if file.role.endswith("images"):
        return np.ascontiguousarray(array.transpose(0, 2, 1)) if spec.transpose else array
    if spec.label_column is not None:
        array = array[:, spec.label_column]
    if spec.label_offset:
        array = array.astype(np.int64) - spec.label_offset
    if len(array) and (array.min() < 0 or array.max() > 255):
        raise DataFormatError(f"labels must lie in 0..255, found {array.min()}..{array.max()}")
    return array.astype(np.uint8)


def read_verified(spec: DatasetSpec, file: FileSpec, source: Path, expected: str | None) -> tuple[np.ndarray, str]:
    """Read, check and decode one file; returns (array, the digest it was verified against or now pinned to).

    `expected` None means the file has no pin yet (a folder dataset's first load): its payload digest is returned.
    """
    images = file.role.endswith("images")
    ndim, dtype = (3, "u1") if images else ((2, "i4") if spec.label_column is not None else (1, "u1"))
    decoded = read_idx(source, ndim=ndim, dtype=dtype)
    if file.digest == "file" and expected is not None:
        actual = file_sha256(source)
        what = "file"
    else:
        actual = decoded.sha256
        what = "decompressed payload"
    if expected is not None and actual != expected:
        raise ChecksumError(
            f"{source}: checksum mismatch: the {what} has SHA-256 {actual}, expected {expected} for {file.name}"
            + _whose(decoded.sha256, actual)
        )
    try:
        return _decode(spec, file, decoded.array), actual
    except DataFormatError as exc:
        raise DataFormatError(f"{source}: {exc}") from None


def _whose(payload: str, actual: str) -> str:
    """', which is <dataset>'s <file>' when the digest belongs to another known dataset, else ''."""
    for other in DATASETS.values():
        for f in other.files:
            if f.sha256 in (payload, actual):
                return f"; it is {other.name}'s {f.name}"
    return ""


def _decoded_path(spec: DatasetSpec, file: FileSpec, source: Path, expected: str | None) -> Path:
    st = source.stat()
    key = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{expected}"
    return dataset_cache(spec) / "decoded" / f"{file.role}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


MAX_SIDECAR = 4096  # bytes: a sidecar holds a shape and two digests; anything longer is not ours


def _open_cached(path: Path, expected: str | None) -> tuple[np.ndarray | None, str | None, str | None]:
    """(array, digest, None) for an intact decoded cache entry, (None, None, why) for a damaged one, and
    (None, None, None) for one that is absent or half-written (a killed process wrote its .npy, not yet its sidecar).
    """
    sidecar = _sidecar(path)
    try:
        modes = [os.stat(p).st_mode for p in (path, sidecar)]
    except OSError:  # missing, or the cache folder is not a folder: nothing cached
        return None, None, None
    if not all(stat.S_ISREG(m) for m in modes):  # a FIFO would block the reader, a folder cannot be loaded
        return None, None, "not a regular file"
    try:
        with open(sidecar, "rb") as f:
            raw = f.read(MAX_SIDECAR + 1)
        if len(raw) > MAX_SIDECAR:
            raise ValueError("sidecar too long")
        meta = json.loads(raw)
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:  # removed by another process meanwhile
        return None, None, None
    except (OSError, ValueError, EOFError, RecursionError):
        return None, None, "not a readable .npy array with its .json sidecar"
    digest = meta.get("digest") if isinstance(meta, dict) else None
    if (
        not isinstance(digest, str)
        or len(digest) != 64
        or array.dtype != np.uint8
        or list(array.shape) != meta.get("shape")
        or (expected is not None and digest != expected)
        or fingerprint(array) != meta.get("fingerprint")
    ):
        return None, None, "its contents changed since they were verified"
    return array, digest, None


def _read_cached(path: Path, expected: str | None) -> tuple[np.ndarray, str] | None:
    """The decoded array at `path` and its digest if the entry is intact; a damaged entry is blamed and removed."""
    array, digest, damage = _open_cached(path, expected)
    if damage:
        _blame_cache(path, damage)
    return None if array is None or digest is None else (array, digest)


def _blame_cache(path: Path, why: str) -> None:
    failed = _remove_entry(path)
    done = "removed" if failed is None else f"could not be removed ({failed})"
    warnings.warn(f"{path}: damaged decoded cache entry ({why}); {done}; rebuilt from the verified source",
                  DataWarning, stacklevel=4)


def _remove_entry(path: Path) -> str | None:
    """Remove a decoded cache entry (.npy and sidecar); None, or why it could not be (a read-only cache...)."""
    for p in (path, _sidecar(path)):
        try:
            p.unlink(missing_ok=True)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _write_cached(path: Path, array: np.ndarray, digest: str) -> None:
    """Cache a verified decoded array (.npy, then its sidecar; a reader needs both); stale entries go."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as out:
            np.save(out, array, allow_pickle=False)
        meta = {"shape": list(array.shape), "digest": digest, "fingerprint": fingerprint(array)}
        with atomic_write(_sidecar(path)) as out:
            out.write(json.dumps(meta).encode())
        role = path.stem.rsplit("-", 1)[0]
        for stale in path.parent.glob(f"{role}-*.npy"):
            if stale != path:
                _remove_entry(stale)
    except OSError:
        pass  # a read-only or full cache only costs speed


def _load_file(spec: DatasetSpec, file: FileSpec, source: Path, expected: str | None) -> tuple[np.ndarray, str]:
    """The decoded array of `source` and its digest, from the decoded cache when intact, else read and cached."""
    decoded = _decoded_path(spec, file, source, expected)
    cached = _read_cached(decoded, expected)
    if cached is not None:
        return cached
    array, digest = read_verified(spec, file, source, expected)
    _write_cached(decoded, array, digest)
    return array, digest


def _check(spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.shape[1:] != spec.image_shape:
        raise DataFormatError(f"{where}: images are {images.shape[1:]}, expected {spec.image_shape}")
    if len(images) != len(labels):
        raise DataFormatError(f"{where}: {len(images):,} images but {len(labels):,} labels")
    if len(labels) and int(labels.max()) >= len(spec.class_names):
        raise DataFormatError(
            f"{where}: label {int(labels.max())} found, but {spec.name} has classes 0 to {len(spec.class_names) - 1}"
        )


# ---------------------------------------------------------------- loading


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    spec = get_dataset("digits")
    bunch = load_digits()
    images = bunch.images.astype(np.uint8)
    labels = bunch.target.astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(labels))  # a fixed 80/20 split
    cut = int(0.8 * len(labels))
    train, test = order[:cut], order[cut:]
    return Dataset(spec, images[train], labels[train], images[test], labels[test], dict.fromkeys(ROLES, "bundled"))


def resolve(name: str | Path, checksums: dict[str, str] | None = None) -> DatasetSpec:
    """The dataset called `name`, or the dataset in folder `name` (four IDX files and an optional classes.txt).

    `checksums` (file name -> payload SHA-256, as a model records them) pins a folder dataset's files.
    """
    if isinstance(name, str) and name in DATASETS:
        return DATASETS[name]
    folder = Path(name).expanduser()
    if not folder.is_dir():
        if isinstance(name, Path) or os.sep in name:  # a folder dataset's folder, gone (moved, say)
            raise DataNotFoundError(f"data folder {folder} does not exist (moved?); give the folder where its four "
                                    f"IDX files are now as data_dir", cli=f"data folder {folder} does not exist "
                                    f"(moved?); pass --data-dir DIR, the folder where its four IDX files are now")
        return get_dataset(str(name))  # raises, listing the names
    return folder_spec(folder, checksums)


def _folder_file(folder: Path, role: str, canonical: str) -> Path:
    spec = FileSpec(role, canonical, None)
    if found := find_file(spec, folder):
        return found
    part, kind = role.split("_")
    words = ("train",) if part == "train" else ("test", "t10k")
    matches = sorted(p for p in folder.iterdir() if p.is_file() and kind[:-1] in p.name.lower()
                     and any(w in p.name.lower() for w in words) and "idx" in p.name.lower())
    if len(matches) != 1:
        raise DataNotFoundError(
            f"{folder}: expected one {part} {kind} IDX file (e.g. {canonical}.gz), found "
            + (", ".join(p.name for p in matches) if matches else "none")
        )
    return matches[0]


def folder_spec(folder: Path, checksums: dict[str, str] | None = None) -> DatasetSpec:
    """A DatasetSpec for a folder of four IDX files: shape from the images, classes from classes.txt or labels."""
    from .datasets import MNIST_NAMES

    folder = folder.resolve()
    paths = {role: _folder_file(folder, role, name) for role, name in zip(ROLES, MNIST_NAMES)}
    names = {role: p.name.removesuffix(".gz") for role, p in paths.items()}
    files = tuple(FileSpec(role, names[role], (checksums or {}).get(names[role])) for role in ROLES)
    # Shape, classes and validation size are known once the files are read (_complete_folder_spec).
    return DatasetSpec(name=folder.name or "folder", title=f"IDX dataset in {folder}", files=files, mirrors=(),
                       class_names=(), image_shape=(0, 0), folder=str(folder), source=str(folder))


def _complete_folder_spec(spec: DatasetSpec, arrays: dict[str, np.ndarray]) -> DatasetSpec:
    """A folder dataset's spec with what its files say: image shape, classes (classes.txt or the labels)."""
    assert spec.folder is not None  # only folder datasets are completed here
    top = max(int(arrays[r].max()) if len(arrays[r]) else 0 for r in ("train_labels", "test_labels"))
    if top < 1:
        raise DataFormatError(f"{spec.folder}: the labels hold a single class; at least two are needed")
    n_train = len(arrays["train_labels"])
    return replace(spec, image_shape=tuple(arrays["train_images"].shape[1:]),
                   class_names=_class_names(Path(spec.folder), top + 1), validation_size=min(5000, n_train // 10))


def _class_names(folder: Path, k: int) -> tuple[str, ...]:
    """The first `k` names in the folder's classes.txt (one per line), else 0..k-1; reads only what k names need."""
    path = folder / "classes.txt"
    if not os.path.lexists(path):
        return tuple(str(i) for i in range(k))
    limit = 4 * (MAX_CLASS_NAME + 2) * k + (1 << 16)  # k names of 4-byte characters, and room for blank lines
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or device would block or never end
            raise DataFormatError(f"{path}: not a regular file")
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
        if len(raw) > limit:  # keep whole lines only: the cut may fall inside a character
            raw = raw[: raw.rfind(b"\n", 0, limit) + 1]
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise DataFormatError(f"{path}: not readable UTF-8 text ({why})") from None
    names = [line.strip() for line in text.split("\n") if line.strip()]  # only \n ends a line (not U+2028...)
    if len(names) < k or any(len(n) > MAX_CLASS_NAME for n in names[:k]):
        raise DataFormatError(
            f"{path}: expected at least {k} class names (one per line, at most {MAX_CLASS_NAME} characters), "
            f"found {len(names)}"
        )
    bad = next((n for n in names[:k] if any(unicodedata.category(c) == "Cc" for c in n)), None)
    if bad is not None:  # NUL, ESC, DEL...: no font draws them and a terminal obeys them
        raise DataFormatError(f"{path}: class name {bad!r} holds a control character")
    twice = next((n for i, n in enumerate(names[:k]) if n in names[:i]), None)
    if twice is not None:  # an answer naming it could be either class
        raise DataFormatError(f"{path}: class name {twice!r} is given twice; each class needs a name of its own")
    return tuple(names[:k])


def load_dataset(
    name: str | Path = "mnist",
    data_dir: str | Path | None = None,
    *,
    download: bool | None = None,
    progress: Callable | None = None,
    checksums: dict[str, str] | None = None,
) -> Dataset:
    """Load a dataset by name (or from a folder of four IDX files), downloading and verifying it if needed.

    `download=False` (or $MNIST_SOFTMAX_OFFLINE=1) never touches the network. `progress(url)` may return a
    per-transfer callback (see download.fetch_file). `checksums` pins a folder dataset's files to the payload
    digests a model recorded. Raises DataNotFoundError saying how to get the data.
    """
    moved = data_dir and name not in DATASETS and not Path(name).expanduser().is_dir()
    spec = resolve(data_dir if moved and data_dir else name, checksums)  # a folder dataset found again at data_dir
    if spec.folder:
        data_dir = None
    if spec.name == "digits" and not spec.folder:
        return _load_digits()
    if download is None:
        download = os.environ.get(OFFLINE_ENV, "") in ("", "0")
    folders = _folders(spec, data_dir)
    arrays, sources, digests, problems = {}, {}, {}, []
    for f in spec.files:
        for kind, folder in folders:
            path = find_file(f, folder) if not spec.folder else _folder_file(folder, f.role, f.name)
            if path is None:
                continue
            try:
                arrays[f.role], digests[f.name] = _load_file(spec, f, path, _expected(spec, f, kind))
                sources[f.role] = str(path)
                break
            except DataError as exc:
                if kind == "explicit":
                    raise
                problems.append(str(exc))
                if kind == "cache":  # a damaged download in our own cache: remove it and fetch it again
                    path.unlink(missing_ok=True)
    missing = [f for f in spec.files if f.role not in arrays]
    if missing and folders[0][0] == "explicit":
        raise DataNotFoundError(f"{folders[0][1]} lacks {', '.join(f.name for f in missing)} (.gz or not)")
    if missing:
        if not download:
            raise _not_found(spec, problems)
        fetched = _download(spec, missing, progress, problems)
        for f in missing:
            path = fetched[f.role]
            arrays[f.role], digests[f.name] = _load_file(spec, f, path, _expected(spec, f, "cache"))
            sources[f.role] = str(path)
    if spec.folder:
        spec = _complete_folder_spec(spec, arrays)
    for part in ("train", "test"):
        _check(spec, arrays[f"{part}_images"], arrays[f"{part}_labels"], str(Path(sources[f"{part}_images"]).parent))
    given = [str(d) for kind, d in folders if kind in ("explicit", "environment") and not spec.folder]
    data_dir = given[0] if given and all(Path(p).parent == Path(given[0]) for p in sources.values()) else None
    return Dataset(spec, **arrays, sources=sources, digests=digests, data_dir=data_dir)


def _not_found(spec: DatasetSpec, problems: list[str]) -> DataNotFoundError:
    seen = f" (passed over: {'; '.join(problems)})" if problems else ""
    return DataNotFoundError(
        f"{spec.name} is not in the cache ({dataset_cache(spec)}) and downloads are off{seen}; fetch it once while "
        f"online (load_dataset({spec.name!r}, download=True)), or give the folder holding its four IDX files "
        f"(data_dir=DIR)",
        cli=f"{spec.name} is not in the cache ({dataset_cache(spec)}) and downloads are off{seen}; run "
        f"'mnist-softmax data fetch --dataset {spec.name}' while online, pass --data-dir DIR with the four IDX "
        f"files (or 'data fetch --from DIR' to import them), or use --dataset mnist, which ships with the package",
    )


def _download(spec: DatasetSpec, missing: list[FileSpec], progress, problems: list[str]) -> dict[str, Path]:
    """Fetch the missing files (or the dataset's archive) into the cache; returns role -> path."""
    from .download import fetch_archive, fetch_file

    cache = dataset_cache(spec)
    try:
        if spec.archive:
            with fetch_archive(spec.archive, mirrors(spec), cache.parent, progress=progress) as archive:
                extract_archive(archive, spec.archive)
            return {f.role: cache / f"{f.name}.gz" for f in missing}
        return {f.role: fetch_file(f, mirrors(spec), cache, progress=progress)[0] for f in missing}
    except PermissionError as exc:
        raise OutputError(f"cannot write to the cache {cache}: {exc.strerror}") from None
    except DownloadError as exc:
        before = f" (passed over: {'; '.join(problems)})" if problems else ""
        raise DownloadError(
            f"{exc}{before}; offline? give data_dir=DIR with the four IDX files",
            cli=f"{exc}{before}; offline? pass --data-dir DIR with the four IDX files, import them with "
            f"'mnist-softmax data fetch --dataset {spec.name} --from DIR', or use --dataset mnist, which ships with "
            f"the package",
        ) from None


def extract_archive(archive: Path, spec_archive) -> list[str]:
    """Extract, from a verified archive, the members of every dataset that lives in it, into their caches.

    Each member is streamed to a temporary file, checked as IDX, and pinned by its payload digest in the
    dataset's PINNED.json, so later loads verify against what the verified archive held. Returns the names.
    """
    import zipfile

    extracted = []
    try:
        with zipfile.ZipFile(archive) as z:
            for spec in (s for s in DATASETS.values() if s.archive == spec_archive):
                cache = dataset_cache(spec)
                cache.mkdir(parents=True, exist_ok=True)
                pins = _pins(spec)
                for f in spec.files:
                    target = cache / f"{f.name}.gz"
                    assert f.member is not None  # every file of an archive dataset names its member
                    try:
                        info = z.getinfo(f.member)
                    except KeyError:
                        raise DataFormatError(f"{archive}: has no member {f.member}") from None
                    if info.file_size > (1 << 31):
                        raise DataFormatError(f"{archive}: member {f.member} claims {info.file_size:,} bytes")
                    with atomic_write(target) as out:
                        with z.open(info) as member:
                            shutil.copyfileobj(member, out, 1 << 20)
                        out.flush()
                        ndim, dtype = (3, "u1") if f.role.endswith("images") else (1, "u1")
                        try:
                            pins[f.name] = read_idx(out.name, ndim=ndim, dtype=dtype).sha256
                        except DataFormatError as exc:  # name the member, not our hidden temporary file
                            why = str(exc).removeprefix(f"{out.name}: ")
                            raise DataFormatError(f"{archive}: member {f.member}: {why}") from None
                    extracted.append(f.name)
                with atomic_write(cache / PINS) as out:
                    out.write(json.dumps(pins, indent=1, sort_keys=True).encode())
    except (zipfile.BadZipFile, NotImplementedError, EOFError) as exc:
        raise DataFormatError(f"{archive}: not a readable zip archive ({exc})") from None
    return extracted


def import_dataset(name: str, folder: str | Path) -> Dataset:
    """Copy a dataset's files from `folder` into the cache, each verified first (`data fetch --from DIR`).

    For a dataset distributed as one archive, `folder` holds the archive (EMNIST's gzip.zip), which is verified
    against its published digest and size, then extracted.
    """
    spec = resolve(name)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataNotFoundError(f"data folder {folder} does not exist")
    cache = dataset_cache(spec)
    if spec.archive:
        archive = folder / spec.archive.name
        if not archive.is_file():
            raise DataNotFoundError(f"{folder} lacks {spec.archive.name}, the archive {spec.name} is published in")
        from .download import check_archive

        check_archive(archive, spec.archive)
        extract_archive(archive, spec.archive)
    else:
        for f in spec.files:
            source = find_file(f, folder)
            if source is None:
                raise DataNotFoundError(f"{folder} lacks {f.name} (.gz or not)")
            read_verified(spec, f, source, f.sha256)
            cache.mkdir(parents=True, exist_ok=True)
            target = cache / source.name
            try:
                with atomic_write(target) as out, open(source, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
            except OSError as exc:
                raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    return load_dataset(spec.name, download=False)


def verify_dataset(name: str, data_dir: str | Path | None = None) -> list[tuple[str, str, str | None]]:
    """Check every file a load would use, and its decoded cache entry: [(what, path or '', problem or None)].

    A source file is re-hashed against its pin; a decoded cache entry is compared, array for array, with the
    verified source, and removed when it differs (the next load rebuilds it).
    """
    spec = resolve(name)
    if not spec.files:
        return []
    folders = _folders(spec, data_dir)
    results: list[tuple[str, str, str | None]] = []
    for f in spec.files:
        found = [(kind, p) for kind, d in folders if (p := find_file(f, d))]
        if not found:
            results.append((f.name, "", "missing"))
            continue
        failures = []
        for kind, path in found:  # as a load does: a file that is not this dataset's is passed over
            try:
                expected = _expected(spec, f, kind)
                array, digest = read_verified(spec, f, path, expected)
                break
            except DataError as exc:
                failures.append((str(path), str(exc).removeprefix(f"{path}: ")))
                if kind == "explicit":
                    break
        else:
            results.append((f.name, *failures[0]))
            continue
        if kind == "explicit" and failures:
            results.append((f.name, *failures[0]))
            continue
        results.append((f.name, str(path), None))
        decoded = _decoded_path(spec, f, path, expected)
        cached, _, damage = _open_cached(decoded, expected)
        if cached is not None and (cached.shape != array.shape or not np.array_equal(cached, array)):
            damage = "differs from its verified source"
        if cached is None and not damage:
            _remove_entry(decoded)  # absent, or a killed load's .npy without its sidecar: nothing to report
            continue
        problem = None
        if damage:
            failed = _remove_entry(decoded)
            done = "removed, rebuilt on next load" if failed is None else f"could not be removed: {failed}"
            problem = f"damaged ({damage}): {done}"
        results.append((f"{f.name} (decoded cache)", str(decoded), problem))
    return results


def with_pins(spec: DatasetSpec, digests: dict[str, str]) -> DatasetSpec:
    """`spec` with its files pinned to `digests` (file name -> SHA-256), as tests and folder datasets need."""
    return replace(spec, files=tuple(replace(f, sha256=digests.get(f.name, f.sha256)) for f in spec.files))
