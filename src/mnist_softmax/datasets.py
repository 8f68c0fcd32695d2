"""The dataset table: what each MNIST-format dataset is called, where it lives and what its files must hash to.

A dataset is data, not code: Fashion-MNIST differs from MNIST only in its row here. Checksums are SHA-256 of each
file's *decompressed* payload, so a re-compressed copy (Debian's, say) verifies as well as the original.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True)
class FileSpec:
    """One IDX file of a dataset: its role, canonical name (without .gz) and payload SHA-256."""

    role: str  # train_images, train_labels, test_images or test_labels
    name: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """An MNIST-format dataset: files, mirrors, classes and how its pixels scale."""

    name: str
    title: str
    files: tuple[FileSpec, ...]
    mirrors: tuple[str, ...]  # base URLs, tried in order; each serves NAME.gz
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] = (28, 28)
    pixel_max: int = 255  # pixels are divided by this to lie in [0, 1]
    validation_size: int = 5000  # the last images of the training set, as in the tutorial's 55k/5k split
    system_dirs: tuple[str, ...] = ()  # folders a system package installs the files to
    license: str = ""

    def file(self, role: str) -> FileSpec:
        return next(f for f in self.files if f.role == role)


ROLES = ("train_images", "train_labels", "test_images", "test_labels")


def _files(*digests: str) -> tuple[FileSpec, ...]:
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return tuple(FileSpec(role, name, digest) for role, name, digest in zip(ROLES, names, digests))


MNIST = DatasetSpec(
    name="mnist",
    title="MNIST handwritten digits (LeCun, Cortes, Burges)",
    files=_files(
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
    # The mirrors torchvision and tensorflow-datasets use; yann.lecun.com last, as it now answers 403/404.
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    class_names=tuple("0123456789"),
    license="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST article images (Zalando Research)",
    files=_files(
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    license="MIT (Zalando SE)",
)

# scikit-learn's bundled 8x8 digits (UCI optical recognition): no files, no network, a fixed 80/20 split.
DIGITS = DatasetSpec(
    name="digits",
    title="scikit-learn's bundled 8x8 handwritten digits (UCI)",
    files=(),
    mirrors=(),
    class_names=tuple("0123456789"),
    image_shape=(8, 8),
    pixel_max=16,
    validation_size=144,
    license="CC BY 4.0 (UCI Machine Learning Repository)",
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST, DIGITS)}


def get_dataset(name: str) -> DatasetSpec:
    """Look up a dataset by name; the error lists the names there are."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None
