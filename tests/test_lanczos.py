"""Golub–Kahan–Lanczos truncated SVD (kmrec_gpu.factor.lanczos): agreement with LAPACK on
every backend, the residual stopping test, restarts, warm starts, seeds and edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu.backends import get_backend
from kmrec_gpu.factor import IterativeSVDModel, TruncatedSVDModel
from kmrec_gpu.factor.lanczos import lanczos_svd, scalable_svd
from kmrec_gpu.factor.linalg import subspace_svd
from kmrec_gpu.factor.operator import DenseOperator


class Counting:
    """An operator that counts the columns it multiplies (and checks they are columns)."""

    def __init__(self, op):
        self.op, self.shape, self.cols, self.rcols = op, op.shape, 0, 0

    def matmul(self, y):
        self.cols += int(y.shape[1])
        return self.op.matmul(y)

    def rmatmul(self, y):
        self.rcols += int(y.shape[1])
        return self.op.rmatmul(y)


def _low_rank_plus_noise(m=80, n=60, rank=6, seed=0, noise=0.01):
    g = np.random.default_rng(seed)
    s = np.geomspace(50, 5, rank)
    a = g.standard_normal((m, rank)) * s @ g.standard_normal((rank, n)) / np.sqrt(n)
    return a + noise * g.standard_normal((m, n))


def _with_spectrum(s, m, n, seed=0):
    g = np.random.default_rng(seed)
    u, _ = np.linalg.qr(g.standard_normal((m, len(s))))
    v, _ = np.linalg.qr(g.standard_normal((n, len(s))))
    return (u * s) @ v.T


def _clustered(m=70, n=90):
    # a cluster of four at the top, a gap, a cluster of three straddling nothing, a tail
    s = np.concatenate([[10.0, 10.0 - 1e-3, 10.0 - 2e-3, 10.0 - 3e-3],
                        [5.0, 5.0 - 1e-4, 5.0 - 2e-4],
                        np.geomspace(2.0, 1e-3, min(m, n) - 7)])
    return _with_spectrum(s, m, n, seed=1)


def _run(backend, a, rank, **kw):
    op = DenseOperator(backend, backend.asarray(a))
    kw = {"seed": 0, "tol": 1e-12, **kw}
    res = lanczos_svd(op, rank, backend=backend, dtype=backend.xp.float64, **kw)
    to_np = backend.to_numpy
    return res, to_np(res.u), to_np(res.s), to_np(res.vt)


def _subspace_gap(x, y):
    """Largest principal-angle sine between the column spaces of two orthonormal x, y."""
    return float(np.linalg.norm(x - y @ (y.T @ x), 2))


def _residuals(a, u, s, vt):
    """``‖Aᵀu_i − s_i v_i‖/s_i`` (the stopping test) and ``‖A v_i − s_i u_i‖/s_i``."""
    return (np.linalg.norm(a.T @ u - vt.T * s, axis=0) / s,
            np.linalg.norm(a @ vt.T - u * s, axis=0) / s)


# -- agreement with LAPACK on every backend ---------------------------------------------------


def test_matches_lapack_on_low_rank_plus_noise(backend):
    a = _low_rank_plus_noise()
    res, u, s, vt = _run(backend, a, 5)
    uu, ss, vvt = np.linalg.svd(a, full_matrices=False)
    assert res.converged
    np.testing.assert_allclose(s, ss[:5], rtol=1e-12)
    # well-separated values: each vector matches up to sign
    np.testing.assert_allclose(np.abs(np.sum(u * uu[:, :5], axis=0)), 1.0, atol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(vt * vvt[:5], axis=1)), 1.0, atol=1e-10)
    np.testing.assert_allclose(u.T @ u, np.eye(5), atol=1e-13)
    np.testing.assert_allclose(vt @ vt.T, np.eye(5), atol=1e-13)
    np.testing.assert_allclose((u * s) @ vt, (uu[:, :5] * ss[:5]) @ vvt[:5], atol=1e-10)


def test_matches_lapack_on_clustered_values(backend):
    a = _clustered()
    uu, ss, vvt = np.linalg.svd(a, full_matrices=False)
    for rank in (4, 7):  # the gaps after the first and the second cluster
        res, u, s, vt = _run(backend, a, rank)
        assert res.converged
        np.testing.assert_allclose(s, ss[:rank], rtol=1e-12)
        # inside a cluster the vectors are ill-determined; the spans are not
        assert _subspace_gap(u, uu[:, :rank]) < 1e-8
        assert _subspace_gap(vt.T, vvt[:rank].T) < 1e-8
        np.testing.assert_allclose(u.T @ u, np.eye(rank), atol=1e-13)


def test_thick_restarts_reach_the_same_triplets(backend):
    # a basis cap of rank + 3 forces many restarts on a slowly decaying spectrum
    a = _with_spectrum(np.linspace(10.0, 1.0, 60), 70, 60, seed=2)
    ss = np.linalg.svd(a, compute_uv=False)
    res, u, s, vt = _run(backend, a, 6, max_basis=9, tol=1e-10)
    wide = _run(backend, a, 6, tol=1e-10)[0]
    assert res.converged and res.n_iter > wide.n_iter > 9  # it did restart, and it paid
    np.testing.assert_allclose(s, ss[:6], rtol=1e-12)
    left, right = _residuals(a, u, s, vt)
    assert left.max() <= 1.01e-10 and right.max() < 1e-12
    np.testing.assert_allclose(vt @ vt.T, np.eye(6), atol=1e-12)


def test_agrees_with_subspace_iteration():
    be = get_backend("cpu")
    a = _low_rank_plus_noise(120, 70, 8)
    op = DenseOperator(be, a)
    lz = lanczos_svd(op, 6, backend=be, dtype=np.float64, seed=0, tol=1e-10)
    sub = subspace_svd(op, 6, backend=be, dtype=np.float64, seed=0, tol=1e-10)
    np.testing.assert_allclose(lz.s, sub.s, rtol=1e-13)
    np.testing.assert_allclose((lz.u * lz.s) @ lz.vt, (sub.u * sub.s) @ sub.vt, atol=1e-9)


# -- the stopping test ----------------------------------------------------------------------


@pytest.mark.parametrize("tol", [1e-3, 1e-6, 1e-9])
def test_the_residual_criterion_holds_at_stop(tol):
    be = get_backend("cpu")
    a = _with_spectrum(np.geomspace(100.0, 0.1, 50), 90, 50, seed=3)
    res, u, s, vt = _run(be, a, 8, tol=tol, max_basis=20)
    assert res.converged
    left, right = _residuals(a, u, s, vt)
    # the test is on ‖Zᵀu − s·v‖ (|β·p_k| for Lanczos); Z·v = s·u holds by construction
    assert left.max() <= tol * (1 + 1e-6)
    assert right.max() < 1e-12
    # and it is not met by luck: a looser tol stops earlier
    if tol < 1e-3:
        assert _run(be, a, 8, tol=1e-3, max_basis=20)[0].n_iter < res.n_iter


@pytest.mark.parametrize("shape", [(80, 60), (60, 80)])
def test_one_sided_reorthogonalisation_agrees_with_full(shape):
    be = get_backend("cpu")
    a = _low_rank_plus_noise(*shape)
    exact = np.linalg.svd(a, compute_uv=False)[:6]
    full = _run(be, a, 6, tol=1e-6, one_sided=False)
    one = _run(be, a, 6, tol=1e-6, one_sided=True)
    auto = _run(be, a, 6, tol=1e-6)
    assert one[0].n_iter == full[0].n_iter
    np.testing.assert_allclose(one[2], exact, rtol=1e-10)
    assert _residuals(a, *one[1:])[0].max() <= 1e-6
    # the default at a tol above sqrt(eps) is the one-sided run, bit for bit
    np.testing.assert_array_equal(auto[2], one[2])
    np.testing.assert_array_equal(auto[3], one[3])


def test_below_sqrt_eps_the_default_reorthogonalises_both_sides():
    # one-sided, the unreorthogonalised side's rounding stalls the true residual near
    # 1e-10 on this matrix, so it cannot honestly stop at 1e-11; the default does
    be = get_backend("cpu")
    a = _low_rank_plus_noise()
    tol = 1e-11
    _, u, s, vt = _run(be, a, 8, tol=tol, max_basis=20)
    assert _residuals(a, u, s, vt)[0].max() <= tol * (1 + 1e-6)
    _, u, s, vt = _run(be, a, 8, tol=tol, max_basis=20, one_sided=True)
    assert _residuals(a, u, s, vt)[0].max() > tol


def test_max_iter_stops_unconverged():
    be = get_backend("cpu")
    a = _with_spectrum(np.linspace(10.0, 9.0, 40), 50, 40, seed=4)
    res = _run(be, a, 5, max_iter=8, tol=1e-12)[0]
    assert not res.converged and res.n_iter == 8


def test_float32_converges_to_its_floor():
    be = get_backend("cpu")
    a = _low_rank_plus_noise()
    op = DenseOperator(be, a.astype(np.float32))
    res = lanczos_svd(op, 4, backend=be, dtype=np.float32, seed=0, tol=1e-12)
    assert res.converged and res.u.dtype == np.float32 and res.vt.dtype == np.float32
    np.testing.assert_allclose(res.s, np.linalg.svd(a, compute_uv=False)[:4], rtol=1e-5)


# -- products, warm starts, seeds ---------------------------------------------------------------


def test_n_iter_counts_single_column_products():
    be = get_backend("cpu")
    op = Counting(DenseOperator(be, _low_rank_plus_noise()))
    res = lanczos_svd(op, 5, backend=be, dtype=np.float64, seed=0, tol=1e-10)
    assert op.cols == op.rcols == res.n_iter


def test_warm_start_reduces_products(backend):
    # an iterative-SVD step: the next matrix differs little from the one whose right
    # singular vectors seed the call
    g = np.random.default_rng(5)
    a = _with_spectrum(np.geomspace(10.0, 0.1, 100), 150, 120, seed=5)
    a2 = a + 1e-6 * g.standard_normal(a.shape) / np.sqrt(150)
    first = _run(backend, a, 8, tol=1e-8)[0]
    cold, _, s_cold, _ = _run(backend, a2, 8, tol=1e-6)
    warm, u, s, vt = _run(backend, a2, 8, tol=1e-6, start=backend.xp.matrix_transpose(first.vt))
    assert cold.converged and warm.converged
    assert warm.n_iter < 0.6 * cold.n_iter, (warm.n_iter, cold.n_iter)
    np.testing.assert_allclose(s, np.linalg.svd(a2, compute_uv=False)[:8], rtol=1e-11)
    np.testing.assert_allclose(s, s_cold, rtol=1e-11)
    assert _residuals(a2, u, s, vt)[0].max() <= 1e-6


def test_seed_reproducibility():
    be = get_backend("cpu")
    a = _clustered()
    r1, r2, r3 = (_run(be, a, 5, seed=seed, tol=1e-8)[0] for seed in (7, 7, 8))
    for x, y in ((r1.u, r2.u), (r1.s, r2.s), (r1.vt, r2.vt)):
        np.testing.assert_array_equal(x, y)
    assert r1.n_iter == r2.n_iter
    assert not np.array_equal(r1.vt, r3.vt)  # another start vector...
    np.testing.assert_allclose(r1.s, r3.s, rtol=1e-12)  # ...the same triplets


def test_a_zero_start_falls_back_to_the_seeded_vector():
    be = get_backend("cpu")
    a = _low_rank_plus_noise()
    res = _run(be, a, 4, start=np.zeros((a.shape[1], 2)))[0]
    ref = _run(be, a, 4)[0]
    assert res.converged and res.n_iter == ref.n_iter
    np.testing.assert_allclose(res.s, ref.s, rtol=1e-13)


# -- edge cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(12, 7), (7, 12), (9, 9)])
def test_full_rank_request(backend, shape):
    a = np.random.default_rng(6).standard_normal(shape)
    k = min(shape)
    res, u, s, vt = _run(backend, a, k)
    uu, ss, vvt = np.linalg.svd(a, full_matrices=False)
    assert res.converged and res.n_iter == k
    np.testing.assert_allclose(s, ss, rtol=1e-12)
    np.testing.assert_allclose((u * s) @ vt, a, atol=1e-12)
    np.testing.assert_allclose(u.T @ u, np.eye(k), atol=1e-13)
    np.testing.assert_allclose(vt @ vt.T, np.eye(k), atol=1e-13)


def test_rank_one(backend):
    a = _low_rank_plus_noise()
    res, u, s, vt = _run(backend, a, 1)
    uu, ss, vvt = np.linalg.svd(a, full_matrices=False)
    assert res.converged and u.shape == (a.shape[0], 1) and vt.shape == (1, a.shape[1])
    np.testing.assert_allclose(s, ss[:1], rtol=1e-12)
    assert abs(abs(float(u[:, 0] @ uu[:, 0])) - 1) < 1e-10


def test_rank_deficient_matrix_breaks_down_cleanly():
    # rank 3; asking for 5 exhausts the Krylov space: the last two values are 0
    be = get_backend("cpu")
    a = _with_spectrum(np.array([9.0, 4.0, 1.0]), 40, 30, seed=7)
    res, u, s, vt = _run(be, a, 5, tol=1e-10)
    assert res.converged
    np.testing.assert_allclose(s, [9.0, 4.0, 1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(u.T @ u, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(vt @ vt.T, np.eye(5), atol=1e-12)
    np.testing.assert_allclose((u * s) @ vt, a, atol=1e-12)


def test_a_zero_matrix_returns_zero_values():
    be = get_backend("cpu")
    res, u, s, vt = _run(be, np.zeros((6, 4)), 2)
    assert res.converged
    np.testing.assert_array_equal(s, [0.0, 0.0])
    np.testing.assert_allclose(vt @ vt.T, np.eye(2), atol=1e-14)


@pytest.mark.parametrize("rank", [0, -1, 8])
def test_bad_rank_is_a_clear_error(rank):
    be = get_backend("cpu")
    op = DenseOperator(be, np.ones((10, 7)))
    with pytest.raises(ValueError, match=r"rank must be in \[1, 7\] for a 10x7 matrix"):
        lanczos_svd(op, rank, backend=be, dtype=np.float64, seed=0)


def test_bad_basis_cap_is_a_clear_error():
    be = get_backend("cpu")
    op = DenseOperator(be, np.ones((10, 7)))
    with pytest.raises(ValueError, match="max_basis must exceed rank"):
        lanczos_svd(op, 3, backend=be, dtype=np.float64, seed=0, max_basis=3)


# -- the models' scalable solver ----------------------------------------------------------------


def test_scalable_svd_is_lanczos_unless_oversample_is_set():
    be = get_backend("cpu")
    op = Counting(DenseOperator(be, _low_rank_plus_noise()))
    lz = scalable_svd(op, 4, backend=be, dtype=np.float64, seed=0, tol=1e-8)
    assert op.cols == lz.n_iter  # single columns
    op.cols = 0
    sub = scalable_svd(op, 4, backend=be, dtype=np.float64, seed=0, tol=1e-8, oversample=2)
    assert op.cols == 6 * sub.n_iter  # blocks of rank + oversample
    np.testing.assert_allclose(lz.s, sub.s, rtol=1e-12)


def test_models_agree_across_the_two_scalable_svds():
    from kmrec_gpu import splits
    from kmrec_gpu.data.synthetic import synthetic

    split = splits.holdout(synthetic(120, 90, 2_400, seed=3, min_user_ratings=5), 0.1, seed=0)
    for cls, kw in ((TruncatedSVDModel, dict(tol=1e-10)),
                    (IterativeSVDModel, dict(max_iter=4, tol=0.0, svd_tol=1e-10))):
        lz = cls(5, **kw).fit(split.train)
        sub = cls(5, oversample=5, **kw).fit(split.train)
        np.testing.assert_allclose(lz.singular_values_, sub.singular_values_, rtol=1e-9)
        np.testing.assert_allclose(lz.predict(split.test), sub.predict(split.test), atol=1e-8)
