"""Prediction in chunks from raw pixels (model.py): the same logits, labels and errors as the plain path of features
followed by one product, whatever the input's type, layout, size or number of classes."""

import os

import numpy as np
import pytest

from mnist_softmax import model as model_module
from mnist_softmax.errors import UsageError
from mnist_softmax.model import Preprocessing, SoftmaxModel


def make_model(k: int, deskew: bool = False, scale: float = 1 / 255, seed: int = 0) -> SoftmaxModel:
    rng = np.random.default_rng(seed)
    coef = rng.normal(0, 0.05, (k, 784)).astype(np.float32)
    intercept = rng.normal(0, 1, k).astype(np.float32)
    return SoftmaxModel(coef, intercept, np.arange(k) * 10, Preprocessing(scale, (28, 28), deskew))


def reference_logits(model: SoftmaxModel, X) -> np.ndarray:
    return model.features(X) @ model.coef.T + model.intercept


def pixels(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("k", [2, 10, 26])
@pytest.mark.parametrize("n", [1, 64, 65, 3 * 512 + 37])
def test_chunked_logits_equal_features_times_weights(k, n):
    model, X = make_model(k), pixels(n)
    logits = model.logits(X)
    assert logits.shape == (n, k) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, reference_logits(model, X), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model.predict(X), model.classes[np.argmax(logits, axis=1)])



@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 3, 700, 5000])
def test_linear_scores_on_one_blas_thread_equal_the_plain_product(dtype, n, monkeypatch):
    """The estimator's logits: chunked, on one BLAS thread (then, with a core to spare and many rows, split between
    Python threads), the same as the plain product that would leave BLAS's threads spinning after it."""
    from threadpoolctl import threadpool_info

    from mnist_softmax.model import linear_scores

    rng = np.random.default_rng(0)
    X, W, b = rng.random((n, 784)).astype(dtype), rng.normal(0, 0.05, (10, 784)), rng.normal(0, 1, 10)
    limits, score_rows = [], model_module._score_rows

    def spy(*args):
        limits.append([pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"])
        return score_rows(*args)

    monkeypatch.setattr(model_module, "_score_rows", spy)
    monkeypatch.setattr(model_module, "_PARALLEL_ROWS", 1000)
    monkeypatch.setattr("mnist_softmax.threads.pass_threads", lambda: None)  # as if the machine were idle
    scores = linear_scores(X, W, b)
    assert scores.shape == (n, 10) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, X.astype(np.float32) @ W.T.astype(np.float32) + b, rtol=1e-5, atol=1e-5)
    assert limits and all(threads == [1] * len(threads) for threads in limits)
    assert len(limits) == (1 if n < 1000 else os.cpu_count())

@pytest.mark.parametrize("layout", ["float64", "float32 flat", "every other row", "fortran", "list", "bool"])
def test_any_numeric_layout_gives_the_same_logits(layout):
    model, X = make_model(10), pixels(700)
    data = {"float64": X.astype(np.float64), "float32 flat": X.reshape(700, -1).astype(np.float32),
            "every other row": pixels(1400)[::2], "fortran": np.asfortranarray(X.reshape(700, -1)),
            "list": X[:3].tolist(), "bool": X > 128}[layout]
    np.testing.assert_allclose(model.logits(data), reference_logits(model, data), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict_proba(data), np.exp(model.predict_log_proba(data)), rtol=1e-5, atol=1e-6)


def test_no_images_give_empty_answers():
    model = make_model(10)
    for X in (np.zeros((0, 28, 28), np.uint8), np.zeros((0, 784))):
        assert model.predict(X).shape == (0,) and model.predict_proba(X).shape == (0, 10)


def test_split_between_threads_gives_the_same_answers(monkeypatch):
    model, X = make_model(10), pixels(5000)
    single = model.logits(X), model.predict(X)
    monkeypatch.setattr(model_module, "_PARALLEL_ROWS", 1000)
    monkeypatch.setattr("mnist_softmax.threads.pass_threads", lambda: None)  # as if the machine were idle
    monkeypatch.setattr(model_module.os, "cpu_count", lambda: 3)
    np.testing.assert_array_equal(model.logits(X), single[0])
    np.testing.assert_array_equal(model.predict(X), single[1])


def test_deskewing_and_large_scales_go_through_the_preprocessing_in_chunks():
    for model in (make_model(10, deskew=True), make_model(10, scale=2.0)):
        X = pixels(1300)
        features = model.features(X)
        terms = np.abs(features) @ np.abs(model.coef).T  # float32 rounding is relative to these, not to the sum
        assert (np.abs(model.logits(X) - reference_logits(model, X)) <= 1e-6 * terms + 1e-6).all()
        np.testing.assert_array_equal(model.predict(X), model.classes[np.argmax(model.logits(X), axis=1)])


@pytest.mark.parametrize("bad, message", [
    ("nan late", "NaN or infinity"),
    ("inf", "NaN or infinity"),
    ("features", "expects 784 features"),
    ("text", "numeric inputs"),
    ("one image", "shape"),
])
def test_bad_inputs_get_one_clear_error(bad, message):
    model = make_model(10)
    X = pixels(2000).astype(np.float32)
    if bad == "nan late":
        X[1900, 3, 3] = np.nan  # in the last chunk, after others were scored
    elif bad == "inf":
        X[0, 0, 0] = np.inf
    elif bad == "features":
        X = X.reshape(2000, -1)[:, :700]
    elif bad == "text":
        X = np.array([["a"] * 784] * 100)
    elif bad == "one image":
        X = X[0, 0]
    for method in (model.predict, model.logits, model.predict_proba):
        with pytest.raises(UsageError, match=message):
            method(X)


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    from mnist_softmax.cli import main

    out = tmp_path_factory.mktemp("inference") / "run"
    assert main(["train", "--dataset", "digits", "--out", str(out), "-q", "--no-plots"]) == 0
    return out / "model.npz"


def test_predict_in_batches_answers_each_file_as_alone(digits_model, tmp_path, capsys, monkeypatch):
    """predict scores novelty and runs the model once per batch of files: each row is still the one a run on that
    file alone prints, failures and refusals included, in the order given."""
    import json

    from PIL import Image

    from mnist_softmax import cli

    rng = np.random.default_rng(0)
    paths = []
    for i in range(7):
        page = np.full((60, 60), 235, np.uint8)
        if i == 2:
            page[:] = 240  # blank
        elif i == 4:
            page[rng.random((60, 60)) < 0.3] = 20  # a scribble of specks
        else:
            page[10:50, 25 + i : 31 + i] = 20  # a stroke, one
            page[10:16, 15:45] = 20 if i % 2 else 235  # with a bar on top, a seven
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(page).save(paths[-1])
    paths.insert(3, tmp_path / "broken.png")
    paths[3].write_bytes(b"\x89PNG garbage")

    def rows(files):
        cli.main(["predict", "--json", str(digits_model), *map(str, files)])
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    alone = [rows([path])[0] for path in paths]
    monkeypatch.setattr(cli, "_PREDICT_BATCH", 3)
    together = rows(paths)
    assert [row["path"] for row in together] == list(map(str, paths))
    assert {row.get("refusal") for row in alone} >= {None, "blank"} and "error" in alone[3]
    for one, batched in zip(alone, together):
        assert set(one) == set(batched)
        for key, value in one.items():
            if key == "probabilities":
                assert value == pytest.approx(batched[key], abs=2e-6)
            elif key == "novelty":
                assert value == pytest.approx(batched[key], abs=2e-4)
            else:
                assert value == batched[key], key


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="Linux's runnable-task count")
def test_a_neighbour_started_a_moment_ago_takes_the_spare_core():
    """Whether a pass may use every core is judged from what runs now, not from the 1-minute load average, which
    a process started a moment ago has hardly moved."""
    import subprocess
    import sys
    import time

    from mnist_softmax.threads import _others_running, pass_threads, spare_core

    busy = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 5\nwhile time.time() < t: pass"])
    try:
        time.sleep(0.3)
        assert min(_others_running() for _ in range(5)) >= 1
        if (os.cpu_count() or 1) <= 2:
            assert not spare_core() and pass_threads() == 1
    finally:
        busy.kill()
        busy.wait()
