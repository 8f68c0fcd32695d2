"""ONNX and JSON export: onnxruntime on the exported file gives the probabilities and labels Python gives."""

import dataclasses
import json
import os

import numpy as np
import pytest

from mnist_softmax import load_dataset, load_model, save_model
from mnist_softmax.cli import main
from mnist_softmax.errors import ExitCode
from mnist_softmax.export import INPUT, OPSET, temperature, to_json
from mnist_softmax.model import Preprocessing, SoftmaxModel, softmax
from mnist_softmax.recipes import get_recipe
from mnist_softmax.train import train

if os.environ.get("CI"):  # in CI the optional dependency must be there: a missing one fails, never skips
    import onnx
    import onnxruntime as ort
else:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")


def run_onnx(proto, X):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["label", "probabilities"], {INPUT: np.ascontiguousarray(X)})


@pytest.fixture(scope="module")
def mnist():
    from conftest import MNIST_DIR, _need

    return load_dataset("mnist", _need(MNIST_DIR, "the shared MNIST files beside the repository"))


@pytest.fixture(scope="module")
def trained(mnist):
    """A plain and a deskewed model, trained on the first 12,000 images (quick; the test images are what matter)."""
    part = dataclasses.replace(mnist, train_images=mnist.train_images[:12000], train_labels=mnist.train_labels[:12000])
    return {deskew: train(part, get_recipe("default"), validation_size=2000, deskew=deskew).model
            for deskew in (False, True)}


def with_temperature(model: SoftmaxModel, t: float) -> SoftmaxModel:
    """The model calibrated at temperature t, in the form the package stores calibration."""
    return dataclasses.replace(model, metadata={**model.metadata, "calibration": {"temperature": t}})


def reference_proba(model: SoftmaxModel, X) -> np.ndarray:
    """Python's predict_proba, which divides the logits by the model's temperature (model.temperature, read from
    metadata["calibration"]); before calibration landed in the model, the same division done here."""
    t = temperature(model)
    if t is None or hasattr(SoftmaxModel, "temperature"):
        return model.predict_proba(X)
    return softmax(model.logits(X) / np.float32(t))


@pytest.mark.parametrize("kind", ["plain", "deskewed", "calibrated"])
def test_onnxruntime_matches_python_on_10000_raw_test_images(mnist, trained, kind, tmp_path):
    model = trained[kind == "deskewed"]
    if kind == "calibrated":  # as trained: train fits a temperature on the validation split
        model = model if temperature(model) is not None else with_temperature(model, 1.37)
        assert temperature(model) is not None
    else:
        model = dataclasses.replace(model, metadata={k: v for k, v in model.metadata.items() if k != "calibration"})
    path = tmp_path / "model.npz"
    save_model(model, path)
    model = load_model(path)  # what the CLI exports: the saved file
    assert main(["export", str(path), "--format", "onnx", "--out", str(tmp_path / "model.onnx"), "-q"]) == 0
    proto = onnx.load(str(tmp_path / "model.onnx"))
    assert [i.name for i in proto.graph.input] == ["pixels"]
    assert [o.name for o in proto.graph.output] == ["label", "probabilities"]
    assert proto.opset_import[0].version == OPSET
    X = mnist.test_images  # raw uint8 (10000, 28, 28)
    assert X.dtype == np.uint8 and X.shape == (10000, 28, 28)
    labels, proba = run_onnx(proto, X)
    expected = reference_proba(model, X)
    assert proba.shape == (10000, 10)
    assert np.abs(proba - expected).max() < 1e-5
    np.testing.assert_array_equal(labels, model.classes[np.argmax(expected, axis=1)])
    ops = {n.op_type for n in proto.graph.node}
    assert ("GatherElements" in ops) == (kind == "deskewed")
    assert ("Div" in ops and any(i.name.startswith("temperature") for i in proto.graph.initializer)) == (
        kind == "calibrated")


def test_string_labels_flat_inputs_and_float_input_from_the_estimator():
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(3, 5)).astype(np.float32)
    model = SoftmaxModel(coef, np.float32([0.1, -0.2, 0.3]), np.array(["cat", "dog", "eel"]),
                         Preprocessing(scale=1 / 16), ("cat", "dog", "eel"))
    X = rng.integers(0, 17, size=(50, 5)).astype(np.uint8)
    labels, proba = run_onnx(model.to_onnx(), X)
    assert np.abs(proba - model.predict_proba(X)).max() < 1e-6
    assert labels.tolist() == model.predict(X).tolist()

    from mnist_softmax import SoftmaxClassifier

    Xf = rng.normal(size=(120, 6)).astype(np.float32)
    y = (Xf[:, 0] > 0).astype(int) + 2 * (Xf[:, 1] > 0.5)
    clf = SoftmaxClassifier(random_state=0).fit(Xf, y)
    labels, proba = run_onnx(clf.to_onnx(), Xf)
    assert np.abs(proba - clf.predict_proba(Xf)).max() < 1e-6
    np.testing.assert_array_equal(labels, clf.predict(Xf))


def test_json_export_holds_the_exact_weights(tmp_path):
    rng = np.random.default_rng(1)
    model = SoftmaxModel(rng.normal(size=(2, 4)).astype(np.float32), np.float32([0.5, -1e-9]), np.array([3, 7]),
                         Preprocessing(scale=1 / 255, image_shape=(2, 2)), ("three", "seven"))
    path = tmp_path / "m.npz"
    save_model(model, path)
    assert main(["export", str(path), "--format", "json", "--out", str(tmp_path / "w.json"), "-q"]) == 0
    data = json.loads((tmp_path / "w.json").read_text())
    assert data == to_json(load_model(path))
    np.testing.assert_array_equal(np.float32(data["coef"]), model.coef)  # float32 round trip: bit for bit
    np.testing.assert_array_equal(np.float32(data["intercept"]), model.intercept)
    assert data["classes"] == [3, 7] and data["class_names"] == ["three", "seven"]
    assert data["image_shape"] == [2, 2] and data["scale"] == 1 / 255 and data["deskew"] is False
    assert data["temperature"] == 1.0
    x = np.arange(4) * 60.0  # what a hand port computes
    z = np.float32(data["coef"]) @ (x * data["scale"]) + np.float32(data["intercept"])
    np.testing.assert_allclose(softmax(z[None])[0], model.predict_proba(x[None])[0], atol=1e-6)


def test_export_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    assert main(["export", str(bad), "--out", str(tmp_path / "x.onnx")]) == ExitCode.MODEL
    assert capsys.readouterr().err.count("\n") == 1
    model = SoftmaxModel(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.array([0, 1]))
    save_model(model, tmp_path / "m.npz")
    assert main(["export", str(tmp_path / "m.npz"), "--out", str(tmp_path / "no" / "x.onnx")]) == ExitCode.OUTPUT
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write") and err.count("\n") == 1
    assert not (tmp_path / "no").exists()
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(tmp_path / "m.npz"), "--format", "tflite", "--out", "x"])
    assert exit_.value.code == ExitCode.USAGE and "invalid choice: 'tflite'" in capsys.readouterr().err
    bad_t = with_temperature(model, -1.0)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        bad_t.to_onnx()


def port_deskew(x: np.ndarray) -> np.ndarray:
    """The JSON export's deskew_method, written from its words alone, pixel by pixel in float64."""
    h, w = x.shape
    ys, xs = np.arange(h), np.arange(w)
    if not (x > 0).any():
        cy, cx, alpha = h / 2, w / 2, 0.0
    else:
        m = x.sum()
        cy, cx = (ys * x.sum(1)).sum() / m, (xs * x.sum(0)).sum() / m
        var_y = (x.sum(1) * (ys - cy) ** 2).sum() / m
        cov = (x * np.outer(ys - cy, xs - cx)).sum() / m
        alpha = float(np.clip(cov / var_y if var_y > 1e-6 else 0.0, -1, 1))

    def at(r, c):
        return x[r, c] if 0 <= r < h and 0 <= c < w else 0.0

    out = np.zeros((h, w))
    for y in range(h):
        r = y + cy - h / 2
        r0, fr = int(np.floor(r)), r - np.floor(r)
        for col in range(w):
            c = col + cx - w / 2 + alpha * (y - h / 2)
            c0, fc = int(np.floor(c)), c - np.floor(c)
            top = at(r0, c0) * (1 - fc) + at(r0, c0 + 1) * fc
            bottom = at(r0 + 1, c0) * (1 - fc) + at(r0 + 1, c0 + 1) * fc
            out[y, col] = top * (1 - fr) + bottom * fr
    return out


def test_json_deskew_method_is_enough_to_port_the_deskewing(mnist):
    model = SoftmaxModel(np.zeros((10, 784), np.float32), np.zeros(10, np.float32), np.arange(10),
                         Preprocessing(1 / 255, (28, 28), deskew=True))
    data = to_json(model)
    assert "alpha = cov / var_y" in data["deskew_method"]
    images = np.concatenate([mnist.test_images[:30], np.zeros((1, 28, 28), np.uint8)])
    ported = np.stack([port_deskew(x * data["scale"]) for x in images.astype(np.float64)])
    np.testing.assert_allclose(ported.reshape(len(images), -1), model.features(images), atol=2e-5)
    assert "deskew_method" not in to_json(dataclasses.replace(model, preprocessing=Preprocessing(1 / 255, (28, 28))))


@pytest.mark.parametrize("shape", [(20, 12), (12, 20), (8, 8)])
def test_deskew_in_onnx_for_any_image_shape_blank_and_single_pixel_images(shape):
    rng = np.random.default_rng(0)
    d = shape[0] * shape[1]
    model = SoftmaxModel(rng.normal(size=(4, d)).astype(np.float32), rng.normal(size=4).astype(np.float32),
                         np.array([1, 5, 7, 9]), Preprocessing(1 / 255, shape, deskew=True))
    X = (rng.random((300, *shape)) ** 3 * 255).astype(np.uint8)
    X[0] = 0  # blank: read in place
    X[1] = 0
    X[1, 3, 4] = 200  # one pixel: no variance, no shear
    labels, proba = run_onnx(model.to_onnx(), X)
    assert np.abs(proba - model.predict_proba(X)).max() < 1e-5
    np.testing.assert_array_equal(labels, model.predict(X))
