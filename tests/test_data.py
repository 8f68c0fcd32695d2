import os
import shutil

import numpy as np
import pytest

from conftest import make_tiny
from mnist_softmax import data, load_dataset
from mnist_softmax.datasets import DATASETS, get_dataset
from mnist_softmax.errors import ChecksumError, DataFormatError, DataNotFoundError, UsageError
from mnist_softmax.idx import write_idx


def test_load_from_data_dir_and_split(tiny):
    spec, folder = tiny
    ds = load_dataset("tiny", folder)
    assert ds.train_images.shape == (60, 8, 8) and ds.train_images.dtype == np.uint8
    assert ds.test_labels.shape == (20,)
    X, y, Xv, yv = ds.split()
    assert len(y) == 54 and len(yv) == 6
    np.testing.assert_array_equal(Xv, ds.train_images[-6:])  # the *last* images validate
    assert ds.sources["train_images"] == str(folder / "train-images-idx3-ubyte.gz")
    with pytest.raises(UsageError, match="validation size must be between 0 and 59 for tiny, got 60"):
        ds.split(60)


def test_data_dir_from_environment(tiny, monkeypatch):
    spec, folder = tiny
    monkeypatch.setenv("MNIST_SOFTMAX_DATA_DIR", str(folder))
    assert len(load_dataset("tiny").train_labels) == 60


def test_raw_and_dotted_spellings(tmp_path, monkeypatch):
    folder = tmp_path / "raw"
    spec = make_tiny(folder, compress=False)
    for f in folder.iterdir():  # train-images-idx3-ubyte -> train-images.idx3-ubyte
        f.rename(folder / f.name.replace("-idx", ".idx", 1))
    monkeypatch.setitem(DATASETS, "tiny", spec)
    ds = load_dataset("tiny", folder)
    assert ds.sources["test_labels"].endswith("t10k-labels.idx1-ubyte")


def test_missing_files_in_data_dir(tiny):
    spec, folder = tiny
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match=r"lacks t10k-labels-idx1-ubyte \(.gz or not\)"):
        load_dataset("tiny", folder)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_dataset("tiny", folder / "nope")


def test_checksum_mismatch_names_file_and_digests(tiny):
    spec, folder = tiny
    write_idx(folder / "train-labels-idx1-ubyte.gz", (np.arange(60) % 3).astype(np.uint8)[::-1], compress=True)
    with pytest.raises(ChecksumError, match=r"train-labels-idx1-ubyte.gz: checksum mismatch: .* expected "
                                            + spec.file("train_labels").sha256):
        load_dataset("tiny", folder)


def repin(spec, folder):
    """The spec with checksums re-pinned to the files now in `folder`, so structural checks are what fails."""
    import dataclasses

    from conftest import payload_sha256
    from mnist_softmax.datasets import FileSpec

    files = tuple(FileSpec(f.role, f.name, payload_sha256(folder / f"{f.name}.gz")) for f in spec.files)
    return dataclasses.replace(spec, files=files)


def test_inconsistent_counts_and_labels(tmp_path, monkeypatch):
    folder = tmp_path / "bad"
    spec = make_tiny(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.zeros(19, np.uint8), compress=True)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.full(60, 7, np.uint8), compress=True)
    monkeypatch.setitem(DATASETS, "tiny", repin(spec, folder))
    with pytest.raises(DataFormatError, match="label 7 found, but tiny has classes 0 to 2"):
        load_dataset("tiny", folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", (np.arange(60) % 3).astype(np.uint8), compress=True)
    monkeypatch.setitem(DATASETS, "tiny", repin(spec, folder))
    with pytest.raises(DataFormatError, match="20 images but 19 labels"):
        load_dataset("tiny", folder)


def test_decoded_cache_is_used_and_invalidated(tiny, isolated_cache):
    spec, folder = tiny
    first = load_dataset("tiny", folder)
    decoded = sorted((isolated_cache / "tiny" / "decoded").glob("*.npy"))
    assert len(decoded) == 4
    warm = load_dataset("tiny", folder)
    assert isinstance(warm.train_images, np.memmap)  # served from the cache, not re-read
    np.testing.assert_array_equal(warm.train_images, first.train_images)
    # A changed source file (new mtime) is read, verified and re-cached; the stale entry goes.
    src = folder / "train-images-idx3-ubyte.gz"
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    again = load_dataset("tiny", folder)
    assert not isinstance(again.train_images, np.memmap)
    assert len(list((isolated_cache / "tiny" / "decoded").glob("train_images-*.npy"))) == 1
    assert not list((isolated_cache / "tiny" / "decoded").glob(".*"))  # no temporary files left


def test_damaged_decoded_cache_is_rebuilt(tiny, isolated_cache):
    spec, folder = tiny
    load_dataset("tiny", folder)
    for f in (isolated_cache / "tiny" / "decoded").glob("*.npy"):
        f.write_bytes(b"garbage")
    ds = load_dataset("tiny", folder)
    assert ds.train_images.shape == (60, 8, 8)


def test_cache_and_system_dirs_are_searched(tiny, isolated_cache, monkeypatch, tmp_path):
    spec, folder = tiny
    import dataclasses

    system = tmp_path / "system"
    shutil.copytree(folder, system)
    monkeypatch.setitem(DATASETS, "tiny", dataclasses.replace(spec, system_dirs=(str(system),)))
    ds = load_dataset("tiny", download=False)
    assert ds.sources["train_images"].startswith(str(system))
    cached = isolated_cache / "tiny"
    shutil.copytree(folder, cached, dirs_exist_ok=True)
    ds = load_dataset("tiny", download=False)
    assert ds.sources["train_images"].startswith(str(cached))  # the cache comes before system folders


def test_offline_and_nothing_cached_says_what_to_do(monkeypatch):
    monkeypatch.setenv("MNIST_SOFTMAX_OFFLINE", "1")
    with pytest.raises(DataNotFoundError) as info:
        load_dataset("mnist")
    message = str(info.value)
    assert "mnist-softmax data fetch --dataset mnist" in message
    assert "--data-dir" in message and "--dataset digits" in message


def test_cache_root_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_SOFTMAX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_root() == tmp_path / "xdg" / "mnist-softmax"
    assert data.dataset_cache(get_dataset("fashion-mnist")) == tmp_path / "xdg" / "mnist-softmax" / "fashion-mnist"


def test_unknown_dataset():
    with pytest.raises(UsageError, match="unknown dataset 'kmnist2'; choose from mnist, fashion-mnist, digits"):
        load_dataset("kmnist2")


def test_verify_reports_each_file(tiny):
    spec, folder = tiny
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"junk")
    results = dict((name, problem) for name, path, problem in data.verify_dataset("tiny", folder))
    assert results["train-images-idx3-ubyte"] is None
    assert "not an IDX file" in results["t10k-images-idx3-ubyte"]


def test_digits_is_bundled():
    ds = load_dataset("digits")
    assert ds.train_images.shape[1:] == (8, 8) and ds.train_images.max() == 16
    assert len(ds.train_labels) + len(ds.test_labels) == 1797
    assert ds.sources["train_images"] == "bundled"


def test_real_mnist_verifies_and_loads_warm(mnist_dir):
    ds = load_dataset("mnist", mnist_dir)
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert np.bincount(ds.train_labels).tolist()[:2] == [5923, 6742]
    assert all(problem is None for _, _, problem in data.verify_dataset("mnist", mnist_dir))
    warm = load_dataset("mnist", mnist_dir)
    assert isinstance(warm.train_images, np.memmap)


def test_real_fashion_mnist_from_system_package(fashion_dir):
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.sources["train_images"].startswith(str(fashion_dir))
    assert ds.train_images.shape == (60000, 28, 28) and len(set(ds.test_labels.tolist())) == 10
