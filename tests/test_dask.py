"""Dask: the exact distributed optimum, distributed SGD, blockwise prediction, dask-ml's Incremental, and dask
never imported unless asked for."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from mnist_softmax import SoftmaxClassifier, load_dataset
from mnist_softmax.cli import main
from mnist_softmax.model import loss_and_grad


def _need_dask():
    try:
        import dask  # noqa: F401
        import dask_ml  # noqa: F401
        import distributed  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the dask extra is missing in CI ({exc}); pip install -e '.[test,dask]'")
        pytest.skip(f"the dask extra is not installed ({exc})")


@pytest.fixture(scope="module")
def client():
    _need_dask()
    from distributed import Client, LocalCluster

    with (LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
          Client(cluster) as c):
        yield c


@pytest.fixture(scope="module")
def mnist():
    from conftest import MNIST_DIR, _need

    ds = load_dataset("mnist", _need(MNIST_DIR, "the shared MNIST files beside the repository"))
    X = ds.train_images[:55000].reshape(55000, -1).astype(np.float32) / 255
    X_test = ds.test_images.reshape(10000, -1).astype(np.float32) / 255
    return X, ds.train_labels[:55000], X_test, ds.test_labels


def _objective(clf, X, y, l2):
    return loss_and_grad(clf.coef_, clf.intercept_, X, y, l2)[0]


def test_exact_solver_reaches_the_numpy_optimum(client, mnist):
    import dask.array as da

    X, y, X_test, y_test = mnist
    X, y = X[:10000], y[:10000]
    numpy_fit = SoftmaxClassifier("optimal").fit(X, y)
    dX, dy = da.from_array(X, chunks=(2500, -1)), da.from_array(y, chunks=2500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sending large graph": the test's arrays live in the graph
        dask_fit = SoftmaxClassifier("optimal").fit(dX, dy)
    ours, theirs = _objective(dask_fit, X, y, 1e-4), _objective(numpy_fit, X, y, 1e-4)
    assert abs(ours - theirs) / theirs < 1e-5, (ours, theirs)
    predicted = dask_fit.predict(da.from_array(X_test, chunks=(3000, -1)))
    assert isinstance(predicted, da.Array)  # blockwise and lazy
    agree = np.mean(predicted.compute() == numpy_fit.predict(X_test))
    assert agree >= 0.999, agree
    assert dask_fit.classes_.tolist() == list(range(10)) and dask_fit.n_features_in_ == 784
    assert dask_fit.history_["objective"][-1] == pytest.approx(ours, rel=1e-5)


def test_distributed_sgd_and_blockwise_prediction(client):
    import dask.array as da
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    dX, dy = da.from_array(X[:1400], chunks=(700, -1)), da.from_array(labels[:1400], chunks=700)
    clf = SoftmaxClassifier(epochs=30, random_state=0).fit(dX, dy)
    numpy_fit = SoftmaxClassifier(epochs=30, random_state=0).fit(X[:1400], labels[:1400])
    assert clf.score(X[1400:], labels[1400:]) >= numpy_fit.score(X[1400:], labels[1400:]) - 0.02
    assert clf.n_iter_ == 30 * 3 and clf.n_epochs_ == 30  # 30 rounds of 3 steps in each block of 700 rows
    assert clf.classes_.tolist() == sorted(set(labels))
    test = da.from_array(X[1400:], chunks=(100, -1))
    np.testing.assert_array_equal(clf.predict(test).compute(), clf.predict(X[1400:]))
    np.testing.assert_allclose(clf.predict_proba(test).compute(), clf.predict_proba(X[1400:]), rtol=1e-4, atol=1e-6)
    assert clf.decision_function(test).shape == (397, 10)


def test_bad_dask_input(client):
    import dask.array as da

    X = np.random.default_rng(0).random((100, 5))
    with pytest.raises(ValueError, match="X has 100 rows but y has 90"):
        SoftmaxClassifier().fit(da.from_array(X, chunks=50), da.from_array(np.arange(90) % 2, chunks=50))
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxClassifier().fit(da.from_array(X, chunks=50), da.from_array(np.arange(100) % 2, chunks=50))
    with pytest.raises(ValueError, match="eval_set is not supported with dask arrays"):
        SoftmaxClassifier().fit(da.from_array(X, chunks=50), np.arange(100) % 2, eval_set=(X, np.arange(100) % 2))
    with pytest.raises(ValueError, match="only one class"):
        SoftmaxClassifier().fit(da.from_array(X[:, :2] * 0, chunks=50), da.from_array(np.zeros(100), chunks=50))


def test_dask_ml_incremental_three_passes(client, mnist):
    import dask.array as da
    from dask_ml.wrappers import Incremental

    X, y, X_test, y_test = mnist
    model = Incremental(SoftmaxClassifier(random_state=0), random_state=0)
    dX, dy = da.from_array(X, chunks=(1000, -1)), da.from_array(y, chunks=1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(3):
            model.partial_fit(dX, dy, classes=np.arange(10))
    assert model.estimator_.n_iter_ == 3 * 55 * 4
    assert model.estimator_.score(X_test, y_test) >= 0.924


def test_train_on_a_local_cluster_command(tmp_path, capsys):
    _need_dask()
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        code = main(["train", "--dataset", "digits", "--recipe", "optimal", "--dask", "local", "--out", str(out),
                     "--no-plots", "--json"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["dask"] == "local" and metrics["dask_workers"] >= 1
    assert main(["train", "--dataset", "digits", "--recipe", "optimal", "--out", str(tmp_path / "b"), "--json",
                 "--no-plots"]) == 0
    numpy_metrics = json.loads(capsys.readouterr().out)
    assert metrics["train_loss"] == pytest.approx(numpy_metrics["train_loss"], rel=1e-4)
    assert abs(metrics["test_accuracy"] - numpy_metrics["test_accuracy"]) <= 1 / 360
    assert main(["train", "--dataset", "digits", "--dask", "tcp://127.0.0.1:9", "--out", str(tmp_path / "c")]) == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err


def test_dask_is_imported_only_when_asked(tmp_path):
    script = f"""
import sys, numpy as np
import mnist_softmax
from mnist_softmax import SoftmaxClassifier
from mnist_softmax.cli import main
from sklearn.datasets import load_digits
X, y = load_digits(return_X_y=True)
clf = SoftmaxClassifier().fit(X / 16, y)
clf.partial_fit(X[:100] / 16, y[:100])
clf.predict(X)
assert main(["train", "--dataset", "digits", "--no-plots", "--quiet", "--out", {str(tmp_path / "run")!r}]) == 0
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed", "dask_ml"))
print(loaded)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
