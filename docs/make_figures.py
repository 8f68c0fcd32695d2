"""Draw the README's figures from one run of the default recipe: python docs/make_figures.py [--data-dir DIR]

Trains the default recipe on MNIST (seed 0, a few seconds), then writes into docs/ (or --out): the weight maps
(weights.png), their forming during training (weights.gif, as `train` writes it), each class's mean image beside
its weights (means.png), the learning curves (curves.png), the evidence for an image the model hesitates on
(evidence.png), and the drawing page with a test digit drawn on it (draw.png, a screenshot in headless Chromium;
skipped with a message when Playwright or /usr/bin/chromium is missing).
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from mnist_softmax import load_dataset, plots
from mnist_softmax.recipes import get_recipe
from mnist_softmax.report import class_means
from mnist_softmax.train import train, write_animation

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")


def draw_page_screenshot(model, digit: np.ndarray, path: Path) -> None:
    """The drawing page with `digit` (28x28 uint8) traced on its pad by the mouse, as a PNG screenshot."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from playwright.sync_api import sync_playwright
    from test_app import draw  # the tests' pen: one stroke per run of ink in each row

    from mnist_softmax.app import write_page

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        page_file = write_page(model, Path(tmp) / "draw.html")
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1000, "height": 800})
        page.goto(page_file.as_uri())
        draw(page, digit)
        page.screenshot(path=str(path), full_page=True)
        browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(HERE.parents[1] / "shared" / "data" / "mnist"))
    parser.add_argument("--out", default=str(HERE), help="folder for the figures (default: docs/)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("mnist", args.data_dir)
    names = ds.spec.class_names
    run = train(ds, get_recipe("default"), seed=0)
    model = run.model
    plots.save(plots.weight_maps(model.coef, (28, 28), names), out / "weights.png", dpi=70)
    write_animation(run, out / "weights.gif")
    X, y, _, _ = ds.split()
    plots.save(plots.means_and_weights(class_means(model, X, y, len(names)), model.coef, (28, 28), names),
               out / "means.png", dpi=70)
    plots.save(plots.learning_curves(run.history), out / "curves.png", dpi=70)
    image = ds.test_images[:200]
    proba = model.predict_proba(image)
    index = int(np.argsort(proba.max(axis=1))[5])  # an image the model hesitates on
    plots.save(plots.evidence(model.features(image[index : index + 1])[0], model.coef, model.intercept, proba[index],
                              names, (28, 28)), out / "evidence.png", dpi=70)
    if not CHROMIUM.exists():
        print(f"draw.png not drawn: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return
    try:
        draw_page_screenshot(model, ds.test_images[4], out / "draw.png")  # test image 4 is a 4
    except ImportError:
        print("draw.png not drawn: Playwright is missing (pip install playwright)", file=sys.stderr)


if __name__ == "__main__":
    main()
