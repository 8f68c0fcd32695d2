"""Evidence maps are exact: summed over pixels, plus the intercept, they give the logits."""

import numpy as np
from sklearn.datasets import load_digits

from mnist_softmax import Preprocessing, SoftmaxClassifier, SoftmaxModel
from mnist_softmax.explain import contrast, evidence_from_features, top_classes


def test_estimator_evidence_sums_to_the_decision_function():
    X, y = load_digits(return_X_y=True)
    X = X / 16
    clf = SoftmaxClassifier(random_state=0).fit(X, y)
    E = clf.evidence(X[:50])
    assert E.shape == (50, 10, 64)
    np.testing.assert_allclose(E.sum(axis=2) + clf.intercept_, clf.decision_function(X[:50]), rtol=1e-5, atol=1e-5)


def test_model_evidence_is_per_pixel_and_uses_the_preprocessing():
    rng = np.random.default_rng(0)
    model = SoftmaxModel(rng.normal(size=(3, 16)).astype(np.float32), rng.normal(size=3).astype(np.float32),
                         np.arange(3), Preprocessing(scale=1 / 255, image_shape=(4, 4), deskew=True))
    raw = rng.integers(0, 256, size=(5, 4, 4))
    E = model.evidence(raw)
    assert E.shape == (5, 3, 4, 4)
    np.testing.assert_allclose(E.sum(axis=(2, 3)) + model.intercept, model.logits(raw), rtol=1e-5, atol=1e-5)
    features = model.features(raw)
    assert not np.allclose(features, raw.reshape(5, -1) / 255)  # deskewing was applied
    why = contrast(features, model.coef, 0, 1)  # why 0 and not 1
    np.testing.assert_allclose(why.sum(axis=1), model.logits(raw)[:, 0] - model.logits(raw)[:, 1]
                               - (model.intercept[0] - model.intercept[1]), rtol=1e-4, atol=1e-4)


def test_top_classes():
    p = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    assert top_classes(p, 2).tolist() == [[1, 2], [0, 2]]


def test_evidence_relative_to_the_mean_digit_sums_to_the_score_difference():
    X, y = load_digits(return_X_y=True)
    X = X / 16
    clf = SoftmaxClassifier(random_state=0).fit(X, y)
    mean = X.mean(axis=0)
    E = evidence_from_features(X[:30], clf.coef_, (8, 8), reference=mean)
    assert E.shape == (30, 10, 8, 8)
    z, z_mean = clf.decision_function(X[:30]), clf.decision_function(mean[None])
    np.testing.assert_allclose(E.sum(axis=(2, 3)), z - z_mean, rtol=1e-5, atol=1e-5)
    assert not np.allclose(E, evidence_from_features(X[:30], clf.coef_, (8, 8)))  # a different explanation
    blank = X[:30] == 0
    assert np.abs(E.reshape(30, 10, 64)[np.repeat(blank[:, None], 10, axis=1)]).max() > 0  # missing ink counts
    why = contrast(X[:30], clf.coef_, 3, 8, reference=mean)
    np.testing.assert_allclose(why.sum(axis=1), (z[:, 3] - z[:, 8]) - (z_mean[0, 3] - z_mean[0, 8]), atol=1e-5)
