"""The reusable leakage check, and the baselines it is first applied to."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kmrec_gpu.leakage import (
    LeakageError,
    assert_no_leakage,
    check_leakage,
    fit_predict_estimator,
    perturb_test,
)
from kmrec_gpu.models.baseline import BiasBaseline, GlobalMean
from kmrec_gpu.splits import holdout
from tests.test_splits import make_ratings


def test_perturb_changes_every_test_rating_and_nothing_else():
    s = holdout(make_ratings(), 0.2, seed=0)
    p = perturb_test(s, seed=0)
    assert (p.test.ratings != s.test.ratings).all()
    assert not p.test.scale.invalid_mask(p.test.ratings).any()
    np.testing.assert_array_equal(p.train.ratings, s.train.ratings)
    np.testing.assert_array_equal(p.test.users, s.test.users)


@pytest.mark.parametrize("model", [GlobalMean, BiasBaseline])
def test_baselines_do_not_leak(model):
    s = holdout(make_ratings(), 0.2, seed=0)
    rep = assert_no_leakage(fit_predict_estimator(model), s)
    assert rep.n_rows == len(s.test) and rep.n_changed_ratings == len(s.test)


def test_check_catches_a_model_that_reads_test_ratings():
    def leaky(split):  # user means over train + test, as seed 004 computed them
        both = np.concatenate([split.train.ratings, split.test.ratings])
        users = np.concatenate([split.train.users, split.test.users])
        means = np.bincount(users, both) / np.maximum(np.bincount(users), 1)
        return means[split.test.users]

    s = holdout(make_ratings(), 0.2, seed=0)
    assert check_leakage(leaky, s).leaks
    with pytest.raises(LeakageError, match="test predictions moved"):
        assert_no_leakage(leaky, s)


def test_bias_baseline_matches_closed_form_when_unregularised():
    # a full 2x2 grid with r = mu + b_u + b_i exactly: zero-penalty ALS recovers it
    r = dataclasses.replace(make_ratings(n_users=2, n_items=2, per_user=2))
    truth = np.array([[1.0, 2.0], [3.0, 4.0]])
    r = r.with_ratings(truth[r.users, r.items])
    m = BiasBaseline(reg_user=0, reg_item=0, n_iter=50).fit(r)
    np.testing.assert_allclose(m.predict(r), r.ratings, atol=1e-9)
    assert m.global_mean_ == pytest.approx(2.5)


def test_bias_baseline_fit_is_the_alternating_ridge_steps_to_the_bit():
    """The one-pass kernel against the steps written out in NumPy (the definition)."""
    g = np.random.default_rng(4)
    r = make_ratings(n_users=70, n_items=40, per_user=15)
    r = r.with_ratings(r.scale.snap(g.uniform(r.scale.minimum, r.scale.maximum, len(r))))
    reg_u, reg_i, n_iter = 15.0, 10.0, 7
    u, i, y = r.users, r.items, r.ratings.astype(np.float64)
    mu = y.mean()
    n_u, n_i = np.bincount(u, minlength=r.n_users), np.bincount(i, minlength=r.n_items)
    b_u = np.zeros(r.n_users)
    for _ in range(n_iter):
        b_i = np.bincount(i, y - mu - b_u[u], minlength=r.n_items) / (n_i + reg_i)
        b_u = np.bincount(u, y - mu - b_i[i], minlength=r.n_users) / (n_u + reg_u)
    m = BiasBaseline(reg_user=reg_u, reg_item=reg_i, n_iter=n_iter).fit(r)
    assert m.global_mean_ == mu
    np.testing.assert_array_equal(m.user_bias_, b_u)
    np.testing.assert_array_equal(m.item_bias_, b_i)


def test_bias_baseline_beats_global_mean_on_structured_data():
    g = np.random.default_rng(0)
    r = make_ratings(n_users=60, n_items=50, per_user=25)
    bu, bi = g.normal(0, 0.8, r.n_users), g.normal(0, 0.8, r.n_items)
    r = r.with_ratings(r.scale.snap(3 + bu[r.users] + bi[r.items]))
    s = holdout(r, 0.2, seed=0)
    y = s.test.ratings
    e_bias = np.sqrt(np.mean((BiasBaseline().fit(s.train).predict(s.test) - y) ** 2))
    e_mean = np.sqrt(np.mean((GlobalMean().fit(s.train).predict(s.test) - y) ** 2))
    assert e_bias < 0.7 * e_mean


def test_unfitted_and_empty():
    s = holdout(make_ratings(), 0.2, seed=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        BiasBaseline().predict(s.test)
    with pytest.raises(ValueError, match="empty"):
        GlobalMean().fit(s.train.subset(np.zeros(len(s.train), bool)))


@pytest.mark.data
def test_bias_baseline_on_ml100k_is_in_the_published_range(ml100k):
    s = holdout(ml100k, 0.2, seed=0)
    p = BiasBaseline().fit(s.train).predict(s.test)
    rmse = float(np.sqrt(np.mean((p - s.test.ratings) ** 2)))
    assert 0.92 < rmse < 0.97  # Surprise's BaselineOnly: 0.944 (5-fold)
    assert_no_leakage(fit_predict_estimator(BiasBaseline), s)
