"""partial_fit: true multinomial SGD whose momentum and averaging are carried from one block to the next."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from mnist_softmax import SoftmaxClassifier, load_dataset
from mnist_softmax.errors import UsageError
from mnist_softmax.model import loss_and_grad
from mnist_softmax.recipes import RECIPES
from mnist_softmax.stream import StreamState, loss_options


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


def test_mnist_three_passes_of_1000_row_blocks(mnist_dir):
    ds = load_dataset("mnist", mnist_dir)
    X = ds.train_images[:55000].reshape(55000, -1).astype(np.float32) / 255
    y = ds.train_labels[:55000]
    clf = SoftmaxClassifier(random_state=0)
    for _ in range(3):
        for start in range(0, 55000, 1000):
            clf.partial_fit(X[start : start + 1000], y[start : start + 1000], classes=np.arange(10))
    assert clf.n_iter_ == 3 * 55 * 4  # 1,000 rows in 4 batches of 250 (batch size 256)
    accuracy = clf.score(ds.test_images.reshape(10000, -1) / 255, ds.test_labels)
    assert accuracy >= 0.924, accuracy


def _manual_momentum_sgd(blocks, k, recipe, rng, mu, rate, scales):
    """Momentum SGD written out step by step over the batches the stream draws (same rng calls), recording every
    iterate: an independent account of what carrying the state across calls must give."""
    d = blocks[0][0].shape[1]
    W, b = np.zeros((k, d), np.float32), np.zeros(k, np.float32)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    iterates = []
    for X, y in blocks:
        n = len(y)
        for rows in np.array_split(rng.permutation(n), -(-n // min(recipe.batch_size, n))):
            rows.sort()
            _, gW, gb = loss_and_grad(W, b, X[rows], y[rows], recipe.l2, mu, **loss_options(recipe))
            gW = gW * scales  # the per-feature step sizes of the recipe's preconditioner
            vW = recipe.momentum * vW - np.float32(rate) * gW
            vb = recipe.momentum * vb - np.float32(rate) * gb
            W, b = W + vW, b + vb
            iterates.append((W, b))
    return iterates


@pytest.mark.parametrize("average", [0.0, 0.5, 1.0])
def test_state_carried_across_blocks_equals_one_long_run(digits, average):
    X, y = digits
    recipe = RECIPES["default"].with_overrides(average=average, batch_size=32, learning_rate=0.5)
    blocks = [(X[s : s + 300], y[s : s + 300]) for s in range(0, 1500, 300)]
    state = StreamState.start(blocks[0][0], 10, recipe, np.random.default_rng(7))
    for Xb, yb in blocks:
        state.update(Xb, yb, recipe)
    assert state.scales is not None and state.scales.min() == 1  # the default recipe preconditions
    iterates = _manual_momentum_sgd(blocks, 10, recipe, np.random.default_rng(7), state.mu, state.rate, state.scales)
    assert state.steps == len(iterates) == 5 * 10
    np.testing.assert_allclose(state.W, iterates[-1][0], atol=1e-5)
    W, _ = state.centred_model()
    if average == 0:
        np.testing.assert_allclose(W, iterates[-1][0], atol=1e-5)
        return
    # The averaged window is the last `average` of the steps to within 1/16 of them.
    t = len(iterates)
    best = min(range(1, t + 1), key=lambda s: np.abs(np.mean([w for w, _ in iterates[s - 1 :]], axis=0) - W).max())
    window = t - best + 1
    assert abs(window - average * t) <= t / 16 + 1, (window, t)
    np.testing.assert_allclose(W, np.mean([w for w, _ in iterates[best - 1 :]], axis=0), atol=1e-5)


def test_classes_and_labels_are_checked(digits):
    X, y = digits
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        SoftmaxClassifier().partial_fit(X[:100], y[:100])
    clf = SoftmaxClassifier(random_state=0).partial_fit(X[:100], y[:100], classes=np.arange(10))
    assert clf.classes_.tolist() == list(range(10)) and clf.coef_.shape == (10, 64)
    with pytest.raises(ValueError, match="differs from the earlier"):
        clf.partial_fit(X[:100], y[:100], classes=np.arange(11))
    with pytest.raises(ValueError, match="not in classes: \\[12\\]"):
        clf.partial_fit(X[:3], np.array([1, 2, 12]))
    with pytest.raises(ValueError, match="64 features"):
        clf.partial_fit(X[:10, :10], y[:10])
    with pytest.raises(UsageError, match="full batch .* use an SGD recipe"):
        SoftmaxClassifier("optimal").partial_fit(X, y, classes=np.arange(10))


def test_a_block_may_hold_only_some_classes(digits):
    """classes fixes the model's outputs on the first call, whatever labels that block holds."""
    X, y = digits
    first = np.isin(y, [3, 7])
    clf = SoftmaxClassifier(random_state=0).partial_fit(X[first], y[first], classes=np.arange(10))
    assert clf.coef_.shape == (10, 64) and clf.classes_.tolist() == list(range(10))
    assert set(clf.predict(X[first])) <= {3, 7}
    mixed = SoftmaxClassifier(random_state=0).partial_fit(X[:1400], y[:1400], classes=np.arange(10))
    for _ in range(20):
        clf.partial_fit(X[:1400], y[:1400])
        mixed.partial_fit(X[:1400], y[:1400])
    assert clf.score(X[1400:], y[1400:]) > max(0.85, mixed.score(X[1400:], y[1400:]) - 0.03)


def test_partial_fit_continues_from_fit(digits):
    X, y = digits
    clf = SoftmaxClassifier(random_state=0).fit(X[:1000], y[:1000])
    before = clf.coef_.copy()
    score = clf.score(X[1000:], y[1000:])
    clf.partial_fit(X[:1000], y[:1000])  # classes known from fit
    assert clf.n_iter_ == 4 and not np.array_equal(before, clf.coef_)
    assert clf.score(X[1000:], y[1000:]) > score - 0.03  # continued, not restarted from zero
    assert list(clf.history_) == ["step", "batch_loss"] and clf.history_["step"].tolist() == [4]
    clf.fit(X[:1000], y[:1000])  # a new fit forgets the stream
    np.testing.assert_array_equal(clf.coef_, before)


def test_matches_fit_on_the_same_data(digits):
    """Streaming the data block by block trains about as well as fit on all of it."""
    X, y = digits
    fit = SoftmaxClassifier(random_state=0).fit(X[:1400], y[:1400]).score(X[1400:], y[1400:])
    clf = SoftmaxClassifier(random_state=0)
    for _ in range(12):
        for start in range(0, 1400, 350):
            clf.partial_fit(X[start : start + 350], y[start : start + 350], classes=np.arange(10))
    assert clf.score(X[1400:], y[1400:]) >= fit - 0.02
