import contextlib
import json
import os
import shutil
import time

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
    with pytest.warns(data.DataWarning, match="not a readable .npy array"):
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
        load_dataset("kmnist")
    message = str(info.value)  # a Python caller is told about Python arguments ...
    assert "load_dataset('kmnist', download=True)" in message and "data_dir=DIR" in message
    assert "--data-dir" not in message
    cli = info.value.cli  # ... and the command line about its options
    assert "mnist-softmax data fetch --dataset kmnist" in cli and "--data-dir DIR" in cli and "--from DIR" in cli


def test_mnist_ships_with_the_package(monkeypatch, isolated_cache):
    """No network, an empty cache: MNIST loads from the package's own verified copy."""
    monkeypatch.setenv("MNIST_SOFTMAX_MIRRORS", "http://127.0.0.1:9/")  # a closed port: any download would fail
    ds = load_dataset("mnist", download=False)
    bundled = data.bundled_dir(get_dataset("mnist"))
    assert bundled is not None and ds.sources["train_images"] == str(bundled / "train-images-idx3-ubyte.gz")
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_labels.shape == (10000,)
    assert ds.checksums == {f.name: f.sha256 for f in get_dataset("mnist").files}
    assert (bundled / "README.md").read_text().count("CC BY-SA 3.0") >= 1  # the licence travels with the data
    warm = load_dataset("mnist", download=False)  # decoded into the cache on first use
    assert isinstance(warm.train_images, np.memmap)


def _damage(path, change):
    array = np.load(path)
    np.save(path, change(array.copy()))


@pytest.mark.parametrize("change", [
    pytest.param(lambda a: (a.__setitem__((0,) * a.ndim, a[(0,) * a.ndim] ^ 1), a)[1], id="flipped-bit"),
    pytest.param(lambda a: np.roll(a, 1, axis=0), id="shifted-rows"),
    pytest.param(lambda a: np.where(np.arange(a.size).reshape(a.shape) == 0, -1, a).astype(np.int64),
                 id="int64-minus-1"),
])
def test_damaged_decoded_cache_is_detected_blamed_and_rebuilt(tiny, isolated_cache, change):
    spec, folder = tiny
    clean = load_dataset("tiny", folder)
    for npy in (isolated_cache / "tiny" / "decoded").glob("*.npy"):
        _damage(npy, change)
    with pytest.warns(data.DataWarning, match="damaged decoded cache entry") as caught:
        again = load_dataset("tiny", folder)
    assert len(caught) == 4 and all("rebuilt from the verified source" in str(w.message) for w in caught)
    for role in ("train_images", "train_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(getattr(again, role), getattr(clean, role))
        assert getattr(again, role).dtype == np.uint8
    rebuilt = load_dataset("tiny", folder)  # and the rebuilt cache is trusted again
    assert isinstance(rebuilt.train_images, np.memmap)


def _unblock_later(path, after=5.0):
    """Open a FIFO at `path` for writing after `after` seconds, which releases a reader blocked on it."""
    import threading

    def release():
        time.sleep(after)
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=release, daemon=True).start()


def _replace_with(make):
    def change(path):
        path.unlink()
        make(path)
    return change


@pytest.mark.parametrize("which, change, why", [
    ("npy", lambda p: p.write_bytes(b""), "not a readable"),
    ("npy", _replace_with(lambda p: p.mkdir()), "not a regular file"),
    ("npy", _replace_with(os.mkfifo), "not a regular file"),  # would block the reader forever
    ("npy", _replace_with(lambda p: p.symlink_to("/dev/zero")), "not a regular file"),
    ("json", _replace_with(lambda p: p.mkdir()), "not a regular file"),
    ("json", _replace_with(os.mkfifo), "not a regular file"),
    ("json", lambda p: p.write_text("[" * 2000 + "]" * 2000), "not a readable"),  # RecursionError
    ("json", lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "pad": "x" * 10_000})), "not a readable"),
    ("json", lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "digest": None})), "contents changed"),
    ("json", lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "digest": ["a"]})), "contents changed"),
    ("json", lambda p: p.write_bytes(b"\xff\xfe\x00"), "not a readable"),
], ids=["npy-empty", "npy-folder", "npy-fifo", "npy-dev-zero", "json-folder", "json-fifo", "json-deep", "json-long",
        "json-digest-null", "json-digest-list", "json-binary"])
def test_every_kind_of_damaged_cache_entry_is_blamed_and_rebuilt(tiny, isolated_cache, which, change, why):
    """Each entry damaged in each way: one warning naming it, the data still loads right, the cache heals."""
    spec, folder = tiny
    clean = load_dataset("tiny", folder)
    npy = next((isolated_cache / "tiny" / "decoded").glob("train_images-*.npy"))
    target = npy if which == "npy" else npy.with_suffix(".json")
    change(target)
    _unblock_later(target)  # should a reader block on a FIFO, the test fails instead of hanging
    started = time.monotonic()
    with pytest.warns(data.DataWarning, match=why) as caught:
        again = load_dataset("tiny", folder)
    assert time.monotonic() - started < 4
    np.testing.assert_array_equal(again.train_images, clean.train_images)
    folders = [p for p in (npy, npy.with_suffix(".json")) if p.is_dir()]
    assert len(caught) == 1 and ("could not be removed" in str(caught[0].message)) == bool(folders)
    if not folders:  # rebuilt: trusted again, silently
        assert isinstance(load_dataset("tiny", folder).train_images, np.memmap)
    problems = [p for _, _, p in data.verify_dataset("tiny", folder) if p]
    assert len(problems) == len(folders)


def test_a_read_only_cache_with_a_damaged_entry_still_loads(tiny, isolated_cache, monkeypatch):
    """Removing the damaged entry fails (read-only cache): the data loads from its source all the same."""
    import errno
    import pathlib

    spec, folder = tiny
    clean = load_dataset("tiny", folder)
    npy = next((isolated_cache / "tiny" / "decoded").glob("train_labels-*.npy"))
    _damage(npy, lambda a: np.roll(a, 1))
    unlink = pathlib.Path.unlink

    def read_only(self, missing_ok=False):
        if "decoded" in self.parts:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(pathlib.Path, "unlink", read_only)
    with pytest.warns(data.DataWarning, match=r"could not be removed \(Read-only file system\)"):
        again = load_dataset("tiny", folder)
    np.testing.assert_array_equal(again.train_labels, clean.train_labels)
    _damage(npy, lambda a: np.roll(a, 1))  # (the rebuilt entry was renamed into place: damage it again)
    problems = {name: p for name, _, p in data.verify_dataset("tiny", folder)}
    assert problems["train-labels-idx1-ubyte (decoded cache)"].endswith("could not be removed: Read-only file system")


def test_a_cache_root_that_is_a_file_is_no_cache_not_a_damaged_one(tiny, tmp_path, monkeypatch, recwarn):
    spec, folder = tiny
    (tmp_path / "not-a-folder").write_text("x")
    monkeypatch.setenv("MNIST_SOFTMAX_CACHE_DIR", str(tmp_path / "not-a-folder"))
    assert load_dataset("tiny", folder).train_images.shape == (60, 8, 8)
    assert all(p is None for _, _, p in data.verify_dataset("tiny", folder))
    assert not [w for w in recwarn if issubclass(w.category, data.DataWarning)]


def test_verify_checks_the_decoded_cache_too(tiny, isolated_cache):
    spec, folder = tiny
    load_dataset("tiny", folder)
    npy = next((isolated_cache / "tiny" / "decoded").glob("train_labels-*.npy"))
    _damage(npy, lambda a: np.roll(a, 1))
    results = {name: problem for name, path, problem in data.verify_dataset("tiny", folder)}
    assert results["train-labels-idx1-ubyte (decoded cache)"] == (
        "damaged (its contents changed since they were verified): removed, rebuilt on next load")
    assert results["train-images-idx3-ubyte (decoded cache)"] is None
    assert not npy.exists() and not npy.with_suffix(".json").exists()  # removed: the next load rebuilds it
    again = {name: problem for name, path, problem in data.verify_dataset("tiny", folder)}
    assert all(problem is None for problem in again.values())
    # An entry whose sidecar was rewritten to match wrong contents passes the cheap check; verify still finds it.
    load_dataset("tiny", folder)
    npy = next((isolated_cache / "tiny" / "decoded").glob("test_labels-*.npy"))
    wrong = np.roll(np.load(npy), 1)
    np.save(npy, wrong)
    meta = json.loads(npy.with_suffix(".json").read_text())
    npy.with_suffix(".json").write_text(json.dumps({**meta, "fingerprint": data.fingerprint(wrong)}))
    results = {name: problem for name, path, problem in data.verify_dataset("tiny", folder)}
    assert results["t10k-labels-idx1-ubyte (decoded cache)"].startswith("damaged (differs from its verified source)")


def test_environment_folder_of_another_dataset_is_passed_over(tiny, tmp_path, monkeypatch, isolated_cache):
    """$MNIST_SOFTMAX_DATA_DIR set for one dataset must not break another whose files it doesn't hold."""
    import dataclasses

    spec, folder = tiny
    other_folder = tmp_path / "other"
    other = dataclasses.replace(make_tiny(other_folder, seed=1), name="other")
    monkeypatch.setitem(DATASETS, "other", other)
    shutil.copytree(other_folder, isolated_cache / "other")  # "other" is in the cache
    monkeypatch.setenv("MNIST_SOFTMAX_DATA_DIR", str(folder))  # ... and the variable points at tiny's files
    ds = load_dataset("other", download=False)
    assert ds.sources["train_images"].startswith(str(isolated_cache / "other"))
    assert (folder / "train-images-idx3-ubyte.gz").exists()  # tiny's good files are untouched
    assert load_dataset("tiny", download=False).sources["train_images"].startswith(str(folder))
    assert all(problem is None for _, _, problem in data.verify_dataset("other"))  # verify checks what loads
    # A NAME/ subfolder of the variable's folder is that dataset's own.
    shutil.copytree(other_folder, folder / "other")
    assert load_dataset("other", download=False).sources["train_images"].startswith(str(folder / "other"))


def test_explicit_folder_of_another_dataset_says_whose_files_they_are(mnist_dir):
    with pytest.raises(ChecksumError) as info:
        load_dataset("fashion-mnist", mnist_dir)
    assert "it is mnist's train-images-idx3-ubyte" in str(info.value)
    assert "delete" not in str(info.value)


def test_import_from_a_folder_verifies_then_copies(tiny, tmp_path, isolated_cache):
    spec, folder = tiny
    ds = data.import_dataset("tiny", folder)
    assert ds.sources["train_images"] == str(isolated_cache / "tiny" / "train-images-idx3-ubyte.gz")
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    write_idx(bad / "t10k-labels-idx1-ubyte.gz", np.zeros(20, np.uint8), compress=True)
    shutil.rmtree(isolated_cache / "tiny")
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz: checksum mismatch"):
        data.import_dataset("tiny", bad)
    assert not (isolated_cache / "tiny" / "t10k-labels-idx1-ubyte.gz").exists()


def test_a_folder_is_a_dataset(tmp_path):
    folder = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for part, n in (("train", 90), ("t10k", 30)):
        labels = (np.arange(n) % 3).astype(np.uint8)
        images = rng.integers(0, 30, (n, 16, 12)).astype(np.uint8)
        folder.mkdir(exist_ok=True)
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", images, compress=True)
        write_idx(folder / f"{part}-labels-idx1-ubyte", labels)
    (folder / "classes.txt").write_text("circle\nsquare\ntriangle\n")
    ds = load_dataset(folder)
    assert ds.spec.image_shape == (16, 12) and ds.spec.class_names == ("circle", "square", "triangle")
    assert ds.spec.validation_size == 9 and ds.spec.folder == str(folder.resolve())
    assert set(ds.checksums) == {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                                 "t10k-labels-idx1-ubyte"}
    pinned = load_dataset(folder, checksums=ds.checksums)  # as a model that recorded them loads it again
    np.testing.assert_array_equal(pinned.test_images, ds.test_images)
    write_idx(folder / "t10k-labels-idx1-ubyte", (np.arange(30) % 2).astype(np.uint8))  # the data changed
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte: checksum mismatch"):
        load_dataset(folder, checksums=ds.checksums)
    moved = folder.rename(tmp_path / "moved")  # a run's recorded folder moved: found at data_dir, still pinned
    with pytest.raises(DataNotFoundError, match=r"data folder .*shapes does not exist \(moved\?\)"):
        load_dataset(str(folder), checksums=ds.checksums)
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte: checksum mismatch"):
        load_dataset(str(folder), moved, checksums=ds.checksums)
    folder = moved
    (folder / "classes.txt").write_text("only-one\n")
    with pytest.raises(DataFormatError, match="expected at least 3 class names"):
        load_dataset(folder)


def _three_class_folder(folder):
    rng = np.random.default_rng(0)
    folder.mkdir()
    for part, n in (("train", 30), ("t10k", 9)):
        write_idx(folder / f"{part}-images-idx3-ubyte", rng.integers(0, 255, (n, 4, 4)).astype(np.uint8))
        write_idx(folder / f"{part}-labels-idx1-ubyte", (np.arange(n) % 3).astype(np.uint8))
    return folder


WIDE_NAMES = tuple(chr(0x754C + i) * 100 for i in range(3))  # 300 bytes each in UTF-8


@pytest.mark.parametrize("content, names", [
    (b"a\nb\nc\n" + b"x" * (64 << 20), ("a", "b", "c")),  # only what three names need is read
    (b"a\nb\nc\nd" + "\u00e9".encode() * 40_000, ("a", "b", "c")),  # the cut falls inside a character
    ("\n".join(WIDE_NAMES).encode(), WIDE_NAMES),
    ("a\u2028b\r\n\n  c \n\x0bd\n".encode(), ("a\u2028b", "c", "d")),  # only \n ends a line
])
def test_classes_txt_reads_names_not_more(tmp_path, content, names):
    folder = _three_class_folder(tmp_path / "three")
    (folder / "classes.txt").write_bytes(content)
    import tracemalloc

    tracemalloc.start()
    try:
        assert load_dataset(folder).spec.class_names == names
        assert tracemalloc.get_traced_memory()[1] < 8 << 20  # bounded by k names, not by the file
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "not a regular file"),
    (os.mkfifo, "not a regular file"),  # would block forever
    (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),  # would never end
    (lambda p: p.symlink_to(p.parent / "nowhere"), "No such file or directory"),
    (lambda p: p.write_bytes(b"\xff\xfe\n" * 3), "not readable UTF-8 text"),
    (lambda p: p.write_bytes(b"x" * (1 << 20)), "expected at least 3 class names"),
    (lambda p: p.write_bytes(b"a\nb\x1b[31m\nc\n"), r"class name 'b\\x1b\[31m' holds a control character"),
    (lambda p: p.write_bytes(b"a\x00z\nb\nc\n"), "holds a control character"),
    (lambda p: p.write_text("shirt\ncoat\n shirt \n"), "class name 'shirt' is given twice"),
])
def test_a_classes_txt_that_is_not_a_text_file_is_one_clear_error(tmp_path, make, message):
    folder = _three_class_folder(tmp_path / "three")
    make(folder / "classes.txt")
    _unblock_later(folder / "classes.txt")
    started = time.monotonic()
    with pytest.raises(DataFormatError, match=message):
        load_dataset(folder)
    assert time.monotonic() - started < 4


def test_cache_root_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_SOFTMAX_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_root() == tmp_path / "xdg" / "mnist-softmax"
    assert data.dataset_cache(get_dataset("fashion-mnist")) == tmp_path / "xdg" / "mnist-softmax" / "fashion-mnist"


def test_unknown_dataset():
    with pytest.raises(UsageError, match="unknown dataset 'kmnist2'; choose from mnist, fashion-mnist, kmnist, qmnist"):
        load_dataset("kmnist2")


def test_verify_reports_each_file(tiny):
    spec, folder = tiny
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"junk")
    results = {name: problem for name, path, problem in data.verify_dataset("tiny", folder)}
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
