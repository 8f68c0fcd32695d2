"""Draw the README's figures from real runs: python docs/make_figures.py [--data-dir DIR]

Trains the tutorial recipe (its weight maps are the classic picture) and the default recipe on MNIST, then writes
small PNGs into docs/.
"""

import argparse
from pathlib import Path

import numpy as np

from mnist_softmax import load_dataset, plots
from mnist_softmax.recipes import get_recipe
from mnist_softmax.train import train

HERE = Path(__file__).resolve().parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(HERE.parents[1] / "shared" / "data" / "mnist"))
    args = parser.parse_args()
    ds = load_dataset("mnist", args.data_dir)
    tutorial = train(ds, get_recipe("tutorial"))
    plots.save(plots.weight_maps(tutorial.model.coef, (28, 28), ds.spec.class_names), HERE / "weights.png", dpi=70)
    plots.save(plots.learning_curves(tutorial.history), HERE / "curves.png", dpi=70)
    model = train(ds, get_recipe("default")).model
    image = ds.test_images[:200]
    proba = model.predict_proba(image)
    index = int(np.argsort(proba.max(axis=1))[5])  # an image the model hesitates on
    plots.save(plots.evidence(model.features(image[index : index + 1])[0], model.coef, model.intercept, proba[index],
                              ds.spec.class_names, (28, 28)), HERE / "evidence.png", dpi=70)


if __name__ == "__main__":
    main()
