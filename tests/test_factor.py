"""Seed 001's factorisations: the fill, the products-only linear algebra, dense/scalable
equality, scikit-learn parity of the dense references, and leakage."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import NMF, TruncatedSVD

from kmrec_gpu import splits
from kmrec_gpu.backends import get_backend
from kmrec_gpu.data.synthetic import synthetic
from kmrec_gpu.factor import IterativeSVDModel, NMFModel, TruncatedSVDModel, fill_matrix
from kmrec_gpu.factor.linalg import orthonormalize, sampled_dot, subspace_svd
from kmrec_gpu.factor.nmf import hals
from kmrec_gpu.factor.operator import DenseOperator, SparsePlusLowRank
from kmrec_gpu.leakage import assert_no_leakage, fit_predict_estimator
from kmrec_gpu.metrics import rmse
from kmrec_gpu.metrics.rating import HALF_STAR
from kmrec_gpu.ratings import from_arrays


@pytest.fixture(scope="module")
def small_split():
    r = synthetic(120, 90, 2_400, seed=3, min_user_ratings=5)
    return splits.holdout(r, 0.1, seed=0)


def _tiny():
    # users 10, 20, 30; items 1, 2, 3, 4 (4 rated only by the test row)
    return from_arrays(
        np.array([10, 10, 20, 20, 20, 30, 10]),
        np.array([1, 2, 1, 2, 3, 3, 4]),
        np.array([4.0, 2.0, 5.0, 3.0, 1.0, 2.5, 5.0]),
        scale=HALF_STAR,
    )


# -- the fill -------------------------------------------------------------------------------


def test_fill_uses_training_means_and_maps_cold_pairs():
    r = _tiny()
    train, test = r.subset(np.arange(6)), r.subset(np.array([6]))
    f = fill_matrix(train)
    assert f.shape == (3, 3)  # item 4 has no training rating: no column
    np.testing.assert_allclose(f.user_means, [3.0, 3.0, 2.5])
    np.testing.assert_allclose(f.dense(), [[4, 2, 3], [5, 3, 1], [2.5, 2.5, 2.5]])
    assert f.mean() == pytest.approx(f.dense().mean())
    rows, cols = f.locate(test)
    assert rows.tolist() == [0] and cols.tolist() == [-1]
    np.testing.assert_allclose(f.fallback(np.array([0, -1])), [3.0, train.ratings.mean()])
    np.testing.assert_allclose(f.residual().toarray(), f.dense() - f.user_means[:, None])


def test_minmax_is_fitted_on_train_and_inverted():
    r = _tiny()
    f = fill_matrix(r.subset(np.arange(6)), minmax=True)
    assert (f.offset, f.span) == (1.0, 4.0)
    assert f.observed.data.min() == 0.0 and f.observed.data.max() == 1.0
    np.testing.assert_allclose(np.sort(f.to_rating(f.observed.data)), np.sort(r.ratings[:6]))


def test_fill_rejects_bad_training_sets():
    r = _tiny()
    with pytest.raises(ValueError, match="empty"):
        fill_matrix(r.subset(np.array([], dtype=int)))
    with pytest.raises(ValueError, match="two distinct"):
        fill_matrix(r.subset(np.array([0])), minmax=True)


# -- products-only linear algebra -----------------------------------------------------------


def _low_rank_plus_noise(m=60, n=45, rank=5, seed=0):
    g = np.random.default_rng(seed)
    s = np.geomspace(50, 5, rank)
    a = g.standard_normal((m, rank)) * s @ g.standard_normal((rank, n)) / np.sqrt(n)
    return a + 0.01 * g.standard_normal((m, n))


def test_sparse_plus_low_rank_products_match_the_dense_matrix(backend):
    g = np.random.default_rng(1)
    s = sp.random(30, 20, density=0.2, random_state=2, format="csr")
    left, right = g.standard_normal((30, 2)), g.standard_normal((20, 2))
    dense = s.toarray() + left @ right.T
    op = SparsePlusLowRank(backend, backend.sparse.from_scipy(s), backend.asarray(left),
                           backend.asarray(right))
    y = g.standard_normal((20, 3))
    np.testing.assert_allclose(backend.to_numpy(op.matmul(backend.asarray(y))), dense @ y,
                               atol=1e-12)
    z = g.standard_normal((30, 3))
    np.testing.assert_allclose(backend.to_numpy(op.rmatmul(backend.asarray(z))), dense.T @ z,
                               atol=1e-12)


def test_sparse_pattern_rebuilds_values_on_every_backend(backend):
    s = sp.random(25, 15, density=0.3, random_state=4, format="csr")
    pattern = backend.sparse.pattern(s)
    new = np.arange(1, s.nnz + 1, dtype=np.float64)
    a = pattern.matrix(backend.asarray(new))
    ref = s.copy()
    ref.data = new
    y = np.random.default_rng(0).standard_normal((15, 2))
    np.testing.assert_allclose(backend.to_numpy(backend.sparse.matmul(a, backend.asarray(y))),
                               ref @ y)
    z = np.random.default_rng(1).standard_normal((25, 2))
    np.testing.assert_allclose(backend.to_numpy(backend.sparse.rmatmul(a, backend.asarray(z))),
                               ref.T @ z)
    coo = s.tocoo()
    assert backend.to_numpy(pattern.rows).tolist() == coo.row.tolist()
    assert backend.to_numpy(pattern.cols).tolist() == coo.col.tolist()
    with pytest.raises(ValueError, match="stored values"):
        pattern.matrix(backend.asarray(new[:-1]))


def test_subspace_svd_matches_lapack(backend):
    a = _low_rank_plus_noise()
    res = subspace_svd(DenseOperator(backend, backend.asarray(a)), 4, backend=backend,
                       dtype=backend.xp.float64, seed=0, tol=1e-12)
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    assert res.converged
    np.testing.assert_allclose(backend.to_numpy(res.s), s[:4], rtol=1e-10)
    recon = backend.to_numpy(res.u) * backend.to_numpy(res.s) @ backend.to_numpy(res.vt)
    np.testing.assert_allclose(recon, (u[:, :4] * s[:4]) @ vt[:4], atol=1e-8)


def test_subspace_svd_checks_rank():
    be = get_backend("cpu")
    op = DenseOperator(be, np.ones((4, 3)))
    with pytest.raises(ValueError, match="rank must be in"):
        subspace_svd(op, 4, backend=be, dtype=np.float64, seed=0)


def test_orthonormalize_falls_back_on_rank_deficient_blocks():
    xp = get_backend("cpu").xp
    y = np.ones((8, 3))  # rank 1: Cholesky of YᵀY fails
    q, r = orthonormalize(xp, y)
    np.testing.assert_allclose(q @ r, y, atol=1e-12)
    y = np.random.default_rng(0).standard_normal((50, 4))
    q, r = orthonormalize(xp, y)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-13)
    np.testing.assert_allclose(q @ r, y, atol=1e-12)


def test_sampled_dot_in_chunks_equals_one_pass(backend):
    g = np.random.default_rng(0)
    a, b = g.standard_normal((7, 3)), g.standard_normal((5, 3))
    rows, cols = g.integers(0, 7, 40), g.integers(0, 5, 40)
    args = [backend.asarray(x) for x in (a, b, rows, cols)]
    want = np.einsum("ij,ij->i", a[rows], b[cols])
    np.testing.assert_allclose(backend.to_numpy(sampled_dot(backend, *args)), want, atol=1e-14)
    tiny = sampled_dot(backend, *args, budget_mb=200 / 2**20)  # 4 rows per chunk
    np.testing.assert_allclose(backend.to_numpy(tiny), want, atol=1e-14)


# -- scikit-learn parity of the dense references ---------------------------------------------


def test_dense_truncated_svd_singular_values_match_sklearn_arpack(small_split):
    m = TruncatedSVDModel(8, solver="dense").fit(small_split.train)
    ref = TruncatedSVD(8, algorithm="arpack").fit(m.filled_.dense())
    np.testing.assert_allclose(m.singular_values_, ref.singular_values_, rtol=1e-9)


def test_hals_is_sklearn_cd_step_for_step():
    g = np.random.default_rng(0)
    x = np.abs(_low_rank_plus_noise(40, 30, 4))
    w0, h0 = np.abs(g.standard_normal((40, 4))), np.abs(g.standard_normal((4, 30)))
    be = get_backend("cpu")
    for iters in (1, 7, 50):
        ref = NMF(4, init="custom", solver="cd", max_iter=iters, tol=0.0)
        w_ref = ref.fit_transform(x, W=w0.copy(), H=h0.copy())
        w, h, n = hals(DenseOperator(be, x), w0, h0, backend=be, max_iter=iters, tol=0.0)
        assert n == ref.n_iter_ == iters
        np.testing.assert_allclose(w, w_ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(h, ref.components_, rtol=1e-9, atol=1e-12)


def test_hals_stops_on_tolerance_like_sklearn():
    x = np.abs(_low_rank_plus_noise(40, 30, 4))
    g = np.random.default_rng(1)
    w0, h0 = np.abs(g.standard_normal((40, 4))), np.abs(g.standard_normal((4, 30)))
    ref = NMF(4, init="custom", solver="cd", max_iter=500, tol=1e-3)
    ref.fit_transform(x, W=w0.copy(), H=h0.copy())
    be = get_backend("cpu")
    _, _, n = hals(DenseOperator(be, x), w0, h0, backend=be, max_iter=500, tol=1e-3)
    assert n == ref.n_iter_ < 500


# -- dense reference == scalable equivalent ------------------------------------------------


@pytest.mark.parametrize("minmax", [False, True])
def test_truncated_svd_scalable_equals_dense(small_split, minmax):
    d = TruncatedSVDModel(6, solver="dense", minmax=minmax).fit(small_split.train)
    s = TruncatedSVDModel(6, solver="scalable", minmax=minmax, tol=1e-10).fit(small_split.train)
    np.testing.assert_allclose(s.singular_values_, d.singular_values_, rtol=1e-9)
    np.testing.assert_allclose(s.predict(small_split.test), d.predict(small_split.test),
                               atol=1e-7)


@pytest.mark.parametrize("init", ["nndsvda", "random"])
def test_nmf_scalable_equals_dense(small_split, init):
    kw = dict(init=init, max_iter=40, tol=0.0, svd_tol=1e-10)
    d = NMFModel(5, solver="dense", **kw).fit(small_split.train)
    s = NMFModel(5, solver="scalable", **kw).fit(small_split.train)
    np.testing.assert_allclose(s.predict(small_split.test), d.predict(small_split.test),
                               atol=1e-6)


@pytest.mark.parametrize("shrinkage", [0.0, 2.0])
def test_iterative_svd_scalable_equals_dense(small_split, shrinkage):
    kw = dict(max_iter=6, tol=0.0, shrinkage=shrinkage, keep_history=True, svd_tol=1e-10)
    d = IterativeSVDModel(5, solver="dense", **kw).fit(small_split.train)
    s = IterativeSVDModel(5, solver="scalable", **kw).fit(small_split.train)
    assert d.n_iter_ == s.n_iter_ == 6
    np.testing.assert_allclose(s.changes_, d.changes_, rtol=1e-6)
    np.testing.assert_allclose(s.singular_values_, d.singular_values_, rtol=1e-7)
    for pd_, ps in zip(d.staged_predict(small_split.test), s.staged_predict(small_split.test),
                       strict=True):
        np.testing.assert_allclose(ps, pd_, atol=1e-6)


def test_iterative_svd_first_iteration_is_the_truncated_svd(small_split):
    it = IterativeSVDModel(5, max_iter=3, tol=0.0, keep_history=True).fit(small_split.train)
    tsvd = TruncatedSVDModel(5).fit(small_split.train)
    first = next(it.staged_predict(small_split.test))
    np.testing.assert_allclose(first, tsvd.predict(small_split.test), atol=1e-8)


def test_iterative_svd_stops_when_the_matrix_settles(small_split):
    m = IterativeSVDModel(5, max_iter=500, tol=1e-3).fit(small_split.train)
    assert m.n_iter_ < 500 and m.changes_[-1] < 1e-3 <= m.changes_[-2]


def test_scalable_models_agree_across_backends(backend, small_split):
    ref = {}
    for cls, kw in ((TruncatedSVDModel, {}), (NMFModel, dict(max_iter=15, tol=0.0)),
                    (IterativeSVDModel, dict(max_iter=3, tol=0.0))):
        base = cls(5, **kw).fit(small_split.train).predict(small_split.test)
        got = cls(5, backend=backend, **kw).fit(small_split.train).predict(small_split.test)
        ref[cls.__name__] = np.abs(got - base).max()
    assert max(ref.values()) < 1e-7, ref


def test_float32_stays_close_to_float64(small_split):
    a = IterativeSVDModel(5, max_iter=4, tol=0.0).fit(small_split.train)
    b = IterativeSVDModel(5, max_iter=4, tol=0.0, dtype="float32").fit(small_split.train)
    assert abs(rmse(small_split.test.ratings, a.predict(small_split.test))
               - rmse(small_split.test.ratings, b.predict(small_split.test))) < 1e-4


def test_sklearn_peers_predict_in_range(small_split):
    for m in (TruncatedSVDModel(6, solver="sklearn"), NMFModel(6, solver="sklearn")):
        p = m.fit(small_split.train).predict(small_split.test)
        assert p.min() >= 0.5 and p.max() <= 5.0
        assert rmse(small_split.test.ratings, p) < 1.5


def test_parameter_errors(small_split):
    with pytest.raises(ValueError, match="solver"):
        TruncatedSVDModel(solver="magic").fit(small_split.train)
    with pytest.raises(ValueError, match="solver"):
        IterativeSVDModel(solver="sklearn").fit(small_split.train)
    with pytest.raises(ValueError, match="n_components"):
        TruncatedSVDModel(10_000).fit(small_split.train)
    with pytest.raises(ValueError, match="shrinkage"):
        IterativeSVDModel(shrinkage=-1.0).fit(small_split.train)
    with pytest.raises(ValueError, match="init"):
        NMFModel(init="nndsvd").fit(small_split.train)
    with pytest.raises(RuntimeError, match="not fitted"):
        TruncatedSVDModel().predict(small_split.test)
    m = IterativeSVDModel(4, max_iter=2).fit(small_split.train)
    with pytest.raises(RuntimeError, match="keep_history"):
        next(m.staged_predict(small_split.test))
    assert m.set_params(max_iter=3).get_params()["max_iter"] == 3


# -- leakage ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: TruncatedSVDModel(5),
    lambda: TruncatedSVDModel(5, solver="dense", minmax=True),
    lambda: TruncatedSVDModel(5, solver="sklearn"),
    lambda: NMFModel(5, max_iter=20),
    lambda: NMFModel(5, solver="sklearn", max_iter=20),
    lambda: IterativeSVDModel(5, max_iter=4),
    lambda: IterativeSVDModel(5, max_iter=4, shrinkage=1.0, minmax=True),
], ids=["tsvd", "tsvd-dense-minmax", "tsvd-sklearn", "nmf", "nmf-sklearn", "itsvd",
        "softimpute"])
def test_factor_models_do_not_read_test_ratings(small_split, make):
    assert_no_leakage(fit_predict_estimator(make), small_split)


# -- the real datasets: the 1e-4 bar ------------------------------------------------


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("name", ["ml_small", "ml100k"])
def test_scalable_matches_dense_on_movielens(name, request):
    r = request.getfixturevalue(name)
    split = splits.holdout(r, 0.1, seed=0)
    y = split.test.ratings
    for cls, kw in ((TruncatedSVDModel, dict(n_components=16)),
                    (NMFModel, dict(n_components=15)),
                    (IterativeSVDModel, dict(n_components=16, max_iter=2, tol=0.0))):
        d = cls(solver="dense", **kw).fit(split.train)
        s = cls(solver="scalable", **kw).fit(split.train)
        assert abs(rmse(y, d.predict(split.test)) - rmse(y, s.predict(split.test))) < 1e-4
        if hasattr(d, "singular_values_"):
            np.testing.assert_allclose(s.singular_values_, d.singular_values_, rtol=1e-4)


# -- segments of the latent users -------------------------------------------------------------


def test_latent_segments_cover_every_trained_user(small_split):
    from kmrec_gpu.factor.segments import latent_segments

    train = small_split.train
    m = TruncatedSVDModel(5).fit(train)
    labels, summary = latent_segments(m, train, 3, random_state=0)
    rated = np.bincount(train.users, minlength=train.n_users) > 0
    assert (labels[rated] >= 0).all() and (labels[~rated] == -1).all()
    assert sum(s["users"] for s in summary) == rated.sum()
    assert sum(s["ratings"] for s in summary) == len(train)
    for s in summary:
        mask = labels[train.users] == s["segment"]
        assert s["mean_rating"] == pytest.approx(train.ratings[mask].mean())
        assert len(s["top_genres"]) == 3
    again, _ = latent_segments(m, train, 3, random_state=0)
    assert (again == labels).all()
    with pytest.raises(RuntimeError, match="fitted"):
        latent_segments(TruncatedSVDModel(), train)
