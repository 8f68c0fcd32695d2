"""mnist-softmax: softmax regression on MNIST-format data, fast, exact and explained.

The public API: `load_dataset`, `SoftmaxClassifier` (scikit-learn compatible; importing it imports scikit-learn),
`SoftmaxModel`, `load_model` and `save_model`, and the `RECIPES` and `DATASETS` tables.
"""

__version__ = "0.1.0"

from .data import Dataset, load_dataset
from .datasets import DATASETS, DatasetSpec
from .errors import MnistSoftmaxError
from .model import Preprocessing, SoftmaxModel
from .modelfile import load_model, save_model
from .recipes import RECIPES, Recipe

__all__ = [
    "DATASETS",
    "RECIPES",
    "Dataset",
    "DatasetSpec",
    "MnistSoftmaxError",
    "Preprocessing",
    "Recipe",
    "SoftmaxClassifier",
    "SoftmaxModel",
    "load_dataset",
    "load_model",
    "save_model",
]


def __getattr__(name):
    if name == "SoftmaxClassifier":  # imported on first use, so `import mnist_softmax` stays free of scikit-learn
        from .estimator import SoftmaxClassifier

        return SoftmaxClassifier
    raise AttributeError(f"module 'mnist_softmax' has no attribute {name!r}")
