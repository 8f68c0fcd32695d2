"""The refusal subspaces depend on the data alone: train keeps them in the dataset's cache and a later run with
the same data and split loads them, equal to a fresh fit; a damaged entry is fitted again."""

import numpy as np

from mnist_softmax import load_dataset
from mnist_softmax.recipes import get_recipe
from mnist_softmax.train import train


def _same(a, b):
    return np.array_equal(a.means, b.means) and np.array_equal(a.bases, b.bases) and a.threshold == b.threshold


def test_second_run_loads_the_subspaces_and_a_damaged_entry_is_refitted(tiny, isolated_cache, monkeypatch):
    from mnist_softmax import refuse

    dataset = load_dataset("tiny", tiny[1])
    recipe = get_recipe("default").with_overrides(steps=20)
    first = train(dataset, recipe, seed=0).model.novelty
    stored = list(isolated_cache.rglob("novelty/*.npz"))
    assert len(stored) == 1

    fits = []
    real_fit = refuse.fit
    monkeypatch.setattr(refuse, "fit", lambda *a, **k: fits.append(1) or real_fit(*a, **k))

    second = train(dataset, recipe, seed=1).model.novelty  # another seed: the same data, the same subspaces
    assert fits == [] and _same(first, second)

    stored[0].write_bytes(b"not an npz")
    third = train(dataset, recipe, seed=0).model.novelty
    assert fits == [1] and _same(first, third)
    assert _same(third, train(dataset, recipe, seed=0).model.novelty) and fits == [1]  # rewritten, loaded again

    other = train(dataset, recipe, seed=0, validation_size=9).model.novelty  # another split: its own entry
    assert fits == [1, 1] and not _same(first, other)
