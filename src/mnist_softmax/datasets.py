"""The dataset table: what each MNIST-format dataset is called, where it lives and what its files must hash to.

A dataset is data, not code: KMNIST differs from MNIST only in its row here. Each file's digest is one of two kinds:
"payload", the SHA-256 of the decompressed IDX bytes (so a re-compressed copy, Debian's say, verifies as well as
the original; computed here from the real files), or "file", the SHA-256 of the file exactly as its publisher
serves it (the digest torchvision and TensorFlow Datasets publish, for datasets we could not download to compute a
payload digest). EMNIST is one large zip: its published digest covers the archive, and the members extracted from
a verified archive are pinned in the cache by their payload digests at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError


@dataclass(frozen=True)
class FileSpec:
    """One IDX file of a dataset: its role, canonical name (without .gz) and SHA-256 (see `digest`)."""

    role: str  # train_images, train_labels, test_images or test_labels
    name: str
    sha256: str | None  # None: pinned when extracted from the dataset's verified archive
    digest: str = "payload"  # "payload": of the decompressed IDX bytes; "file": of the published .gz itself
    member: str | None = None  # the file's path inside the dataset's archive


@dataclass(frozen=True)
class ArchiveSpec:
    """One archive holding the files of several datasets (EMNIST's gzip.zip), with its published SHA-256."""

    name: str
    sha256: str
    size: int  # bytes, as published: a download of any other length is refused


@dataclass(frozen=True)
class DatasetSpec:
    """An MNIST-format dataset: files, mirrors, classes and how its pixels scale."""

    name: str
    title: str
    files: tuple[FileSpec, ...]
    mirrors: tuple[str, ...]  # base URLs, tried in order; each serves NAME.gz (or the archive)
    class_names: tuple[str, ...]
    image_shape: tuple[int, int] = (28, 28)
    pixel_max: int = 255  # pixels are divided by this to lie in [0, 1]
    validation_size: int = 5000  # the last images of the training set, as in the tutorial's 55k/5k split
    system_dirs: tuple[str, ...] = ()  # folders a system package installs the files to
    bundled: bool = False  # a copy ships inside the package (mnist_softmax/bundled/NAME/)
    license: str = ""
    source: str = ""  # who publishes it, for people
    archive: ArchiveSpec | None = None
    transpose: bool = False  # images stored column-major (EMNIST): turned upright when decoded
    label_offset: int = 0  # subtracted from the stored labels (EMNIST letters are numbered from 1)
    label_column: int | None = None  # labels stored as an (n, m) int32 table (QMNIST): the class column
    folder: str | None = None  # a dataset made from a folder of IDX files: where it is

    def file(self, role: str) -> FileSpec:
        return next(f for f in self.files if f.role == role)

    @property
    def digest_kind(self) -> str:
        """How the files are pinned, for people: payload, file, or archive."""
        if self.archive:
            return "archive"
        return self.files[0].digest if self.files else "bundled"


ROLES = ("train_images", "train_labels", "test_images", "test_labels")
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _files(*digests: str, digest: str = "payload", names: tuple[str, ...] = MNIST_NAMES) -> tuple[FileSpec, ...]:
    return tuple(FileSpec(role, name, sha, digest) for role, name, sha in zip(ROLES, names, digests))


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
    bundled=True,
    license="CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
    source="Yann LeCun, Corinna Cortes, Christopher J.C. Burges; a copy ships inside the package",
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
    source="Zalando Research; Debian's dataset-fashion-mnist package",
)

# Digests of the .gz files as published (TensorFlow Datasets' url_checksums/kmnist.txt).
KMNIST = DatasetSpec(
    name="kmnist",
    title="Kuzushiji-MNIST cursive Japanese characters (ROIS-DS CODH)",
    files=_files(
        "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        digest="file",
    ),
    mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),
    class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    license="CC BY-SA 4.0 (ROIS-DS Center for Open Data in the Humanities, NIJL)",
    source="ROIS-DS CODH (Clanuwat et al., 2018)",
)

# QMNIST (Yadav and Bottou, 2019): MNIST's lost test digits recovered; its test set has 60,000 images (the
# first 10,000 match MNIST's test set), a better test of an MNIST model. Labels are an (n, 8) int32 table whose
# first column is the class. Digests of the .gz files as published (TensorFlow Datasets' url_checksums/qmnist.txt).
QMNIST = DatasetSpec(
    name="qmnist",
    title="QMNIST: MNIST reconstructed, with the 60,000-image test set (Yadav and Bottou)",
    files=_files(
        "9e26a7bf1683614e065d7b76460ccd52807165b3f22561fb782bd9f38c52b51d",
        "2c05dc77f6b916b38e455e97ab129a42a444f3dbef09b278a366f82904e0dd9f",
        "43fc22bf7498b8fc98de98369d72f752d0deabc280a43a7bcc364ab19e57b375",
        "9fbcbe594c3766fdf4f0b15c5165dc0d1e57ac604e01422608bb72c906030d06",
        digest="file",
        names=("qmnist-train-images-idx3-ubyte", "qmnist-train-labels-idx2-int",
               "qmnist-test-images-idx3-ubyte", "qmnist-test-labels-idx2-int"),
    ),
    mirrors=("https://raw.githubusercontent.com/facebookresearch/qmnist/master/",),
    class_names=tuple("0123456789"),
    label_column=0,
    license="BSD-style (Facebook, Inc.); derived from NIST Special Database 19",
    source="facebookresearch/qmnist on GitHub",
)

# EMNIST (Cohen et al., 2017): one 562 MB zip for all its splits, with the digest TensorFlow Datasets publishes
# (url_checksums/emnist.txt). Its images are stored transposed.
EMNIST_ZIP = ArchiveSpec("gzip.zip", "fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e", 561_753_746)
EMNIST_MIRRORS = (
    "https://biometrics.nist.gov/cs_links/EMNIST/",
    "https://www.itl.nist.gov/iaui/vip/cs_links/EMNIST/",
)


def _emnist(split: str, title: str, class_names: tuple[str, ...], validation_size: int, label_offset: int = 0):
    names = tuple(f"emnist-{split}-{part}" for part in
                  ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "test-images-idx3-ubyte",
                   "test-labels-idx1-ubyte"))
    return DatasetSpec(
        name=f"emnist-{split}",
        title=f"EMNIST {title} (Cohen, Afshar, Tapson, van Schaik)",
        files=tuple(FileSpec(role, name, None, "archive", f"gzip/{name}.gz") for role, name in zip(ROLES, names)),
        mirrors=EMNIST_MIRRORS,
        class_names=class_names,
        validation_size=validation_size,
        archive=EMNIST_ZIP,
        transpose=True,
        label_offset=label_offset,
        license="no licence stated; derived from NIST Special Database 19 (a U.S. government work)",
        source="NIST (one zip for all EMNIST splits)",
    )


_UPPER = tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
EMNIST_DIGITS = _emnist("digits", "digits", tuple("0123456789"), 10000)
EMNIST_LETTERS = _emnist("letters", "letters (upper and lower case merged)", _UPPER, 10000, label_offset=1)
EMNIST_BALANCED = _emnist("balanced", "balanced: digits and letters, 47 classes",
                          tuple("0123456789") + _UPPER + tuple("abdefghnqrt"), 10000)

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
    source="bundled with scikit-learn",
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST, KMNIST, QMNIST, EMNIST_DIGITS, EMNIST_LETTERS,
                                         EMNIST_BALANCED, DIGITS)}


def get_dataset(name: str) -> DatasetSpec:
    """Look up a dataset by name; the error lists the names there are (and that a folder of IDX files works)."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UsageError(
            f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}, or give a folder holding four IDX files"
        ) from None
