"""mnist-softmax: softmax regression on MNIST-format data, fast, exact and explained.

The public API: `load_dataset`, `SoftmaxClassifier` (scikit-learn compatible; importing it imports scikit-learn),
`SoftmaxModel`, `load_model` and `save_model`, and the `RECIPES` and `DATASETS` tables.

Each name is imported on first use, so `import mnist_softmax` loads neither numpy nor scikit-learn: the command
line tool (cli.py) configures BLAS before numpy loads it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .data import Dataset, load_dataset
    from .datasets import DATASETS, DatasetSpec
    from .errors import MnistSoftmaxError
    from .estimator import SoftmaxClassifier
    from .model import Preprocessing, SoftmaxModel
    from .modelfile import load_model, save_model
    from .recipes import RECIPES, Recipe

_HOMES = {
    "DATASETS": "datasets",
    "RECIPES": "recipes",
    "Dataset": "data",
    "DatasetSpec": "datasets",
    "MnistSoftmaxError": "errors",
    "Preprocessing": "model",
    "Recipe": "recipes",
    "SoftmaxClassifier": "estimator",
    "SoftmaxModel": "model",
    "load_dataset": "data",
    "load_model": "modelfile",
    "save_model": "modelfile",
}
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


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'mnist_softmax' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
