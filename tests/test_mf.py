"""Biased matrix factorisation (batched ALS) and its validation-split tuning."""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu import seeding
from kmrec_gpu.leakage import assert_no_leakage, fit_predict_estimator
from kmrec_gpu.metrics import rmse
from kmrec_gpu.models.baseline import BiasBaseline
from kmrec_gpu.models.mf import BiasedMF
from kmrec_gpu.models.tuning import TunedBiasedMF, grid_points
from kmrec_gpu.ratings import Ratings, RatingScale, from_arrays
from kmrec_gpu.splits import TTSplit, holdout, kfold


def low_rank(n_users=40, n_items=30, density=0.5, rank=3, seed=0, cold=True) -> Ratings:
    """Biases + rank-3 structure + noise on the half-star scale; optionally one user and one
    item of the vocabulary with no rating at all."""
    g = np.random.default_rng(seed)
    mask = g.random((n_users, n_items)) < density
    mask[np.arange(n_users), g.integers(0, n_items, n_users)] = True
    mask[g.integers(0, n_users, n_items), np.arange(n_items)] = True
    if cold:
        mask[-1, :] = False
        mask[:, -1] = False
    u, i = np.nonzero(mask)
    p, q = g.normal(0, 0.7, (n_users, rank)), g.normal(0, 0.7, (n_items, rank))
    val = 3.5 + g.normal(0, 0.4, n_users)[u] + g.normal(0, 0.4, n_items)[i] \
        + np.sum(p[u] * q[i], axis=1) + g.normal(0, 0.3, len(u))
    scale = RatingScale(0.5, 5.0, 0.5)
    r = from_arrays(u, i, scale.snap(val), scale=scale, name="low-rank",
                    item_vocab=np.arange(n_items))
    # keep the vocabulary's cold user: from_arrays only knows rated users
    return _with_users(r, n_users)


def _with_users(r: Ratings, n_users: int) -> Ratings:
    import dataclasses

    return dataclasses.replace(r, user_ids=np.arange(n_users))


def ridge_rows(x_of_row, y_of_row, lam_diag_of_row, n_rows):
    """Independent reference: each row's ridge solution by least squares on the augmented
    system ``[X; sqrt(L)] w = [y; 0]``."""
    out = []
    for row in range(n_rows):
        x, y, lam = x_of_row(row), y_of_row(row), lam_diag_of_row(row)
        aug_x = np.vstack([x, np.diag(np.sqrt(lam))])
        aug_y = np.concatenate([y, np.zeros(len(lam))])
        out.append(np.linalg.lstsq(aug_x, aug_y, rcond=None)[0])
    return np.array(out)


@pytest.mark.parametrize("block_bytes", [256 * 2**20, 700], ids=["one-block", "many-blocks"])
@pytest.mark.parametrize("exponents", [(1.0, 1.0), (1.0, 0.0), (0.5, 0.0)])
def test_each_half_step_solves_the_ridge_normal_equations(block_bytes, exponents):
    r = low_rank()
    k, reg, reg_b = 4, 0.3, 2.0
    ef, eb = exponents
    m = BiasedMF(n_factors=k, reg=reg, reg_bias=reg_b, n_epochs=1, reg_exponent=ef,
                 reg_bias_exponent=eb, random_state=3, block_bytes=block_bytes).fit(r)
    y = r.ratings.astype(np.float64) - m.global_mean_
    n_u = np.bincount(r.users, minlength=r.n_users)
    n_i = np.bincount(r.items, minlength=r.n_items)

    def lam(n):
        return np.r_[np.full(k, reg * max(n, 1) ** ef), reg_b * max(n, 1) ** eb]

    # the user half-step starts from the seeded initial Q (zero rows for unrated items), b_i = 0
    q0 = seeding.rng(3, "mf", "init").normal(0.0, 0.1, size=(r.n_items, k))
    q0[n_i == 0] = 0.0
    rows_u = [np.flatnonzero(r.users == u) for u in range(r.n_users)]
    want_u = ridge_rows(lambda u: np.c_[q0[r.items[rows_u[u]]], np.ones(len(rows_u[u]))],
                        lambda u: y[rows_u[u]], lambda u: lam(n_u[u]), r.n_users)
    # then the item half-step from the fitted users
    pu, bu = m.user_factors_, m.user_bias_
    rows_i = [np.flatnonzero(r.items == i) for i in range(r.n_items)]
    want_i = ridge_rows(lambda i: np.c_[pu[r.users[rows_i[i]]], np.ones(len(rows_i[i]))],
                        lambda i: y[rows_i[i]] - bu[r.users[rows_i[i]]],
                        lambda i: lam(n_i[i]), r.n_items)
    np.testing.assert_allclose(m.user_factors_, want_u[:, :k], atol=1e-10)
    np.testing.assert_allclose(m.user_bias_, want_u[:, k], atol=1e-10)
    np.testing.assert_allclose(m.item_factors_, want_i[:, :k], atol=1e-10)
    np.testing.assert_allclose(m.item_bias_, want_i[:, k], atol=1e-10)
    # the unrated user and item keep zero parameters
    assert n_u[-1] == 0 and n_i[-1] == 0
    assert not m.user_factors_[-1].any() and m.user_bias_[-1] == 0
    assert not m.item_factors_[-1].any() and m.item_bias_[-1] == 0


def test_unregularised_fit_recovers_an_exact_low_rank_matrix():
    g = np.random.default_rng(1)
    n_u, n_i = 12, 10
    truth = 3 + g.normal(0, 0.3, (n_u, 1)) + g.normal(0, 0.3, (1, n_i)) \
        + g.normal(0, 0.5, (n_u, 2)) @ g.normal(0, 0.5, (2, n_i))
    u, i = np.nonzero(np.ones((n_u, n_i), bool))
    r = from_arrays(u, i, np.full(len(u), 3.0), scale=RatingScale(-10, 10, 0.5))
    r = r.with_ratings(truth[u, i])  # off-grid on purpose: fitting never checks the grid
    m = BiasedMF(n_factors=2, reg=0.0, reg_bias=0.0, n_epochs=100).fit(r)
    assert rmse(r.ratings, m.predict(r)) < 1e-4
    assert m.train_loss_[-1] < 1e-6


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_result_on_every_backend(backend, dtype):
    r = low_rank(seed=2)
    s = holdout(r, 0.2, seed=0)
    kw = dict(n_factors=5, reg=0.1, reg_bias=1.0, reg_bias_exponent=0.0, n_epochs=6,
              random_state=0, dtype=dtype, block_bytes=12000)  # several row blocks
    ref = BiasedMF(**kw).fit(s.train, s.test)
    got = BiasedMF(**kw, backend=backend).fit(s.train, s.test)
    tol = 1e-8 if dtype == "float64" else 2e-4
    for a in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_allclose(getattr(got, a), getattr(ref, a), atol=tol, rtol=tol)
    np.testing.assert_allclose(got.predict(s.test), ref.predict(s.test), atol=tol, rtol=tol)
    np.testing.assert_allclose(got.valid_rmse_, ref.valid_rmse_, rtol=tol)
    assert got.backend_["library"] == backend.library


def test_deterministic_under_a_seed_and_seed_matters():
    r = low_rank(seed=3)
    kw = dict(n_factors=4, n_epochs=5)
    a = BiasedMF(**kw, random_state=7).fit(r)
    b = BiasedMF(**kw, random_state=7).fit(r)
    c = BiasedMF(**kw, random_state=8).fit(r)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.predict(r), b.predict(r))
    assert not np.allclose(a.user_factors_, c.user_factors_)
    # random_state=0 is a seed like any other
    z = BiasedMF(**kw, random_state=0).fit(r)
    np.testing.assert_array_equal(z.item_factors_, BiasedMF(**kw, random_state=0)
                                  .fit(r).item_factors_)


@pytest.mark.parametrize("exponents", [(1.0, 1.0), (1.0, 0.0), (0.0, 0.0)])
def test_training_objective_never_increases(exponents):
    r = low_rank(seed=4)
    m = BiasedMF(n_factors=6, reg=0.05, reg_bias=0.5, n_epochs=15, reg_exponent=exponents[0],
                 reg_bias_exponent=exponents[1]).fit(r)
    loss = np.array(m.train_loss_)
    assert len(loss) == 15
    assert (np.diff(loss) <= 1e-9 * loss[:-1]).all()
    assert loss[-1] < 0.8 * loss[0]


def test_mf_beats_the_bias_baseline_on_low_rank_data():
    r = low_rank(n_users=80, n_items=60, density=0.4, seed=5)
    s = holdout(r, 0.2, seed=0)
    y = s.test.ratings
    mf = BiasedMF(n_factors=3, reg=0.05, reg_bias=2.0, reg_bias_exponent=0.0,
                  n_epochs=20).fit(s.train)
    e_mf, e_b = rmse(y, mf.predict(s.test)), rmse(y, BiasBaseline().fit(s.train).predict(s.test))
    assert e_mf < 0.8 * e_b


def test_predictions_are_clipped_and_cold_pairs_fall_back_to_biases():
    r = low_rank(seed=6)
    m = BiasedMF(n_factors=8, reg=0.0, reg_bias=0.0, n_epochs=20).fit(r)
    cold_u, cold_i = r.n_users - 1, r.n_items - 1
    users = np.array([cold_u, cold_u, 0, cold_u])
    items = np.array([0, 1, cold_i, cold_i])
    p = m.predict_pairs(users, items)
    mu = m.global_mean_
    want = np.clip([mu + m.item_bias_[0], mu + m.item_bias_[1], mu + m.user_bias_[0], mu],
                   0.5, 5.0)
    np.testing.assert_allclose(p, want)
    # an unregularised rank-8 fit overshoots the scale somewhere; predict clips it
    raw = mu + m.user_bias_[r.users] + m.item_bias_[r.items] + np.sum(
        m.user_factors_[r.users] * m.item_factors_[r.items], axis=1)
    all_u, all_i = np.meshgrid(np.arange(r.n_users), np.arange(r.n_items), indexing="ij")
    full = m.predict_pairs(all_u.ravel(), all_i.ravel())
    assert full.min() >= 0.5 and full.max() <= 5.0
    unclipped = BiasedMF(n_factors=8, reg=0.0, reg_bias=0.0, n_epochs=20, clip=False).fit(r)
    raw_full = unclipped.predict_pairs(all_u.ravel(), all_i.ravel())
    assert raw_full.min() < 0.5 or raw_full.max() > 5.0
    np.testing.assert_allclose(full, np.clip(raw_full, 0.5, 5.0))
    assert raw.shape == (len(r),)


def test_early_stopping_keeps_the_best_epoch():
    r = low_rank(n_users=60, n_items=40, density=0.4, seed=7)
    s = holdout(r, 0.25, seed=1)
    kw = dict(n_factors=10, reg=0.01, reg_bias=0.01, random_state=1)  # overfits quickly
    m = BiasedMF(**kw, n_epochs=40, patience=2).fit(s.train, s.test)
    v = np.array(m.valid_rmse_)
    assert m.best_epoch_ == int(np.argmin(v)) + 1
    assert m.n_epochs_ == len(v) and (m.n_epochs_ == 40 or m.n_epochs_ == m.best_epoch_ + 2)
    assert rmse(s.test.ratings, m.predict(s.test)) == pytest.approx(v.min(), abs=1e-12)
    again = BiasedMF(**kw, n_epochs=m.best_epoch_).fit(s.train)  # same parameters, no valid
    np.testing.assert_allclose(again.user_factors_, m.user_factors_, atol=1e-12)


def test_bad_input_and_unfitted():
    r = low_rank(seed=8)
    with pytest.raises(RuntimeError, match="not fitted"):
        BiasedMF().predict(r)
    with pytest.raises(ValueError, match="n_factors"):
        BiasedMF(n_factors=0).fit(r)
    with pytest.raises(ValueError, match="empty"):
        BiasedMF().fit(r.subset(np.zeros(len(r), bool)))
    with pytest.raises(ValueError, match="vocabularies"):
        m = BiasedMF(n_factors=2, n_epochs=1).fit(r)
        m.predict(low_rank(n_users=5, n_items=5, seed=0))
    with pytest.raises(ValueError, match="Invalid parameter 'nope' for estimator BiasedMF"):
        BiasedMF().set_params(nope=1)
    assert BiasedMF(reg=0.2).get_params()["reg"] == 0.2


def test_biased_mf_does_not_leak():
    s = holdout(low_rank(seed=9), 0.2, seed=0)
    rep = assert_no_leakage(fit_predict_estimator(
        lambda: BiasedMF(n_factors=4, n_epochs=5)), s)
    assert rep.n_rows == len(s.test) and rep.n_changed_ratings == len(s.test)


SMALL_GRID = {"n_factors": [2, 4], "reg": [0.05, 0.2], "reg_bias": [1.0]}


def test_tuned_pipeline_does_not_leak_and_never_sees_test():
    s = holdout(low_rank(n_users=50, n_items=40, seed=10), 0.2, seed=0)

    def make():
        return TunedBiasedMF(param_grid=SMALL_GRID, max_epochs=10, reg_bias_exponent=0.0)

    assert_no_leakage(fit_predict_estimator(make), s)
    # stronger than the leakage check: with the test rows gone from the world altogether
    # (a split whose test part is empty), tuning picks exactly the same model
    t = make().fit(s.train)
    empty = TTSplit(s.train, s.test.subset(np.zeros(len(s.test), bool)))
    t2 = make().fit(empty.train)
    assert t.best_params_ == t2.best_params_ and t.cv_results_[0]["valid_rmse"] == \
        t2.cv_results_[0]["valid_rmse"]


def test_tuning_picks_the_validation_minimum_and_refits_on_all_of_train():
    s = holdout(low_rank(n_users=50, n_items=40, seed=11), 0.2, seed=0)
    seen = []
    t = TunedBiasedMF(param_grid=SMALL_GRID, max_epochs=10, random_state=4).fit(
        s.train, callback=seen.append)
    assert len(t.cv_results_) == len(grid_points(SMALL_GRID)) == 4 and seen == t.cv_results_
    best = min(t.cv_results_, key=lambda row: row["valid_rmse"])
    assert t.best_score_ == best["valid_rmse"]
    assert t.best_params_ == {**best["params"], "n_epochs": best["best_epoch"]}
    assert 0 < t.n_valid_ < len(s.train)
    ref = BiasedMF(**t.best_params_, random_state=4).fit(s.train)
    np.testing.assert_array_equal(t.predict(s.test), ref.predict(s.test))
    with pytest.raises(ValueError, match="cannot be searched"):
        TunedBiasedMF(param_grid={"n_epochs": [3]}).fit(s.train)
    assert TunedBiasedMF(param_grid=SMALL_GRID, dtype="float32").get_params()[
        "base_params"] == {"dtype": "float32"}


@pytest.mark.data
def test_biased_mf_beats_the_bias_baseline_on_ml100k(ml100k):
    s = next(kfold(ml100k, 5, seed=0))
    y = s.test.ratings
    mf = BiasedMF(n_factors=20, reg=0.15, reg_bias=2.0, reg_bias_exponent=0.0,
                  n_epochs=15).fit(s.train)
    e_mf = rmse(y, mf.predict(s.test))
    e_b = rmse(y, BiasBaseline().fit(s.train).predict(s.test))
    assert e_mf < 0.925 and e_mf < e_b - 0.02
