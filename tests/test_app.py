"""The drawing page in a real browser: it agrees with Python, works by pen, keyboard and phone, fetches nothing."""

import base64
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import open_page
from mnist_softmax import load_dataset, load_model
from mnist_softmax.app import build_page, make_server, write_page
from mnist_softmax.cli import main
from mnist_softmax.errors import ExitCode
from mnist_softmax.explain import colour_limit
from mnist_softmax.preprocess import image_for_model


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "deskew"])
def mnist_model(request, tmp_path_factory):
    from conftest import MNIST_DIR, _need

    data = _need(MNIST_DIR, "the shared MNIST files beside the repository")
    out = tmp_path_factory.mktemp("app") / "run"
    args = ["train", "--data-dir", str(data), "--out", str(out), "-q", "--no-plots"] + ["--deskew"] * request.param
    assert main(args) == 0
    page = write_page(load_model(out / "model.npz"), out / "draw.html")
    return load_model(out / "model.npz"), page, load_dataset("mnist", data)


def strokes(digit, size):
    """Pen strokes that trace a 28x28 digit: one horizontal stroke per run of ink in each row."""
    cell = size / 28
    out = []
    for y in range(28):
        xs = np.nonzero(digit[y] > 100)[0]
        for run in np.split(xs, np.nonzero(np.diff(xs) > 1)[0] + 1) if len(xs) else []:
            out.append(((run[0] + 0.5) * cell, (y + 0.5) * cell, (run[-1] + 0.5) * cell))
    return out


def draw(page, digit):
    box = page.locator("#pad").bounding_box()
    for x0, y, x1 in strokes(digit, box["width"]):
        page.mouse.move(box["x"] + x0, box["y"] + y)
        page.mouse.down()
        page.mouse.move(box["x"] + x1, box["y"] + y, steps=3)
        page.mouse.up()
    page.wait_for_function("window.mnistSoftmax.state.probabilities !== null")
    return page.evaluate("window.mnistSoftmax.state")


def test_drawn_digits_agree_with_python(mnist_model, browser, tmp_path):
    model, path, ds = mnist_model
    page = open_page(browser, path.as_uri())
    assert page.evaluate("document.body.classList.contains('empty')")
    assert page.inner_text("#verdict") == "Nothing drawn yet"
    right = 0
    for i in range(12):
        page.click("#clear")
        state = draw(page, ds.test_images[i])
        right += state["prediction"] == ds.test_labels[i]
        # The same drawn image through the Python pipeline:
        png = page.evaluate("document.getElementById('pad').toDataURL('image/png')").split(",")[1]
        (tmp_path / "pad.png").write_bytes(base64.b64decode(png))
        raw = image_for_model(tmp_path / "pad.png", (28, 28), model.preprocessing.scale)
        assert np.abs(model.features(raw[None])[0] - np.array(state["features"])).max() <= 1e-3
        np.testing.assert_allclose(state["probabilities"], model.predict_proba(raw[None])[0], atol=1e-5)
    assert right >= 10, right
    page.screenshot(path=str(tmp_path / "desktop.png"))
    assert page.errors == []
    assert all(u.startswith(("file:", "data:")) for u in page.requests)


def test_page_probabilities_equal_predict_proba(mnist_model, browser):
    model, path, ds = mnist_model
    page = open_page(browser, path.as_uri())
    X = ds.test_images[:40]
    js = np.array([page.evaluate("x => Array.from(window.mnistSoftmax.classify(x).probabilities)",
                                 (x.reshape(-1) / 255).tolist()) for x in X])
    np.testing.assert_allclose(js, model.predict_proba(X), atol=1e-5)


def test_clear_keyboard_class_pick_and_phone_layout(mnist_model, browser, tmp_path):
    model, path, ds = mnist_model
    page = open_page(browser, path.as_uri())
    draw(page, ds.test_images[0])  # a 7
    assert not page.evaluate("document.body.classList.contains('empty')")
    page.locator(".bar").nth(1).click()  # pick class 1: its evidence is shown
    assert page.inner_text("#evidence-title") == "evidence for 1"
    page.focus("#clear")
    page.keyboard.press("Enter")  # the clear button works from the keyboard
    assert page.evaluate("document.body.classList.contains('empty')")
    assert page.inner_text("#verdict") == "Nothing drawn yet"
    assert page.evaluate("getComputedStyle(document.getElementById('pad')).touchAction") == "none"
    phone = open_page(browser, path.as_uri(), viewport=(375, 740))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    pad = phone.locator("#pad").bounding_box()
    assert pad["width"] >= 300 and pad["x"] >= 0 and pad["x"] + pad["width"] <= 375
    draw(phone, ds.test_images[1])
    phone.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
    assert phone.errors == []


def test_evidence_sums_legends_and_one_heading(mnist_model, browser):
    model, path, ds = mnist_model
    page = open_page(browser, path.as_uri())
    assert page.inner_text("h1") == "Draw a digit" and page.title() == "Draw a digit · mnist-softmax"
    assert page.inner_text("body").count("Draw a digit") == 1  # the empty verdict does not repeat the heading
    for i in (3, 8):
        page.click("#clear")
        state = draw(page, ds.test_images[i])
        sums, x = state["sums"], np.array(state["features"])
        a, b = sums["a"], sums["b"]
        logits = x @ model.coef.T.astype(np.float64) + model.intercept
        # The shown sums are exact: evidence + bias = the score, contrast + biases = the score gap.
        assert sums["score"] == pytest.approx(logits[a], abs=1e-4)
        assert sums["gap"] == pytest.approx(logits[a] - logits[b], abs=1e-4)
        assert sums["evidence"] == pytest.approx((x * model.coef[a]).sum(), abs=1e-4)
        shown = page.inner_text("#evidence-sum").replace("\u2212", "-")
        assert shown == f"sum {sums['evidence']:+.2f}, score {logits[a]:+.2f}"
        gap = page.inner_text("#contrast-sum").replace("\u2212", "-")
        assert gap.endswith(f"score gap {logits[a] - logits[b]:+.2f}")
        limit = max(np.abs(x * model.coef[a]).max(), np.abs(x * (model.coef[a] - model.coef[b])).max())
        assert page.inner_text("#legend-max") == f"+{limit:.2f}"
        assert page.inner_text("#legend-min") == f"\u2212{limit:.2f}"
    assert page.inner_text("#wlegend-max") == f"+{colour_limit(model.coef):.2f}"  # as weights.png
    from mnist_softmax.plots import percent

    top = max(state["probabilities"])
    assert page.inner_text("#verdict") == f"It's {state['prediction']} ({percent(top)})"  # as Python writes it
    ends = page.evaluate("""() => { const g = document.getElementById('legend').getContext('2d');
        return [Array.from(g.getImageData(0, 0, 1, 1).data), Array.from(g.getImageData(63, 0, 1, 1).data)]; }""")
    assert ends[0][0] > ends[0][2] and ends[1][2] > ends[1][0]  # red for -limit on the left, blue for +limit
    assert page.errors == []


def test_the_page_asks_for_what_the_dataset_holds(fashion_dir, browser, tmp_path):
    out = tmp_path / "fashion"
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(fashion_dir), "--out", str(out), "-q",
                 "--no-plots", "--steps", "20"]) == 0
    page = open_page(browser, write_page(load_model(out / "model.npz"), tmp_path / "f.html").as_uri())
    assert page.inner_text("h1") == "Draw an article of clothing"
    assert page.title() == "Draw an article of clothing · mnist-softmax"
    assert "digit" not in page.inner_text("body").lower() and page.errors == []


def test_page_is_self_contained(tmp_path):
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r"), "-q", "--no-plots"]) == 0
    assert main(["app", str(tmp_path / "r" / "model.npz"), "--out", str(tmp_path / "page.html"), "-q"]) == 0
    text = (tmp_path / "page.html").read_text()
    assert "http://" not in text and "https://" not in text and "<script src" not in text
    assert "default-src 'none'" in text  # the page may not fetch anything, even by mistake
    data = json.loads(text.split('<script id="model" type="application/json">')[1].split("</script>")[0])
    assert data["shape"] == [8, 8] and len(base64.b64decode(data["coef"])) == 10 * 64 * 4


def test_app_refuses_models_without_images(tmp_path, capsys):
    from sklearn.datasets import load_iris

    from mnist_softmax import SoftmaxClassifier, save_model

    X, y = load_iris(return_X_y=True)
    save_model(SoftmaxClassifier(random_state=0).fit(X, y).to_model(), tmp_path / "iris.npz")
    assert main(["app", str(tmp_path / "iris.npz"), "--out", str(tmp_path / "p.html")]) == ExitCode.USAGE
    assert "needs an image model" in capsys.readouterr().err
    assert not (tmp_path / "p.html").exists()


def test_server_serves_only_the_page_on_loopback(tmp_path, browser):
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r"), "-q", "--no-plots"]) == 0
    model = load_model(tmp_path / "r" / "model.npz")
    server = make_server(model)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.read().decode() == build_page(model)
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(url + "model.npz", timeout=5)
        page = open_page(browser, url)
        assert page.inner_text("#verdict") == "Nothing drawn yet" and page.errors == []
        assert all(u.startswith((url, "data:")) for u in page.requests)
    finally:
        server.shutdown()
        server.server_close()


def test_serve_command_prints_its_address(tmp_path):
    assert main(["train", "--dataset", "digits", "--out", str(tmp_path / "r"), "-q", "--no-plots"]) == 0
    serve = [sys.executable, "-m", "mnist_softmax", "serve", str(tmp_path / "r" / "model.npz"), "--json"]
    proc = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True)
    try:
        url = json.loads(proc.stdout.readline())["url"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as response:
            assert b"Draw a digit" in response.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
