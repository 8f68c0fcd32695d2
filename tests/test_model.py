"""The math: loss and gradient against finite differences and scikit-learn, solvers against known optima."""

import numpy as np
import pytest

from mnist_softmax.errors import DivergenceError
from mnist_softmax.metrics import roughness
from mnist_softmax.model import image_grid, log_softmax, loss_and_grad, smoothness, softmax
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


@pytest.mark.parametrize("centred, smooth", [(False, 0.0), (True, 0.0), (False, 0.3), (True, 0.3)])
def test_gradient_matches_finite_differences(centred, smooth):
    X, y = problem()
    k, d = 4, X.shape[1]
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(k, d)) * 0.3, rng.normal(size=k)
    mu = X.mean(axis=0) if centred else None
    l2 = 0.05
    options = {"smooth": smooth, "image_shape": (3, 4)}  # 12 features as a 3x4 image

    def loss(W, b):
        return loss_and_grad(W, b, X, y, l2, mu, **options)[0]

    _, gW, gb = loss_and_grad(W, b, X, y, l2, mu, **options)
    eps = 1e-6
    for i, j in [(0, 0), (1, 5), (3, 11), (2, 7), (0, 3), (1, 8)]:  # corners, edges and the middle of the image
        Wp, Wm = W.copy(), W.copy()
        Wp[i, j] += eps
        Wm[i, j] -= eps
        assert gW[i, j] == pytest.approx((loss(Wp, b) - loss(Wm, b)) / (2 * eps), rel=1e-5, abs=1e-8)
    for i in range(k):
        bp, bm = b.copy(), b.copy()
        bp[i] += eps
        bm[i] -= eps
        assert gb[i] == pytest.approx((loss(W, bp) - loss(W, bm)) / (2 * eps), rel=1e-5, abs=1e-8)


def test_smoothness_penalty_sums_neighbour_differences():
    rng = np.random.default_rng(2)
    W = rng.normal(size=(2, 12))
    value, grad = smoothness(W, (3, 4))
    V = W.reshape(2, 3, 4)
    by_hand = 0.0
    for c in range(2):
        for r in range(3):
            for q in range(4):
                if q + 1 < 4:
                    by_hand += (V[c, r, q + 1] - V[c, r, q]) ** 2
                if r + 1 < 3:
                    by_hand += (V[c, r + 1, q] - V[c, r, q]) ** 2
    assert value == pytest.approx(by_hand / 2)
    np.testing.assert_allclose(smoothness(np.ones((3, 12)) * 5, (3, 4))[1], 0)  # a flat map costs nothing
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-12)  # a Laplacian: shifting a map changes nothing
    # The penalty is quadratic, so value = <W, grad> / 2.
    assert value == pytest.approx(0.5 * np.vdot(W, grad))
    assert image_grid(784) == (28, 28) and image_grid(10) == (1, 10) and image_grid(12, (3, 4)) == (3, 4)


def test_roughness():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(10, 28 * 28))
    assert roughness(noise, (28, 28)) == pytest.approx(1, abs=0.03)  # independent pixels: as rough as any pair
    yy, xx = np.mgrid[:28, :28]
    blob = np.exp(-((xx - 14) ** 2 + (yy - 12) ** 2) / 40.0).ravel()[None]
    assert roughness(blob, (28, 28)) < 0.05
    checker = ((xx + yy) % 2 * 2 - 1).ravel()[None]
    assert roughness(checker, (28, 28)) == pytest.approx(2)  # every neighbour of the opposite sign
    assert roughness(np.zeros((2, 784)), (28, 28)) == 0
    # Smoothing a noisy map by the penalty's own gradient makes it smoother.
    smoothed = noise - 0.2 * smoothness(noise, (28, 28))[1]
    assert roughness(smoothed, (28, 28)) < 0.8 * roughness(noise, (28, 28))


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
    """The optimal recipe at smooth=0 (its default) solves scikit-learn's problem: the same objective value."""
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
    message = (r"training diverged at step \d+: the loss is .*, up from 1.39 at the start; "
               r"lower the learning rate \(now 1e\+30\)")
    with pytest.raises(DivergenceError, match=message):
        solve(X, y, 4, recipe, np.random.default_rng(0))


def test_tutorial_recipe_is_plain_sgd_from_zero():
    X, y = problem(n=640)
    recipe = get_recipe("tutorial").with_overrides(steps=30)
    assert (recipe.learning_rate, recipe.batch_size, recipe.momentum, recipe.l2, recipe.smooth, recipe.center) == (
        0.5, 100, 0, 0, 0, False)  # TensorFlow's mnist_softmax.py: next_batch(100), GradientDescentOptimizer(0.5)
    sol = solve(X, y, 4, recipe, np.random.default_rng(0), monitor={"test": (X[:50], y[:50])})
    h = sol.history
    assert h["step"].tolist() == list(range(31))  # every step, from the zero start
    assert h["train_loss"][0] == pytest.approx(np.log(4), rel=1e-6)  # zero weights: uniform probabilities
    assert h["test_loss"][-1] < h["test_loss"][0]
    # One plain SGD step by hand, on the first batch of the solver's first epoch order, reproduces its first snapshot.
    rows = np.random.default_rng(0).permutation(len(y))[:100]
    _, gW, gb = loss_and_grad(np.zeros((4, 12)), np.zeros(4), X[rows], y[rows])
    one = get_recipe("tutorial").with_overrides(steps=1)
    sol1 = solve(X, y, 4, one, np.random.default_rng(0))
    np.testing.assert_allclose(sol1.coef, -0.5 * gW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sol1.intercept, -0.5 * gb, rtol=1e-4, atol=1e-6)


def test_sgd_on_scaled_pixels_equals_sgd_on_their_features():
    """train's ScaledPixels (8-bit pixels converted a batch at a time) train exactly the model float features do."""
    from mnist_softmax.solvers import ScaledPixels

    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(700, 36), dtype=np.uint8)
    y = rng.integers(0, 3, size=700)
    features = pixels.astype(np.float32) * np.float32(1 / 255)
    recipe = get_recipe("default").with_overrides(steps=30)
    a = solve(features, y, 3, recipe, np.random.default_rng(0), image_shape=(6, 6), final_train=True)
    b = solve(ScaledPixels(pixels, 1 / 255), y, 3, recipe, np.random.default_rng(0), image_shape=(6, 6),
              final_train=True)
    np.testing.assert_array_equal(a.coef, b.coef)
    np.testing.assert_array_equal(a.intercept, b.intercept)
    assert a.final_train == b.final_train and a.n_steps == b.n_steps == 30
    for name in ("train_loss", "train_accuracy"):
        np.testing.assert_array_equal(a.history[name], b.history[name])


def test_curves_match_direct_evaluation():
    from mnist_softmax import metrics
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
    mixed_loss, mixed_acc = curves(np.concatenate([zero_coef, coefs]), np.concatenate([zero_intercept, intercepts]),
                                   X, y)
    np.testing.assert_array_equal(mixed_acc[1:], acc)
    np.testing.assert_allclose(mixed_loss[1:], loss)
    chunked = metrics._ROWS
    try:  # the same over chunks of a few rows
        metrics._ROWS = 7
        chunk_loss, chunk_acc = curves(coefs, intercepts, X, y)
    finally:
        metrics._ROWS = chunked
    np.testing.assert_array_equal(chunk_acc, acc)
    np.testing.assert_allclose(chunk_loss, loss, rtol=1e-6)
    full_loss, full_acc = _curves(zero_coef, zero_intercept, X, y, None)
    assert mixed_loss[0] == pytest.approx(full_loss[0]) == pytest.approx(np.log(4))
    assert mixed_acc[0] == full_acc[0] == np.mean(y == 0)  # all tied: the first class is predicted, as argmax does


def test_curves_measured_beside_sgd_equal_those_measured_after(monkeypatch):
    """With a spare core a thread measures the curves while SGD runs: the history must be the one measured after
    training, to the bit, for every snapshot (also those of the last, partial group), and the thread must end,
    also when training fails."""
    import threading

    from mnist_softmax import solvers

    X, y = problem()
    recipe = get_recipe("default").with_overrides(steps=61, record="step")  # 62 snapshots: 7 groups of 8 and 6
    runs = []
    for background in (False, True, True):
        monkeypatch.setattr(solvers, "spare_core", lambda background=background: background)
        runs.append(solve(X, y, 4, recipe, np.random.default_rng(0), monitor={"validation": (X[:50], y[:50])}))
    for run in runs[1:]:
        assert set(run.history) == set(runs[0].history)
        for name, values in runs[0].history.items():
            assert len(values) == 62
            np.testing.assert_array_equal(run.history[name], values)
    loss, _ = curves_of(runs[0], X, y)
    np.testing.assert_allclose(runs[0].history["train_loss"], loss, rtol=1e-5)
    with pytest.raises(DivergenceError):
        solve(X, y, 4, recipe.with_overrides(learning_rate=1e30), np.random.default_rng(0))
    assert not [t for t in threading.enumerate() if t.name == "mnist-softmax-curves"]



def test_sgd_batches_cover_every_row_once_an_epoch_in_chunks_that_stop_at_epoch_ends():
    from mnist_softmax.solvers import _batch_rows

    chunks = list(_batch_rows(np.random.default_rng(0), 1000, 64, 37, 4))  # 16 batches an epoch, the last of 40
    assert [len(c) for c in chunks[:5]] == [256, 256, 256, 232, 256]  # four chunks and the epoch's end
    batches = [b for c in chunks for b in np.split(c, range(64, len(c), 64))]
    assert len(batches) == 37 and len(batches[15]) == 40
    for epoch in (batches[:16], batches[16:32]):
        assert sorted(np.concatenate(epoch)) == list(range(1000))
    assert all((np.diff(b) > 0).all() for b in batches)  # ascending rows within a batch
    assert not np.array_equal(np.concatenate(batches[:16]), np.concatenate(batches[16:32]))  # reshuffled


def test_batches_gathered_ahead_by_a_thread_give_the_same_fit(monkeypatch):
    """With a spare core a thread gathers SGD's batches a few at a time ahead of the solver: the fit must be the
    same to the bit, an error in the thread must reach the caller, and the thread must end, also when training
    fails."""
    import threading

    from mnist_softmax import solvers

    X, y = problem(n=1000)
    recipe = get_recipe("default").with_overrides(batch_size=64, steps=37)
    fits = []
    for background in (False, True):
        monkeypatch.setattr(solvers, "spare_core", lambda background=background: background)
        fits.append(solve(X, y, 4, recipe, np.random.default_rng(0)))
    np.testing.assert_array_equal(fits[0].coef, fits[1].coef)
    np.testing.assert_array_equal(fits[0].intercept, fits[1].intercept)
    with pytest.raises(DivergenceError):
        solve(X, y, 4, recipe.with_overrides(learning_rate=1e30), np.random.default_rng(0))
    calls = []

    def failing(X, rows, out):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise MemoryError("no memory for the batch")
        return np.take(X, rows, axis=0, out=out)

    monkeypatch.setattr(solvers, "gather", failing)
    with pytest.raises(MemoryError, match="no memory for the batch"):
        solve(X, y, 4, recipe, np.random.default_rng(0))
    assert set(calls) == {"mnist-softmax-batches"}
    assert not [t for t in threading.enumerate() if t.name.startswith("mnist-softmax")]


def test_batches_too_wide_to_hold_several_of_are_gathered_when_asked(monkeypatch):
    """A batch of 64 rows of 40,000 features is 10 MB: no thread gathers three chunks of them ahead."""
    import threading

    from mnist_softmax import solvers

    X, y = problem(n=300, d=40_000)
    names = []

    def spy(X, rows, out):
        names.append(threading.current_thread().name)
        return np.take(X, rows, axis=0, out=out)

    monkeypatch.setattr(solvers, "spare_core", lambda: True)
    monkeypatch.setattr(solvers, "gather", spy)
    solve(X, y, 4, get_recipe("default").with_overrides(batch_size=64, steps=3), np.random.default_rng(0))
    assert names == ["MainThread"] * 3

def curves_of(solution, X, y):
    """Each snapshot's loss and accuracy on (X, y), one snapshot at a time."""
    from mnist_softmax.metrics import curves

    _, coefs, intercepts = solution.snapshots
    pairs = [curves(c[None], i[None], X, y) for c, i in zip(coefs, intercepts)]
    return np.array([p[0][0] for p in pairs]), np.array([p[1][0] for p in pairs])


def test_averaging_returns_the_mean_of_the_last_iterates():
    X, y = problem(n=640)
    recipe = get_recipe("default").with_overrides(steps=40)
    assert recipe.schedule == "constant" and recipe.average == 0.5
    # With a constant rate, a run of k steps follows the first k steps of a longer run, so these are its iterates.
    iterates = [solve(X, y, 4, recipe.with_overrides(steps=k, average=0.0), np.random.default_rng(0))
                for k in range(21, 41)]
    averaged = solve(X, y, 4, recipe, np.random.default_rng(0))
    np.testing.assert_allclose(averaged.coef, np.mean([s.coef for s in iterates], axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(averaged.intercept, np.mean([s.intercept for s in iterates], axis=0),
                               rtol=1e-4, atol=1e-5)
    assert np.abs(averaged.coef - iterates[-1].coef).max() > 1e-3  # not simply the last iterate
    assert averaged.history["step"][-1] == 40


def test_newton_and_lbfgs_reach_the_same_smoothed_optimum():
    """Two independent solvers of the objective with the smoothness penalty agree, and Newton's gradient is ~0."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    base = get_recipe("optimal").with_overrides(l2=1e-3, smooth=1e-2, tol=1e-6)
    newton = solve(X, y, 10, base, np.random.default_rng(0), image_shape=(8, 8))
    lbfgs = solve(X, y, 10, base.with_overrides(solver="lbfgs", tol=1e-7), np.random.default_rng(0), image_shape=(8, 8))
    Xd = X.astype(np.float64)

    def objective(sol):
        return loss_and_grad(sol.coef.astype(np.float64), sol.intercept.astype(np.float64), Xd, y, 1e-3,
                             smooth=1e-2, image_shape=(8, 8))

    f_newton, gW, gb = objective(newton)
    f_lbfgs = objective(lbfgs)[0]
    assert abs(f_newton - f_lbfgs) / f_lbfgs < 1e-6 and f_newton <= f_lbfgs * (1 + 1e-7)
    assert max(np.abs(gW).max(), np.abs(gb).max()) < 1e-5
    assert newton.n_steps < 20  # Newton's steps, not SGD's
    # And the smoothness prior did something: rougher maps without it.
    plain = solve(X, y, 10, base.with_overrides(smooth=0.0), np.random.default_rng(0))
    assert roughness(newton.coef, (8, 8)) < 0.8 * roughness(plain.coef, (8, 8))


def test_hessian_product_matches_finite_differences_of_the_gradient():
    from mnist_softmax.newton import _Problem

    X, y = problem(n=300)
    X = X.astype(np.float32)
    mu = X.mean(axis=0)
    prob = _Problem(X, y, 4, 0.05, 0.2, (3, 4), mu)
    rng = np.random.default_rng(5)
    W, b = rng.normal(size=(4, 12)) * 0.3, rng.normal(size=4)
    V, c = rng.normal(size=(4, 12)), rng.normal(size=4)
    eps = 1e-3
    gp = prob.gradient(W + eps * V, b + eps * c)
    gm = prob.gradient(W - eps * V, b - eps * c)
    prob.gradient(W, b)
    hW, hc = prob.hessp(V, c)
    np.testing.assert_allclose(hW, (gp[1] - gm[1]) / (2 * eps), rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(hc, (gp[2] - gm[2]) / (2 * eps), rtol=2e-3, atol=2e-4)


def test_default_recipe_records_enough_points_and_snapshots():
    X, y = problem(n=2000)
    recipe = get_recipe("default")
    sol = solve(X, y, 4, recipe, np.random.default_rng(0), monitor={"validation": (X[:100], y[:100])})
    steps = sol.history["step"]
    assert len(steps) >= 20 and steps[0] == 0 and steps[-1] == sol.n_steps
    assert np.diff(steps).max() <= 2 * np.diff(steps).min() + 1  # evenly spread
    snap_steps, coefs, intercepts = sol.snapshots
    assert coefs.shape == (len(steps), 4, 12) and intercepts.shape == (len(steps), 4)
    np.testing.assert_array_equal(snap_steps, steps)
    np.testing.assert_array_equal(coefs[-1], sol.coef)  # the last snapshot is the model, as the plain model
    np.testing.assert_allclose(intercepts[-1], sol.intercept, rtol=1e-6, atol=1e-6)
    assert not coefs[0].any()  # the zero start


def test_preconditioned_first_step_scales_each_feature():
    """With `precondition`, each feature's SGD step is divided by its variance (plus a floor): one step by hand."""
    from mnist_softmax.solvers import spread_sample, step_scales

    X, y = problem(n=640)
    X[:, 3] *= 0.05  # a feature that varies little: its steps must be the largest
    recipe = get_recipe("default").with_overrides(steps=1, average=0.0, precondition=0.3, smooth=0.0)
    sol = solve(X, y, 4, recipe, np.random.default_rng(0))
    mu = spread_sample(X.astype(np.float32), 4096).mean(axis=0, dtype=np.float64).astype(np.float32)
    D = step_scales(X.astype(np.float32), mu, 0.3)
    assert D.min() == pytest.approx(1) and D.argmax() == 3
    rows = np.sort(np.random.default_rng(0).permutation(len(y))[: recipe.batch_size])
    _, gW, _ = loss_and_grad(np.zeros((4, 12)), np.zeros(4), X[rows].astype(np.float32), y[rows], recipe.l2, mu)
    np.testing.assert_allclose(sol.coef, -sol.learning_rate * D * gW, rtol=1e-4, atol=1e-7)
    assert step_scales(X, mu, 0.0) is None
