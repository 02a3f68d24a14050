"""LensKit's ALS as a peer (kmrec_gpu.models.lenskit_peer): runs where the 'lenskit' extra
is installed; without it the peer says which extra to install."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

from kmrec_gpu.errors import BackendUnavailable
from kmrec_gpu.models.lenskit_peer import LensKitBiasedMF, lenskit_available
from kmrec_gpu.ratings import RatingScale, from_arrays
from kmrec_gpu.splits import make_split

HALF_STARS = RatingScale(0.5, 5.0, 0.5)


def _ratings(seed=0, n_users=60, n_items=40, n=900):
    g = np.random.default_rng(seed)
    pairs = g.choice(n_users * n_items, n, replace=False)
    u, i = np.divmod(pairs, n_items)
    val = 3.0 + g.normal(0, 0.7, n_users)[u] + g.normal(0, 0.7, n_items)[i] + g.normal(0, 0.3, n)
    return from_arrays(u, i, HALF_STARS.snap(val), scale=HALF_STARS, name="synth")


def test_without_lenskit_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "lenskit", None)
    monkeypatch.setitem(sys.modules, "lenskit.als", None)
    assert not lenskit_available()
    with pytest.raises(BackendUnavailable, match=r"pip install -e '\.\[lenskit\]'"):
        LensKitBiasedMF().fit(_ratings())


needs_lenskit = pytest.mark.skipif(not lenskit_available(), reason="lenskit not installed "
                                   "(the 'lenskit' extra)")


@needs_lenskit
def test_fits_learns_and_ignores_the_test_ratings():
    r = _ratings()
    split = make_split(r, "holdout", seed=0, test_fraction=0.2)
    m = LensKitBiasedMF(embedding_size=5, epochs=5).fit(split.train)
    pred = m.predict(split.test)
    assert pred.shape == (len(split.test),) and np.isfinite(pred).all()
    truth = split.test.ratings.astype(np.float64)
    mean = split.train.ratings.astype(np.float64).mean()
    assert np.sqrt(np.mean((pred - truth) ** 2)) < np.sqrt(np.mean((mean - truth) ** 2))
    # leakage: other test ratings, same predictions (fit sees the training rows only)
    moved = dataclasses.replace(split.test, ratings=np.full(len(split.test), 0.5, np.float32))
    np.testing.assert_array_equal(m.predict(moved), pred)
    # same seed, same model
    again = LensKitBiasedMF(embedding_size=5, epochs=5).fit(split.train).predict(split.test)
    np.testing.assert_allclose(again, pred, rtol=1e-6)


@needs_lenskit
def test_an_unseen_user_gets_the_training_mean():
    r = _ratings()
    keep = np.flatnonzero(r.users != 0)
    train = r.subset(keep)
    m = LensKitBiasedMF(embedding_size=3, epochs=2).fit(train)
    probe = r.subset(np.flatnonzero(r.users == 0)[:3])
    np.testing.assert_allclose(m.predict(probe), train.ratings.astype(np.float64).mean())
