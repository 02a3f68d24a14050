"""BiasedMF's half-step (degree buckets, gathered factor rows, batched Gram matrices, the
dual form below k ratings) against a direct per-row ridge solve, on skewed degrees: rows
with 0, 1, a few and many ratings, so that buckets, padding, row chunks, column pieces and
both forms all occur."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kmrec_gpu.backends import get_backend
from kmrec_gpu.models.mf import BiasedMF

N_FACTORS = 20  # k = 21: rows of 1 to 17 ratings in the dual form, the rest primal


def skewed_problem(seed: int = 0):
    """A centred-ratings CSR (rows x cols) whose row degrees run from 0 to every column,
    the fixed side's factors and biases; column 0 has no rating."""
    g = np.random.default_rng(seed)
    n_cols = 90
    degrees = np.r_[0, 1, 1, 2, 0, 3, 5, 8, 9, 13, 17, 30, 31, 44, 60, 89, 89,
                    g.integers(1, 25, 40)]
    g.shuffle(degrees)  # the degree order is not the row order
    rows, cols = [], []
    for row, d in enumerate(degrees):
        rows.append(np.full(d, row))
        cols.append(1 + np.sort(g.choice(n_cols - 1, size=d, replace=False)))
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    vals = g.normal(0.0, 1.0, rows.size)
    vals[::7] = 0.0  # a rating equal to the mean: an explicit zero that still counts
    r0 = sp.csr_matrix((vals, (rows, cols)), shape=(degrees.size, n_cols))
    assert r0.nnz == rows.size and np.array_equal(np.diff(r0.indptr), degrees)
    fixed_f = g.normal(0.0, 0.5, (n_cols, N_FACTORS))
    fixed_b = g.normal(0.0, 0.3, n_cols)
    fixed_f[0], fixed_b[0] = 0.0, 0.0  # the unrated column, as fit leaves it
    return r0, fixed_f, fixed_b


def direct_ridge(r0, fixed_f, fixed_b, reg, reg_bias, ef, eb):
    """Each row's ``(p, b)`` by its own normal equations; rows without ratings stay 0."""
    k = fixed_f.shape[1]
    out = np.zeros((r0.shape[0], k + 1))
    for row in range(r0.shape[0]):
        lo, hi = r0.indptr[row], r0.indptr[row + 1]
        n = hi - lo
        if n == 0:
            continue
        j = r0.indices[lo:hi]
        x = np.c_[fixed_f[j], np.ones(n)]
        y = r0.data[lo:hi] - fixed_b[j]
        lam = np.r_[np.full(k, reg * float(n) ** ef), reg_bias * float(n) ** eb]
        out[row] = np.linalg.solve(x.T @ x + np.diag(lam), x.T @ y)
    return out[:, :k], out[:, k]


# 256 MiB: one chunk per bucket; 9000 bytes: one row a chunk, and the widest rows split
# into column pieces (9000 // (8 * 21) = 53 columns a piece)
@pytest.mark.parametrize("block_bytes", [256 * 2**20, 9000], ids=["one-chunk", "pieces"])
@pytest.mark.parametrize("penalties", [(0.3, 1.7, 1.0, 0.0), (0.3, 1.7, 0.5, 1.0),
                                       (0.3, 1.7, 0.0, 0.0), (0.3, 0.0, 1.0, 0.0)],
                         ids=["wr", "sqrt-bias-wr", "plain", "no-bias-penalty-primal-only"])
def test_half_step_matches_a_direct_ridge_solve_per_row(backend, block_bytes, penalties):
    r0, fixed_f, fixed_b = skewed_problem()
    reg, reg_bias, ef, eb = penalties
    m = BiasedMF(n_factors=N_FACTORS, reg=reg, reg_bias=reg_bias, reg_exponent=ef,
                 reg_bias_exponent=eb, block_bytes=block_bytes, backend=backend)
    side = m._side(backend, r0, N_FACTORS + 1)
    p, b = m._half_step(backend, side, backend.asarray(fixed_f, "float64"),
                        backend.asarray(fixed_b, "float64"))
    p, b = backend.to_numpy(p), backend.to_numpy(b)
    want_p, want_b = direct_ridge(r0, fixed_f, fixed_b, reg, reg_bias, ef, eb)
    np.testing.assert_allclose(p, want_p, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b, want_b, rtol=0, atol=1e-10)
    cold = np.diff(r0.indptr) == 0
    assert not p[cold].any() and not b[cold].any()
    # the case exercises what it claims to
    assert side.n_cold == cold.sum() == 2
    widths = [sum(int(ix.shape[0]) // (c.stop - c.start) for ix, _ in c.pieces)
              for c in side.chunks]
    assert max(widths) == 89
    assert sum(int(ix.shape[0]) for c in side.chunks for ix, _ in c.pieces) > r0.nnz  # padded
    assert min(c.width for c in side.chunks) < N_FACTORS + 1 <= max(c.width for c in side.chunks)
    if block_bytes == 9000:
        assert max(len(c.pieces) for c in side.chunks) > 1
        assert len(side.chunks) == r0.shape[0] - side.n_cold


def test_chunks_cover_every_rated_row_once_within_the_budget():
    r0, _, _ = skewed_problem(seed=1)
    k, itemsize = N_FACTORS + 1, 8
    for block_bytes in (256 * 2**20, 50000, 9000, 100):
        side = BiasedMF(n_factors=N_FACTORS, block_bytes=block_bytes)._side(
            get_backend("cpu"), r0, k)
        spans = [(c.start, c.stop) for c in side.chunks]
        assert spans[0][0] == side.n_cold
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
        assert spans[-1][1] == r0.shape[0]
        # no bucket straddles k (the dual form's limit)
        assert all(c.width < k or int(c.counts[0]) >= k for c in side.chunks)
        w_step = max(1, block_bytes // (itemsize * k))
        for c in side.chunks:
            rows = c.stop - c.start
            for index, _ in c.pieces:
                width = index.shape[0] // rows
                assert width <= w_step
                # one gathered piece within the budget unless one row alone is over it
                assert rows == 1 or rows * width * k * itemsize <= block_bytes
