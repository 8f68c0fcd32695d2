"""The math: loss and gradient against finite differences and scikit-learn, solvers against known optima."""

import numpy as np
import pytest

from mnist_softmax.errors import DivergenceError
from mnist_softmax.model import log_softmax, loss_and_grad, softmax
from mnist_softmax.recipes import get_recipe
from mnist_softmax.solvers import solve


def problem(n=200, d=12, k=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W_true = rng.normal(size=(k, d))
    y = np.argmax(X @ W_true.T + rng.gumbel(size=(n, k)), axis=1)
    return X, y


def test_log_softmax_is_stable_for_huge_logits():
    z = np.array([[1e30, 0.0, -1e30], [1000.0, 1000.0, 1000.0]])
    out = log_softmax(z)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[1], np.log(1 / 3))
    np.testing.assert_allclose(softmax(z).sum(axis=1), 1)


@pytest.mark.parametrize("centred", [False, True])
def test_gradient_matches_finite_differences(centred):
    X, y = problem()
    k, d = 4, X.shape[1]
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(k, d)) * 0.3, rng.normal(size=k)
    mu = X.mean(axis=0) if centred else None
    l2 = 0.05
    _, gW, gb = loss_and_grad(W, b, X, y, l2, mu)
    eps = 1e-6
    for i, j in [(0, 0), (1, 5), (3, 11), (2, 7)]:
        Wp, Wm = W.copy(), W.copy()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        numeric = (loss_and_grad(Wp, b, X, y, l2, mu)[0] - loss_and_grad(Wm, b, X, y, l2, mu)[0]) / (2 * eps)
        assert gW[i, j] == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    for i in range(k):
        bp, bm = b.copy(), b.copy()
        bp[i] += eps
        bm[i] -= eps
        numeric = (loss_and_grad(W, bp, X, y, l2, mu)[0] - loss_and_grad(W, bm, X, y, l2, mu)[0]) / (2 * eps)
        assert gb[i] == pytest.approx(numeric, rel=1e-5, abs=1e-8)


def test_gradient_vanishes_at_scikit_learns_optimum():
    """An independent implementation: scikit-learn's optimum of the same objective zeroes our gradient."""
    from sklearn.linear_model import LogisticRegression

    X, y = problem()
    l2 = 0.01
    clf = LogisticRegression(C=1 / (len(y) * l2), tol=1e-12, max_iter=10000).fit(X, y)
    _, gW, gb = loss_and_grad(clf.coef_, clf.intercept_, X, y, l2)
    assert np.abs(gW).max() < 1e-6 and np.abs(gb).max() < 1e-6
    _, gW0, _ = loss_and_grad(np.zeros_like(clf.coef_), np.zeros(4), X, y, l2)
    assert np.abs(gW0).max() > 1e-2  # and it is not zero everywhere


def objective(W, b, X, y, l2):
    return loss_and_grad(W.astype(np.float64), b.astype(np.float64), X, y, l2)[0]


@pytest.mark.parametrize("l2", [1e-2, 1e-3])
def test_optimal_recipe_matches_scikit_learn_objective(l2):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    recipe = get_recipe("optimal").with_overrides(l2=l2, tol=1e-7)
    ours = solve(X, y, 10, recipe, np.random.default_rng(0))
    theirs = LogisticRegression(C=1 / (len(y) * l2), tol=1e-10, max_iter=10000).fit(X, y)
    f_ours = objective(ours.coef, ours.intercept, X, y, l2)
    f_theirs = objective(theirs.coef_, theirs.intercept_, X, y, l2)
    assert abs(f_ours - f_theirs) / f_theirs < 1e-4
    assert np.mean(ours.coef.argmax(0) == theirs.coef_.argmax(0)) > 0.9  # the same weights, not just the same value


def test_sgd_diverges_with_a_clear_error():
    X, y = problem()
    recipe = get_recipe("tutorial").with_overrides(learning_rate=1e30, steps=50)
    with pytest.raises(DivergenceError, match=r"training diverged at step \d+: the loss is .*, up from 1.39 at the start; lower the learning rate \(now 1e\+30\)"):
        solve(X, y, 4, recipe, np.random.default_rng(0))


def test_tutorial_recipe_is_plain_sgd_from_zero():
    X, y = problem(n=640)
    recipe = get_recipe("tutorial").with_overrides(steps=30)
    assert (recipe.learning_rate, recipe.batch_size, recipe.momentum, recipe.l2, recipe.center) == (0.5, 64, 0, 0, False)
    sol = solve(X, y, 4, recipe, np.random.default_rng(0), monitor={"test": (X[:50], y[:50])})
    h = sol.history
    assert h["step"].tolist() == list(range(31))  # every step, from the zero start
    assert h["train_loss"][0] == pytest.approx(np.log(4), rel=1e-6)  # zero weights: uniform probabilities
    assert h["test_loss"][-1] < h["test_loss"][0]
    # One plain SGD step by hand, on the first batch of the solver's first epoch order, reproduces its first snapshot.
    rows = np.random.default_rng(0).permutation(len(y))[:64]
    _, gW, gb = loss_and_grad(np.zeros((4, 12)), np.zeros(4), X[rows], y[rows])
    one = get_recipe("tutorial").with_overrides(steps=1)
    sol1 = solve(X, y, 4, one, np.random.default_rng(0))
    np.testing.assert_allclose(sol1.coef, -0.5 * gW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sol1.intercept, -0.5 * gb, rtol=1e-4, atol=1e-6)


def test_curves_match_direct_evaluation():
    from mnist_softmax.metrics import _curves, curves

    X, y = problem()
    rng = np.random.default_rng(3)
    coefs = rng.normal(size=(5, 4, 12)).astype(np.float32)
    intercepts = rng.normal(size=(5, 4)).astype(np.float32)
    loss, acc = curves(coefs, intercepts, X, y)
    for s in range(5):
        z = X @ coefs[s].T.astype(np.float64) + intercepts[s]
        assert loss[s] == pytest.approx(-log_softmax(z)[np.arange(len(y)), y].mean(), rel=1e-5)
        assert acc[s] == np.mean(z.argmax(1) == y)
    # A zero snapshot (every solver's start) is scored without a matrix product: it must agree with the product.
    zero_coef, zero_intercept = np.zeros((1, 4, 12), np.float32), np.zeros((1, 4), np.float32)
    mixed_loss, mixed_acc = curves(np.concatenate([zero_coef, coefs]), np.concatenate([zero_intercept, intercepts]), X, y)
    np.testing.assert_array_equal(mixed_acc[1:], acc)
    np.testing.assert_allclose(mixed_loss[1:], loss)
    full_loss, full_acc = _curves(zero_coef, zero_intercept, X, y, None)
    assert mixed_loss[0] == pytest.approx(full_loss[0]) == pytest.approx(np.log(4))
    assert mixed_acc[0] == full_acc[0] == np.mean(y == 0)  # all tied: the first class is predicted, as argmax does


def test_averaging_returns_the_mean_of_the_last_iterates():
    X, y = problem(n=640)
    recipe = get_recipe("default").with_overrides(steps=40)
    assert recipe.schedule == "constant" and recipe.average == 0.5
    # With a constant rate, a run of k steps follows the first k steps of a longer run, so these are its iterates.
    iterates = [solve(X, y, 4, recipe.with_overrides(steps=k, average=0.0), np.random.default_rng(0)) for k in range(21, 41)]
    averaged = solve(X, y, 4, recipe, np.random.default_rng(0))
    np.testing.assert_allclose(averaged.coef, np.mean([s.coef for s in iterates], axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(averaged.intercept, np.mean([s.intercept for s in iterates], axis=0), rtol=1e-4, atol=1e-5)
    assert np.abs(averaged.coef - iterates[-1].coef).max() > 1e-3  # not simply the last iterate
    assert averaged.history["step"][-1] == 40
