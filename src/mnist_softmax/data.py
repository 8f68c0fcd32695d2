"""Finding, verifying, caching and loading datasets.

Where the files come from, in order: an explicit data folder (`data_dir` or $MNIST_SOFTMAX_DATA_DIR), then the
per-dataset cache ($MNIST_SOFTMAX_CACHE_DIR, else $XDG_CACHE_HOME/mnist-softmax, else ~/.cache/mnist-softmax),
then folders a system package fills (Debian's dataset-fashion-mnist), then a download from the mirrors. A file is
hashed when first read; its decoded arrays are then cached as .npy beside the downloads, keyed by the source file's
path, size and modification time, so a warm load is a memory map rather than a gzip inflate.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .datasets import ROLES, DatasetSpec, FileSpec, get_dataset
from .errors import ChecksumError, DataFormatError, DataNotFoundError, DownloadError, OutputError
from .files import atomic_write
from .idx import read_idx

DATA_DIR_ENV = "MNIST_SOFTMAX_DATA_DIR"
CACHE_DIR_ENV = "MNIST_SOFTMAX_CACHE_DIR"
MIRRORS_ENV = "MNIST_SOFTMAX_MIRRORS"
OFFLINE_ENV = "MNIST_SOFTMAX_OFFLINE"


@dataclass(frozen=True)
class Dataset:
    """A loaded dataset: uint8 images (n, h, w) and integer labels (n,), with where each file came from."""

    spec: DatasetSpec
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    sources: dict[str, str] = field(default_factory=dict)  # role -> path (or "bundled")

    @property
    def checksums(self) -> dict[str, str]:
        """Payload SHA-256 of each file, as pinned in the dataset table and verified on first read."""
        return {f.name: f.sha256 for f in self.spec.files}

    def split(self, validation_size: int | None = None):
        """The training set cut into (train_images, train_labels, val_images, val_labels).

        The validation set is the *last* `validation_size` training images (the tutorial's 55k/5k for MNIST).
        """
        size = self.spec.validation_size if validation_size is None else validation_size
        n = len(self.train_labels)
        if not 0 <= size < n:
            from .errors import UsageError

            raise UsageError(f"validation size must be between 0 and {n - 1} for {self.spec.name}, got {size}")
        cut = n - size
        return self.train_images[:cut], self.train_labels[:cut], self.train_images[cut:], self.train_labels[cut:]


def cache_root() -> Path:
    """The folder holding one cache folder per dataset."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "mnist-softmax"


def dataset_cache(spec: DatasetSpec) -> Path:
    return cache_root() / spec.name


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


def _decoded_path(spec: DatasetSpec, file: FileSpec, source: Path) -> Path:
    st = source.stat()
    key = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{file.sha256}"
    return dataset_cache(spec) / "decoded" / f"{file.role}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Write an .npy next to its final place and rename it there; stale versions of the same role are removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as out:
        np.save(out, array, allow_pickle=False)
    role = path.stem.rsplit("-", 1)[0]
    for stale in path.parent.glob(f"{role}-*.npy"):
        if stale != path:
            stale.unlink(missing_ok=True)


def _read_verified(file: FileSpec, source: Path) -> np.ndarray:
    ndim = 3 if file.role.endswith("images") else 1
    decoded = read_idx(source, ndim=ndim, dtype="u1")
    if decoded.sha256 != file.sha256:
        raise ChecksumError(
            f"{source}: checksum mismatch: the decompressed payload has SHA-256 {decoded.sha256}, expected "
            f"{file.sha256} for {file.name}; the file is corrupt or is not {file.name} (delete it to re-download)"
        )
    return decoded.array


def _load_file(spec: DatasetSpec, file: FileSpec, source: Path) -> np.ndarray:
    """The decoded array of `source`, from the decoded cache when it is current, else read, verified and cached."""
    decoded = _decoded_path(spec, file, source)
    if decoded.is_file():
        try:
            return np.load(decoded, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            decoded.unlink(missing_ok=True)  # a damaged cache entry is rebuilt from the source
    return _cache_decoded(spec, file, source, _read_verified(file, source))


def _cache_decoded(spec: DatasetSpec, file: FileSpec, source: Path, array: np.ndarray) -> np.ndarray:
    try:
        _save_npy_atomic(_decoded_path(spec, file, source), array)
    except OSError:
        pass  # a read-only cache only costs speed
    return array


def _check(spec: DatasetSpec, images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if images.shape[1:] != spec.image_shape:
        raise DataFormatError(f"{where}: images are {images.shape[1:]}, expected {spec.image_shape}")
    if len(images) != len(labels):
        raise DataFormatError(f"{where}: {len(images):,} images but {len(labels):,} labels")
    if len(labels) and int(labels.max()) >= len(spec.class_names):
        raise DataFormatError(
            f"{where}: label {int(labels.max())} found, but {spec.name} has classes 0 to {len(spec.class_names) - 1}"
        )


def locate(spec: DatasetSpec, data_dir: str | Path | None = None) -> dict[str, Path | None]:
    """Where each file of `spec` is now (None where it must still be downloaded)."""
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV)
    if data_dir:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataNotFoundError(f"data folder {folder} does not exist")
        return {f.role: find_file(f, folder) for f in spec.files}
    folders = [dataset_cache(spec), *map(Path, spec.system_dirs)]
    return {f.role: next((p for d in folders if (p := find_file(f, d))), None) for f in spec.files}


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


def load_dataset(
    name: str = "mnist",
    data_dir: str | Path | None = None,
    *,
    download: bool | None = None,
    progress: Callable | None = None,
) -> Dataset:
    """Load a dataset by name, downloading and verifying it if needed.

    `download=False` (or $MNIST_SOFTMAX_OFFLINE=1) never touches the network. `progress(url)` may return a
    per-transfer callback (see download.fetch_file). Raises DataNotFoundError saying how to get the data.
    """
    spec = get_dataset(name)
    if spec.name == "digits":
        return _load_digits()
    if download is None:
        download = os.environ.get(OFFLINE_ENV, "") in ("", "0")
    explicit = data_dir or os.environ.get(DATA_DIR_ENV)
    found = locate(spec, data_dir)
    missing = [f for f in spec.files if found[f.role] is None]
    if missing and explicit:
        raise DataNotFoundError(
            f"{Path(explicit).expanduser()} lacks {', '.join(f.name for f in missing)} (.gz or not)"
        )
    if missing and not download:
        raise DataNotFoundError(
            f"{spec.name} is not in the cache ({dataset_cache(spec)}) and downloads are off; run "
            f"'mnist-softmax data fetch --dataset {spec.name}' while online, pass --data-dir DIR with the four IDX "
            f"files, or use --dataset digits, which needs no files"
        )
    arrays = {}
    for f in spec.files:
        if found[f.role] is None:
            from .download import fetch_file

            try:
                found[f.role], fetched = fetch_file(f, mirrors(spec), dataset_cache(spec), progress=progress)
            except PermissionError as exc:
                raise OutputError(f"cannot write to the cache {dataset_cache(spec)}: {exc.strerror}") from None
            except DownloadError as exc:
                raise DownloadError(
                    f"{exc}; offline? pass --data-dir DIR with the four IDX files, or use --dataset digits"
                ) from None
            arrays[f.role] = _cache_decoded(spec, f, found[f.role], fetched.array)
        else:
            arrays[f.role] = _load_file(spec, f, found[f.role])
    for part in ("train", "test"):
        _check(spec, arrays[f"{part}_images"], arrays[f"{part}_labels"], str(found[f"{part}_images"].parent))
    return Dataset(spec, **arrays, sources={role: str(p) for role, p in found.items()})


def verify_dataset(name: str, data_dir: str | Path | None = None) -> list[tuple[str, str, str | None]]:
    """Re-hash every present file of a dataset: [(file name, path or '', problem or None)]."""
    spec = get_dataset(name)
    found = locate(spec, data_dir)
    results = []
    for f in spec.files:
        path = found[f.role]
        if path is None:
            results.append((f.name, "", "missing"))
            continue
        try:
            _read_verified(f, path)
            results.append((f.name, str(path), None))
        except (ChecksumError, DataFormatError) as exc:
            results.append((f.name, str(path), str(exc).removeprefix(f"{path}: ")))
    return results
