"""The implicit library's ALS as a top-k reference: lists cut as every recommender's, and
no test row read."""

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
from kmrec_gpu.models.implicit_peer import ImplicitALS
from kmrec_gpu.splits import per_user

pytest.importorskip("implicit", reason="implicit not installed (the 'peers' extra)")


@pytest.fixture(scope="module")
def split():
    return per_user(load("synthetic-small"), fraction=0.2, seed=0)


def make():
    return ImplicitALS(factors=8, iterations=5, random_state=0)


def test_lists_are_the_factor_scores_cut_as_everywhere(split):
    m = make().fit(split.train)
    users = scored_users(split)
    rec = m.recommend(users, 10)
    seen = split.train.to_csr(binary=True)
    catalog = np.flatnonzero(np.bincount(split.train.items, minlength=split.train.n_items))
    for j, u in enumerate(users):
        s = m.user_factors_[u] @ m.item_factors_.T
        s[seen[u].indices] = -np.inf
        s[np.setdiff1d(np.arange(s.size), catalog)] = -np.inf
        np.testing.assert_array_equal(rec[j], np.argsort(-s, kind="stable")[:10])


def test_the_seed_decides_the_factors(split):
    a, b = make().fit(split.train), make().fit(split.train)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


def test_no_test_row_is_read(split):
    assert_no_recommender_leakage(fit_recommend_estimator(make), split)

    def leaky(s):
        return make().fit(with_test_rows(s)).recommend(scored_users(s), 10)

    assert check_recommender_leakage(leaky, split).leaks
