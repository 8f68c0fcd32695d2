"""The refusal trade-off: letters refused against real digits refused, as the threshold moves.

    python bench/bench_refuse.py MODEL [PHOTOS]

Letters (tests/letters.py: DejaVu and handwriting typefaces, letters that look like no digit), MNIST test digits
as predict sees them, and realistic photos of MNIST test digits (tests/photos.py). For thresholds set at several
quantiles of the validation digits' scores, and the model's own threshold, prints the share of each refused.
"""

import sys
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from letters import write_letters

import mnist_softmax as ms
from mnist_softmax.preprocess import image_for_model, to_model_input
from mnist_softmax.refuse import score
from photos import write_photos

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main(model_path: str, photos: int = 200) -> None:
    model = ms.load_model(model_path)
    if model.novelty is None:
        raise SystemExit("this model file has no refusal statistics (train it again)")
    ds = ms.load_dataset("mnist", MNIST)
    _, _, val, _ = ds.split(model.metadata["dataset"]["validation_size"])
    with TemporaryDirectory() as tmp:
        letters = [image_for_model(p, (28, 28), 1.0) for p in write_letters(Path(tmp) / "letters")]
        index = np.linspace(0, 9999, photos).astype(int)
        shots = [image_for_model(p, (28, 28), 1.0) for p in write_photos(ds.test_images[index], Path(tmp) / "p")]
    sets = {
        "letters": np.stack([x for x in letters if x is not None]),
        "MNIST test": np.stack([to_model_input(x / np.float32(255)) for x in ds.test_images[:3000]]),
        "photos": np.stack([x for x in shots if x is not None]),
    }
    scores = {name: score(model.novelty, x) for name, x in sets.items()}
    reference = score(model.novelty, val[:3000] / np.float32(255))
    print(f"{'threshold':>24}  " + "  ".join(f"{name:>11}" for name in scores))
    rows = [(f"{q:.3f} of validation", float(np.quantile(reference, q))) for q in (0.95, 0.97, 0.98, 0.985, 0.99,
                                                                                 0.995, 0.999)]
    rows.append(("the model's own", model.novelty.threshold))  # its 0.99 quantile, of another validation sample
    for label, t in rows:
        print(f"{label:>24}  " + "  ".join(f"{100 * np.mean(s > t):10.1f}%" for s in scores.values()))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200)
