"""EASE and item-kNN: their weights are the papers' formulas, one body gives the same
lists on every backend, cold users get popularity, and neither reads a test rating."""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu.data import load
from kmrec_gpu.leakage import (
    assert_no_recommender_leakage,
    check_recommender_leakage,
    fit_recommend_estimator,
    scored_users,
    with_test_rows,
)
from kmrec_gpu.models.item_item import EASE, ItemKNN
from kmrec_gpu.ratings import RatingScale, from_arrays
from kmrec_gpu.splits import per_user


@pytest.fixture(scope="module")
def split():
    return per_user(load("synthetic-small"), fraction=0.2, seed=0)


def dense_x(split):
    x = split.train.to_csr(np.float64, binary=True).toarray()
    cat = np.flatnonzero(x.sum(0) > 0)
    return x[:, cat], cat


def test_ease_weights_are_the_closed_form(split):
    m = EASE(l2=50.0).fit(split.train)
    x, cat = dense_x(split)
    np.testing.assert_array_equal(m.catalog_, cat)
    p = np.linalg.inv(x.T @ x + 50.0 * np.eye(x.shape[1]))
    want = -p / np.diag(p)[None, :]
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(m.weights_, want, rtol=1e-10, atol=1e-12)
    assert (np.diag(m.weights_) == 0).all()


def test_item_knn_weights_are_shrunk_cosines_cut_per_column(split):
    m = ItemKNN(neighbors=7, shrink=3.0).fit(split.train)
    x, _ = dense_x(split)
    g = x.T @ x
    n = np.sqrt(np.diag(g))
    s = g / (np.outer(n, n) + 3.0)
    np.fill_diagonal(s, 0.0)
    w = m.weights_
    for j in range(s.shape[1]):
        kth = np.sort(s[:, j])[-7]
        keep = s[:, j] >= kth
        np.testing.assert_allclose(w[keep, j], s[keep, j], rtol=1e-12)
        assert (w[~keep, j] == 0).all() and keep.sum() >= 7


@pytest.mark.parametrize("make", [lambda b: EASE(l2=20.0, backend=b),
                                  lambda b: ItemKNN(neighbors=10, backend=b)],
                         ids=["ease", "item_knn"])
def test_every_backend_gives_the_numpy_lists(split, backend, make):
    users = scored_users(split)
    want = make("cpu").fit(split.train).recommend(users, 10)
    got = make(backend).fit(split.train).recommend(users, 10)
    np.testing.assert_array_equal(got, want)


def test_scores_follow_the_users_items_and_exclude_them(split):
    m = EASE(l2=20.0).fit(split.train)
    users = scored_users(split)
    rec = m.recommend(users, 10)
    seen = split.train.to_csr(binary=True)
    for j, u in enumerate(users):
        assert not set(rec[j]) & set(seen[u].indices)
        row = seen[u][:, m.catalog_].toarray()[0]
        scores = row @ m.weights_
        best = m.catalog_[np.argsort(-np.where(row > 0, -np.inf, scores), kind="stable")[:10]]
        np.testing.assert_array_equal(rec[j], best)


def test_a_user_without_training_ratings_gets_the_most_rated_movies():
    users = np.array([1, 1, 2, 2, 3, 3, 3, 4])
    items = np.array([10, 11, 10, 12, 10, 11, 12, 13])
    r = from_arrays(users, items, np.full(8, 4.0), scale=RatingScale(0.5, 5, 0.5))
    train = r.subset(np.flatnonzero(r.users != r.user_codes([4])[0]))
    cold = r.user_codes([4])
    for model in (EASE(l2=1.0), ItemKNN(neighbors=2)):
        rec = model.fit(train).recommend(cold, 3)
        np.testing.assert_array_equal(rec[0], r.item_codes([10, 11, 12]))


@pytest.mark.parametrize("make", [lambda: EASE(l2=20.0), lambda: ItemKNN(neighbors=10)],
                         ids=["ease", "item_knn"])
def test_no_test_rating_is_read(split, make):
    rep = assert_no_recommender_leakage(fit_recommend_estimator(make), split)
    assert rep.n_users > 50

    def leaky(s):
        return make().fit(with_test_rows(s)).recommend(scored_users(s), 10)

    assert check_recommender_leakage(leaky, split).leaks


@pytest.mark.parametrize("model, match", [
    (EASE(l2=0.0), "l2 must be > 0"),
    (ItemKNN(neighbors=0), "neighbors must be an int >= 1"),
    (ItemKNN(shrink=-1.0), "shrink must be >= 0"),
    (EASE(dtype="float16"), "dtype must be"),
])
def test_bad_parameters_are_named(split, model, match):
    with pytest.raises(ValueError, match=match):
        model.fit(split.train)
