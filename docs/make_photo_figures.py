"""Draw docs/photos.png: realistic phone photos of MNIST test digits (tests/photos.py), what the photo cleanup
found, and the 28x28 image the model saw with its answer. python docs/make_photo_figures.py [--data-dir DIR]

Trains the default recipe on MNIST (a few seconds), writes the photos to a temporary folder and reads them back
through `image_for_model`, exactly as `predict` does.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from mnist_softmax import load_dataset, plots  # noqa: E402
from mnist_softmax.photo import clean, isolate_digit  # noqa: E402
from mnist_softmax.preprocess import image_for_model, load_pixels  # noqa: E402
from mnist_softmax.recipes import get_recipe  # noqa: E402
from mnist_softmax.train import train  # noqa: E402
from photos import write_photos  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(HERE.parents[1] / "shared" / "data" / "mnist"))
    args = parser.parse_args()
    ds = load_dataset("mnist", args.data_dir)
    model = train(ds, get_recipe("default")).model
    index = np.array([3, 18, 61, 128, 500, 1024])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_photos(ds.test_images[index], Path(tmp), seed=5)
        fig, axes = plt.subplots(3, len(paths), figsize=(2.1 * len(paths), 6.6))
        for col, path in enumerate(paths):
            pixels, _ = load_pixels(path)
            raw = image_for_model(path, (28, 28), model.preprocessing.scale)
            proba = model.predict_proba(raw[None])[0]
            axes[0, col].imshow(np.clip(pixels, 0, 1))
            axes[1, col].imshow(isolate_digit(clean(pixels)), cmap="gray")
            axes[2, col].imshow(raw * model.preprocessing.scale, cmap="gray_r", vmin=0, vmax=1)
            axes[2, col].set_title(f"{np.argmax(proba)} ({100 * proba.max():.0f}%), true {ds.test_labels[index[col]]}",
                                   fontsize=9)
            for ax in axes[:, col]:
                ax.set_xticks([])
                ax.set_yticks([])
        axes[0, 0].set_ylabel("the photo")
        axes[1, 0].set_ylabel("ink found")
        axes[2, 0].set_ylabel("what the model saw")
        fig.tight_layout()
        plots.save(fig, HERE / "photos.png", dpi=70)


if __name__ == "__main__":
    main()
