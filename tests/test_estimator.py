"""SoftmaxClassifier as a scikit-learn citizen, and models saved from it."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import check_estimator

from mnist_softmax import SoftmaxClassifier, load_model, save_model
from mnist_softmax.errors import UsageError
from mnist_softmax.recipes import RECIPES


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.2, random_state=0)


def test_passes_check_estimator():
    results = check_estimator(SoftmaxClassifier(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []
    assert sum(r["status"] == "passed" for r in results) > 40


def test_fit_predict_and_attributes(digits):
    X_train, X_test, y_train, y_test = digits
    clf = SoftmaxClassifier(random_state=0).fit(X_train, y_train, eval_set=(X_test, y_test))
    assert clf.coef_.shape == (10, 64) and clf.intercept_.shape == (10,)
    assert clf.classes_.tolist() == list(range(10))
    assert clf.score(X_test, y_test) >= 0.95
    proba = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(X_test), clf.classes_[proba.argmax(1)])
    h = clf.history_
    assert set(h) == {"step", "epoch", "train_loss", "train_accuracy", "validation_loss", "validation_accuracy"}
    assert h["epoch"][0] == 0 and h["epoch"][-1] == clf.n_epochs_
    assert len(h["step"]) >= 20 and np.ptp(np.diff(h["step"])) <= 1  # about 24 evenly spaced record points
    assert clf.n_iter_ == RECIPES["default"].min_steps > 100  # small data: the default recipe's floor on steps
    assert h["train_loss"][-1] < h["train_loss"][0] and h["validation_accuracy"][-1] > 0.9


@pytest.mark.parametrize("recipe", ["default", "tutorial"])
def test_training_data_sorted_by_class(digits, recipe):
    """Batches are drawn at random from all rows, so data sorted by label trains as well as shuffled data."""
    X_train, X_test, y_train, y_test = digits
    order = np.argsort(y_train, kind="stable")
    shuffled = SoftmaxClassifier(recipe, random_state=0).fit(X_train, y_train).score(X_test, y_test)
    sorted_ = SoftmaxClassifier(recipe, random_state=0).fit(X_train[order], y_train[order]).score(X_test, y_test)
    assert sorted_ >= 0.93 and abs(sorted_ - shuffled) < 0.02, (sorted_, shuffled)


def test_average_zero_keeps_the_last_step(digits):
    X_train, _, y_train, _ = digits
    last = SoftmaxClassifier(average=0.0, steps=50, random_state=0).fit(X_train, y_train)
    mean = SoftmaxClassifier(steps=50, random_state=0).fit(X_train, y_train)
    shorter = SoftmaxClassifier(average=0.0, steps=49, random_state=0).fit(X_train, y_train)
    # The default averages the last 25 steps; with averaging off the model is the 50th step itself.
    assert np.abs(last.coef_ - mean.coef_).max() > 1e-3
    assert np.abs(last.coef_ - shorter.coef_).max() > 0
    assert last.to_model().metadata["hyperparameters"]["average"] == 0.0


def test_same_seed_same_model_and_string_labels(digits):
    X_train, _, y_train, _ = digits
    names = np.array(list("abcdefghij"))[y_train]
    a = SoftmaxClassifier(random_state=3).fit(X_train, names)
    b = SoftmaxClassifier(random_state=3).fit(X_train, names)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert set(a.predict(X_train[:20])) <= set("abcdefghij")


def test_pipeline_and_grid_search(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(FunctionTransformer(lambda X: X), SoftmaxClassifier(random_state=0))
    grid = GridSearchCV(pipe, {"softmaxclassifier__l2": [1e-4, 1e-2]}, cv=3).fit(X_train, y_train)
    assert grid.best_params_["softmaxclassifier__l2"] in (1e-4, 1e-2)
    assert grid.score(X_test, y_test) >= 0.93


@pytest.mark.parametrize(
    "params, message",
    [
        ({"learning_rate": -1}, "learning_rate must be > 0, got -1"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
        ({"recipe": "fast"}, "unknown recipe 'fast'; choose from tutorial, default, optimal"),
        ({"steps": 10, "epochs": 2}, "give either steps or epochs, not both"),
        ({"l2": float("nan")}, "l2 must be >= 0, got nan"),
        ({"average": 1.5}, "average must be in [0, 1], got 1.5"),
        ({"average": "x"}, "average must be a number, got 'x'"),
        ({"learning_rate": "fast"}, "learning_rate must be a number, got 'fast'"),
    ],
)
def test_bad_parameters_are_named(digits, params, message):
    X_train, _, y_train, _ = digits
    with pytest.raises(UsageError, match=re.escape(message)):
        SoftmaxClassifier(**params).fit(X_train, y_train)


def test_non_finite_input_is_refused(digits):
    X_train, _, y_train, _ = digits
    X = X_train.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxClassifier().fit(X, y_train)



@pytest.mark.parametrize("scale", [1e4, 1e10, 1e14])
def test_features_of_any_large_scale_train_as_well(digits, scale):
    """The learning-rate cap follows the data's curvature, measured without overflow (x x^T of 1e10 is 1e20):
    the same model, scaled, as on features of about 1."""
    X_train, X_test, y_train, y_test = digits
    base = SoftmaxClassifier(random_state=0).fit(X_train, y_train)
    reference = SoftmaxClassifier(random_state=0).fit(X_train * 100, y_train)  # the cap binds from here on
    large = SoftmaxClassifier(random_state=0).fit(X_train * scale, y_train)
    assert large.learning_rate_ * scale**2 == pytest.approx(reference.learning_rate_ * 100**2, rel=1e-3)
    assert large.score(X_test * scale, y_test) >= base.score(X_test, y_test) - 0.02


@pytest.mark.parametrize("recipe", ["default", "optimal"])
def test_features_too_large_for_float32_get_one_clear_error(digits, recipe):
    X_train, _, y_train, _ = digits
    with pytest.raises(UsageError, match=r"features as large as 1e\+20 are too large to train on"):
        SoftmaxClassifier(recipe).fit(X_train * 1e20, y_train)
    with pytest.raises(UsageError, match="too large"):
        SoftmaxClassifier().partial_fit(X_train * -1e20, y_train, classes=np.arange(10))

def test_saved_model_with_a_scale_predicts_from_raw_pixels(tmp_path):
    """fit on pixels / 16, saved with scale 1/16 and the image shape: the loaded model takes the raw 0-16 images."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    clf = SoftmaxClassifier(random_state=0).fit(X / 16, y)
    model = load_model(save_model(clf.to_model(scale=1 / 16, image_shape=(8, 8)), tmp_path / "m.npz"))
    assert model.preprocessing.image_shape == (8, 8) and model.preprocessing.scale == 1 / 16
    np.testing.assert_array_equal(model.predict(X.reshape(-1, 8, 8)), clf.predict(X / 16))
    assert model.score(X, y) == clf.score(X / 16, y)
    with pytest.raises(UsageError, match="image_shape"):
        clf.to_model(image_shape=(8, 7))
    for bad in (0.0, -1 / 16, float("nan"), float("inf")):  # a file its own loader would refuse is never made
        with pytest.raises(UsageError, match="scale"):
            clf.to_model(scale=bad)


def test_saved_model_predicts_the_same(digits, tmp_path):
    X_train, X_test, y_train, _ = digits
    clf = SoftmaxClassifier(random_state=0).fit(X_train, np.array(list("abcdefghij"))[y_train])
    path = save_model(clf.to_model(note="digits"), tmp_path / "m.npz")
    model = load_model(path)
    np.testing.assert_array_equal(model.predict(X_test), clf.predict(X_test))
    # Both compute in float32 from the same float32 weights, in products of different shapes (BLAS may sum in
    # another order): equal to float32 rounding.
    np.testing.assert_allclose(model.decision_function(X_test), clf.decision_function(X_test), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict_proba(X_test), clf.predict_proba(X_test), rtol=1e-4, atol=1e-7)
    assert model.metadata["note"] == "digits"
    assert model.metadata["hyperparameters"]["name"] == "default"


def test_importing_the_package_does_not_import_scikit_learn_or_numpy():
    code = "import sys, mnist_softmax; print('sklearn' in sys.modules, 'scipy' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]
    code = "import mnist_softmax; print(mnist_softmax.load_dataset.__module__, mnist_softmax.SoftmaxModel.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["mnist_softmax.data", "SoftmaxModel"]  # each name found on first use


@pytest.mark.parametrize("given, used", [(None, "20"), ("25", "25")])
def test_the_command_lets_idle_blas_threads_sleep_before_numpy_loads_blas(given, used):
    """Idle OpenBLAS threads spin 0.1 s of a core at start-up and after every multi-threaded product unless told
    otherwise before numpy loads; the command tells them (a value the user set wins)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"} | (
        {"OPENBLAS_THREAD_TIMEOUT": given} if given else {})
    code = "import os, sys, mnist_softmax.cli; print('numpy' in sys.modules, os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert out.split() == ["False", used]
