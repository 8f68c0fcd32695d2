"""predict refuses what is not one digit: blank pages, several digits, letters; old model files still predict."""

import json
import zipfile

import numpy as np
import pytest
from letters import write_letters
from PIL import Image, ImageDraw

from mnist_softmax import load_dataset, load_model
from mnist_softmax.cli import main
from mnist_softmax.errors import ExitCode
from mnist_softmax.refuse import score
from photos import write_photos


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    from conftest import MNIST_DIR, _need

    out = tmp_path_factory.mktemp("refuse") / "run"
    assert main(["train", "--data-dir", str(_need(MNIST_DIR, "MNIST")), "--out", str(out), "-q", "--no-plots"]) == 0
    return out


def _rows(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_letters_refused_digits_kept(mnist_run, tmp_path, capsys):
    """Letters in DejaVu and handwriting typefaces against MNIST test digits (as the model sees them) and photos."""
    model = load_model(mnist_run / "model.npz")
    letters = write_letters(tmp_path / "letters")
    assert len(letters) >= 100
    capsys.readouterr()
    main(["predict", str(mnist_run / "model.npz"), *map(str, letters), "--json"])
    rows = _rows(capsys)
    assert len(rows) == len(letters)
    refused = np.mean([r["prediction"] is None for r in rows])
    assert refused >= 0.55, refused  # the issue asks 60%; bench/bench_refuse.py measures 60.5% (README)
    from conftest import MNIST_DIR

    test = load_dataset("mnist", MNIST_DIR).test_images[:3000] / np.float32(255)
    digit_refused = np.mean(score(model.novelty, test) > model.novelty.threshold)
    assert digit_refused <= 0.03, digit_refused
    index = np.arange(0, 10000, 200)
    paths = write_photos(load_dataset("mnist", MNIST_DIR).test_images[index], tmp_path / "photos")
    main(["predict", str(mnist_run / "model.npz"), *map(str, paths), "--json"])
    rows = _rows(capsys)
    photo_refused = np.mean([r["prediction"] is None for r in rows])
    # 50 photos: one refusal is 2% (the default model refuses 1 of these); bench/bench_refuse.py measures 300
    assert photo_refused <= 0.06, (photo_refused, [r.get("refusal") for r in rows if r["prediction"] is None])


def test_blank_two_digits_and_the_text_line(mnist_run, tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.new("L", (300, 200), 250).save(blank)
    speck = tmp_path / "speck.png"
    page = Image.new("L", (400, 400), 250)
    ImageDraw.Draw(page).ellipse((200, 200, 203, 203), fill=30)
    page.save(speck)
    two = tmp_path / "two.png"
    page = Image.new("L", (400, 200), 250)
    draw = ImageDraw.Draw(page)
    draw.line((100, 40, 100, 160), fill=20, width=12)  # a one
    draw.ellipse((220, 40, 310, 160), outline=20, width=12)  # a zero beside it
    page.save(two)
    capsys.readouterr()
    assert main(["predict", str(mnist_run / "model.npz"), str(blank), str(speck), str(two), "--json"]) == ExitCode.OK
    rows = _rows(capsys)
    assert [r["refusal"] for r in rows] == ["blank", "blank", "several"]
    assert all(r["prediction"] is None and r["reason"] for r in rows)
    assert main(["predict", str(mnist_run / "model.npz"), str(two)]) == ExitCode.OK
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{two}: not answered: 2 digits") and "mnist-softmax read" in line


def test_old_model_files_predict_without_refusal(mnist_run, tmp_path, capsys):
    """A model file written before refusal statistics existed loads and answers; a damaged one is refused."""
    old = tmp_path / "old.npz"
    with zipfile.ZipFile(mnist_run / "model.npz") as src, zipfile.ZipFile(old, "w") as dst:
        for info in src.infolist():
            if not info.filename.startswith("novelty"):
                data = src.read(info)
                if info.filename == "metadata.npy":
                    meta = np.load(src.open(info), allow_pickle=False)
                    doc = json.loads(meta.tobytes())
                    doc.pop("novelty")
                    doc.pop("calibration")
                    import io

                    buf = io.BytesIO()
                    np.save(buf, np.frombuffer(json.dumps(doc).encode(), np.uint8))
                    data = buf.getvalue()
                dst.writestr(info.filename, data)
    model = load_model(old)
    assert model.novelty is None and model.temperature == 1.0
    letter = write_letters(tmp_path / "l", letters="K")[0]
    capsys.readouterr()
    assert main(["predict", str(old), str(letter), "--json"]) == ExitCode.OK
    row = _rows(capsys)[0]
    assert row["prediction"] is not None and "novelty" not in row  # answered, as before
    damaged = tmp_path / "damaged.npz"
    with zipfile.ZipFile(mnist_run / "model.npz") as src, zipfile.ZipFile(damaged, "w") as dst:
        for info in src.infolist():
            if info.filename != "novelty_bases.npy":
                dst.writestr(info.filename, src.read(info))
    assert main(["predict", str(damaged), str(letter)]) == ExitCode.MODEL
    assert "novelty statistics must come complete" in capsys.readouterr().err


def test_threshold_quantile_is_numpys_to_the_last_bit():
    from mnist_softmax.refuse import _quantile

    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 2999, 3000):
        values = rng.gamma(2, 3, n)
        for q in (0.0, 0.5, 0.9, 0.99, 0.995, 1.0):
            assert _quantile(values, q) == float(np.quantile(values, q))


def test_clusters_follow_each_way_of_writing_and_old_single_subspace_files_score_as_before():
    """Two ways of writing one class (a bar and a ring) are each fitted by a cluster's subspace, where one subspace
    per class of the same size leaves more unexplained; a file with one subspace per class (no `clusters` in its
    metadata) scores by the nearest class subspace, as before clusters existed; a class with few images fits."""
    from mnist_softmax.refuse import Novelty, fit, residuals, shape_features

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    bars = [np.clip(1.5 - np.abs(xx - 14 - s), 0, 1) * ((yy > 4) & (yy < 24)) for s in rng.uniform(-3, 3, 120)]
    rings = [np.clip(1.5 - np.abs(np.hypot(yy - 14, xx - 14) - r), 0, 1) for r in rng.uniform(5, 9, 120)]
    images = np.stack(bars + rings).astype(np.float32)
    labels = np.zeros(len(images), int)
    two = fit(images, labels, 1, images, components=2, clusters=2)
    one = fit(images, labels, 1, images, components=2, clusters=1)
    assert two.means.shape == (2, 784) and two.bases.shape == (2, 2, 784) and two.clusters == 2
    features = shape_features(images)
    nearest = np.stack([residuals(two.means[j : j + 1], two.bases[j : j + 1], features)[:, 0] for j in (0, 1)])
    bar_cluster, ring_cluster = nearest[:, :120].argmin(axis=0), nearest[:, 120:].argmin(axis=0)
    assert len(set(bar_cluster)) == 1 and set(ring_cluster) == {1 - bar_cluster[0]}  # a cluster for each shape
    assert np.median(score(two, images)) < 0.5 * np.median(score(one, images))
    stored = Novelty.from_stored(*one.arrays().values(), {k: v for k, v in one.to_json().items() if k != "clusters"})
    expected = np.array([((f - one.means[0]) ** 2).sum() - ((one.bases[0] @ (f - one.means[0])) ** 2).sum()
                         for f in features[:5]])
    np.testing.assert_allclose(score(stored, images[:5]), expected, rtol=1e-4, atol=1e-4)
    got = residuals(stored.means, stored.bases, features[:5])[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    few = fit(images[:6], labels[:6], 1, images[:6], components=2, clusters=4)  # too few for 4 clusters
    assert np.isfinite(score(few, images)).all() and (few.means == few.means[0]).all()
