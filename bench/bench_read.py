"""Reading written numbers: photos of 2-6 MNIST test digits (tests/number_photos.py) through `read`'s pipeline.

    python bench/bench_read.py MODEL [COUNT]

Prints the share read exactly, the share of digits right (edit-distance aligned), and how often the number of
digits found was right. The issue asks >= 75% exact and >= 88% of digits.
"""

import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from number_photos import digits_right, write_numbers

import mnist_softmax as ms
from mnist_softmax.reading import read_number

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def main(model_path: str, count: int = 200) -> None:
    model = ms.load_model(model_path)
    ds = ms.load_dataset("mnist", MNIST)
    with TemporaryDirectory() as tmp:
        items = write_numbers(ds.test_images, ds.test_labels, Path(tmp), count, seed=12345)
        exact = right = total = length = 0
        started = time.perf_counter()
        for path, truth in items:
            _, digits = read_number(model, path)
            text = "".join(str(model.classes[d.index]) for d in digits)
            exact += text == truth
            length += len(text) == len(truth)
            right += digits_right(text, truth)
            total += len(truth)
        seconds = (time.perf_counter() - started) / count
    print(f"{count} numbers, {total} digits: read exactly {100 * exact / count:.1f}%, digits right "
          f"{100 * right / total:.1f}%, number of digits right {100 * length / count:.1f}%, {seconds:.2f} s each")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200)
