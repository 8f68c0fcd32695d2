"""Shared fixtures: tiny fake datasets written by the tests, an isolated cache, and the real data when present."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from mnist_softmax import datasets
from mnist_softmax.datasets import DatasetSpec, FileSpec
from mnist_softmax.idx import write_idx

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO.parent / "shared" / "data" / "mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _need(folder: Path, how: str) -> Path:
    """The folder, or a skip outside CI and a failure in CI, where a missing dataset must not pass silently."""
    if all((folder / n).exists() for n in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):
        return folder
    if os.environ.get("CI"):
        pytest.fail(f"{folder} is missing in CI ({how})")
    pytest.skip(f"{folder} is missing ({how})")


@pytest.fixture
def mnist_dir() -> Path:
    return _need(MNIST_DIR, "the shared MNIST files beside the repository")


@pytest.fixture
def fashion_dir() -> Path:
    return _need(FASHION_DIR, "apt-get install dataset-fashion-mnist")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache and no data-dir or mirror overrides from the environment."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("MNIST_SOFTMAX_CACHE_DIR", str(cache))
    for var in ("MNIST_SOFTMAX_DATA_DIR", "MNIST_SOFTMAX_MIRRORS", "MNIST_SOFTMAX_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return cache


def payload_sha256(path: Path) -> str:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return hashlib.sha256(data).hexdigest()


def make_tiny(folder: Path, n_train=60, n_test=20, compress=True, seed=0):
    """Write a tiny MNIST-like dataset (8x8 images, 3 classes a linear model separates) into `folder`.

    Returns a DatasetSpec named "tiny" whose checksums match the files.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)

    def images_for(labels):
        imgs = rng.integers(0, 40, size=(len(labels), 8, 8)).astype(np.uint8)
        for i, label in enumerate(labels):
            imgs[i, :, label * 2 : label * 2 + 2] = 250  # a bright column per class
        return imgs

    y_train = np.arange(n_train) % 3
    y_test = np.arange(n_test) % 3
    arrays = {
        "train-images-idx3-ubyte": images_for(y_train),
        "train-labels-idx1-ubyte": y_train.astype(np.uint8),
        "t10k-images-idx3-ubyte": images_for(y_test),
        "t10k-labels-idx1-ubyte": y_test.astype(np.uint8),
    }
    files = []
    for role, (name, array) in zip(datasets.ROLES, arrays.items()):
        path = folder / (name + (".gz" if compress else ""))
        write_idx(path, array, compress=compress)
        files.append(FileSpec(role, name, payload_sha256(path)))
    return DatasetSpec(
        name="tiny", title="tiny test set", files=tuple(files), mirrors=(), class_names=("a", "b", "c"),
        image_shape=(8, 8), validation_size=6,
    )


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A registered tiny dataset in tmp_path/tiny: (spec, folder)."""
    folder = tmp_path / "tiny"
    spec = make_tiny(folder)
    monkeypatch.setitem(datasets.DATASETS, "tiny", spec)
    return spec, folder


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium driven by Playwright (its own browser download does not work here)."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("/usr/bin/chromium is missing in CI (apt-get install chromium)")
        pytest.skip("/usr/bin/chromium is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"],
        )
        yield browser
        browser.close()


def open_page(browser, url, viewport=(1200, 900)):
    """A new page at `url`, with every console error and every request it makes recorded."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    page.errors, page.requests = [], []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(url)
    return page
