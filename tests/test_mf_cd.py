"""BiasedMF's coordinate-descent solver (``solver="cd"``): the numba sweep
(``kernels/cpu_als_cd.py``) and its namespace composition give the same numbers; repeated
sweeps reach each row's exact ridge solution; the fit matches exact ALS's accuracy, never
increases its objective, and does not leak."""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu.backends import get_backend
from kmrec_gpu.leakage import assert_no_leakage, fit_predict_estimator
from kmrec_gpu.metrics import rmse
from kmrec_gpu.models.mf import BiasedMF
from kmrec_gpu.splits import holdout
from tests.test_mf import low_rank
from tests.test_mf_gram import N_FACTORS, direct_ridge, skewed_problem


@pytest.mark.parametrize("path", ["numba", "composed"])
@pytest.mark.parametrize("penalties", [(0.3, 1.7, 1.0, 0.0), (0.3, 1.7, 0.5, 1.0),
                                       (0.3, 0.0, 1.0, 0.0)],
                         ids=["wr", "sqrt-bias-wr", "no-bias-penalty"])
def test_repeated_sweeps_reach_the_exact_ridge_solution(path, penalties):
    """With the other side fixed, each sweep is a Gauss–Seidel step on every row's ridge
    system, so sweeps converge to :func:`direct_ridge`'s solution: a wrong numerator,
    denominator, penalty or residual update converges elsewhere or not at all."""
    r0, fixed_f, fixed_b = skewed_problem()
    reg, reg_bias, ef, eb = penalties
    be = get_backend("cpu")
    m = BiasedMF(n_factors=N_FACTORS, reg=reg, reg_bias=reg_bias, reg_exponent=ef,
                 reg_bias_exponent=eb, solver="cd", kernels="off" if path == "composed"
                 else "auto")
    m.solver_path_ = "composed" if path == "composed" else "numba-cpu"
    m.sddmm_path_ = "composed"
    side = m._side(be, r0, N_FACTORS + 1)
    p = np.zeros((r0.shape[0], N_FACTORS))
    b = np.zeros(r0.shape[0])
    losses = []
    for _ in range(400):
        p, b, sse = m._cd_half_step(be, side, fixed_f, fixed_b, p, b)
        losses.append(sse + float(np.sum(m._penalties(np, np.diff(r0.indptr))[0]
                                         * np.sum(p * p, axis=1))
                                  + np.sum(m._penalties(np, np.diff(r0.indptr))[1] * b * b)))
    want_p, want_b = direct_ridge(r0, fixed_f, fixed_b, reg, reg_bias, ef, eb)
    np.testing.assert_allclose(p, want_p, rtol=0, atol=1e-7)
    np.testing.assert_allclose(b, want_b, rtol=0, atol=1e-7)
    assert (np.diff(losses) <= 1e-9 * np.abs(losses[:-1])).all()  # coordinate descent
    cold = np.diff(r0.indptr) == 0
    assert not p[cold].any() and not b[cold].any()


def test_the_sweeps_sum_of_squares_is_the_training_error():
    r0, fixed_f, fixed_b = skewed_problem(seed=2)
    be = get_backend("cpu")
    for path in ("numba-cpu", "composed"):
        m = BiasedMF(n_factors=N_FACTORS, solver="cd")
        m.solver_path_, m.sddmm_path_ = path, "composed"
        side = m._side(be, r0, N_FACTORS + 1)
        p, b, sse = m._cd_half_step(be, side, fixed_f, fixed_b,
                                    np.full((r0.shape[0], N_FACTORS), 0.1),
                                    np.zeros(r0.shape[0]))
        coo = r0.tocoo()
        e = coo.data - b[coo.row] - fixed_b[coo.col] - np.sum(p[coo.row] * fixed_f[coo.col],
                                                               axis=1)
        assert sse == pytest.approx(float(e @ e), rel=1e-10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numba_and_every_namespace_give_the_same_fit(backend, dtype):
    s = holdout(low_rank(seed=2), 0.2, seed=0)
    kw = dict(n_factors=5, reg=0.1, reg_bias=1.0, n_epochs=6, random_state=0, dtype=dtype,
              solver="cd")
    ref = BiasedMF(**kw).fit(s.train, s.test)
    assert ref.solver_path_ == "numba-cpu"
    got = BiasedMF(**kw, backend=backend, kernels="off").fit(s.train, s.test)
    assert got.solver_path_ == "composed"
    tol = 1e-9 if dtype == "float64" else 2e-4
    for a in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_allclose(getattr(got, a), getattr(ref, a), atol=tol, rtol=tol)
    np.testing.assert_allclose(got.train_loss_, ref.train_loss_, rtol=tol)


def test_cd_fit_is_as_accurate_as_exact_als_and_its_objective_never_increases():
    r = low_rank(n_users=80, n_items=60, density=0.4, seed=5)
    s = holdout(r, 0.2, seed=0)
    kw = dict(n_factors=4, reg=0.05, reg_bias=0.5, n_epochs=25, random_state=0)
    cd = BiasedMF(**kw, solver="cd").fit(s.train)
    exact = BiasedMF(**kw).fit(s.train)
    loss = np.array(cd.train_loss_)
    assert (np.diff(loss) <= 1e-9 * loss[:-1]).all()
    # the same objective: CD ends within 1% of exact ALS's value and RMSE
    assert loss[-1] <= 1.01 * exact.train_loss_[-1]
    assert rmse(s.test.ratings, cd.predict(s.test)) == pytest.approx(
        rmse(s.test.ratings, exact.predict(s.test)), rel=0.01)


def test_cd_does_not_leak():
    s = holdout(low_rank(seed=9), 0.2, seed=0)
    rep = assert_no_leakage(fit_predict_estimator(
        lambda: BiasedMF(n_factors=4, n_epochs=5, solver="cd")), s)
    assert rep.n_rows == len(s.test) and rep.n_changed_ratings == len(s.test)


def test_unknown_solver_is_refused():
    with pytest.raises(ValueError, match="solver must be 'exact' or 'cd'"):
        BiasedMF(solver="sgd").fit(low_rank(seed=1))
