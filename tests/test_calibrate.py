"""Temperature scaling and the expected calibration error (calibrate.py), and calibrated probabilities end to end."""

import json

import numpy as np
import pytest

from mnist_softmax import load_model
from mnist_softmax.calibrate import expected_calibration_error, fit_temperature, nll
from mnist_softmax.cli import main
from mnist_softmax.model import softmax


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 10))
    for true_t in (0.5, 1.0, 2.5):
        p = softmax(logits / true_t)
        labels = (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)  # drawn from the calibrated model
        t = fit_temperature(logits, labels)
        assert t == pytest.approx(true_t, rel=0.05)
        assert nll(logits, labels, t) <= nll(logits, labels, true_t) + 1e-9  # the optimum on this sample


def test_ece_by_hand():
    # three predictions in bin (0.6, 0.667], two right: |2/3 - 0.65| = 0.0167; one in the last bin, wrong: |0 - 0.95|
    p = np.array([[0.65, 0.35], [0.65, 0.35], [0.35, 0.65], [0.95, 0.05]])
    labels = np.array([0, 0, 0, 1])
    expected = (3 / 4) * abs(2 / 3 - 0.65) + (1 / 4) * 0.95
    assert expected_calibration_error(p, labels) == pytest.approx(expected)
    assert expected_calibration_error(np.eye(3), np.arange(3)) == 0.0  # certain and right
    assert expected_calibration_error(np.zeros((0, 3)), np.zeros(0, int)) == 0.0


def test_calibrated_model_end_to_end(tmp_path, capsys):
    """train stores a temperature fitted on validation; predict_proba, predict --json and evaluate use/show it."""
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--out", str(out), "-q", "--no-plots"]) == 0
    model = load_model(out / "model.npz")
    cal = model.metadata["calibration"]
    assert model.temperature == cal["temperature"] and model.temperature != 1.0
    assert cal["nll_after"] <= cal["nll_before"]  # fitted to minimise exactly this on the same split
    image = np.zeros((8, 8), np.float32)
    image[1:7, 3:5] = 16
    np.testing.assert_allclose(model.predict_proba(image[None]), softmax(model.logits(image[None]) / model.temperature),
                               rtol=1e-5)
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.npz"), "--split", "validation", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["ece"]["temperature"] == model.temperature
    assert row["ece"]["after"] == pytest.approx(cal["ece_after"], abs=1e-6)
