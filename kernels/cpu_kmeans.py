"""Fused K-means assignment + accumulation on a CPU (numba), for NumPy and SciPy CSR input.

Composing library calls (product, argmin, one-hot product) reads every block of distances
several times, and a tall-skinny BLAS product (1M × 20 times 20 × 16) runs far below the
machine's speed: measured here, the composition took 200-250 ms an iteration on 1M × 20,
k = 16, where scikit-learn's fused Cython loop took 18-25 ms (float32-float64;
results/bench/kmeans.md). These kernels do what the
Triton kernel does on a GPU: one pass over the points computes the distances to every
centre, keeps the running minimum and its index, and adds the point into its cluster's
per-thread sum, without writing the n × k distance matrix.

Dense: as scikit-learn's Cython loop, each thread takes tiles of ``TILE`` points, computes
the tile's products with the centres by a single-threaded BLAS call into a small buffer
that stays in cache, then scans it for the minimum and accumulates (measured against a
hand-vectorised loop, BLAS on the tile was ~1.5x faster). Sparse: each stored value adds
``v · Cᵀ[col, :]`` to the row's ``k`` dot products, a contiguous loop over centres.

Argmin ties go to the lowest centre index, as ``argmin`` does.
"""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange
from threadpoolctl import ThreadpoolController

_BLAS = None  # one controller: building one scans the loaded libraries (milliseconds)


def _one_blas_thread():
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


TILE = 256  # scikit-learn's chunk: the product of a tile stays in L1/L2


@njit(inline="always", fastmath=True)
def _nearest(cnorm, dots, inf):  # pragma: no cover - jit
    """(min over centres of ‖c‖² - 2x·c, its index); ties go to the lowest index."""
    best = inf
    arg = 0
    for j in range(cnorm.shape[0]):
        # dots + dots, not 2 * dots: numba promotes int * float32 to float64
        v = cnorm[j] - (dots[j] + dots[j])
        if v < best:
            best = v
            arg = j
    return best, arg


@njit(inline="always")
def _record(i, g, arg, best, labels, changed, mind, sqn, counts, update,
            want_mind):  # pragma: no cover - jit
    """Store row i's label (counting a change), its distance if asked, and its count."""
    if labels[i] != arg:
        changed[g] += 1
        labels[i] = arg
    if want_mind:
        mind[i] = best + sqn[i]
    if update:
        counts[g, arg] += 1


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _dense(X, Ct, cnorm, sqn, labels, mind, sums, counts, changed, update,
           want_mind):  # pragma: no cover - jit
    n, d = X.shape
    k = Ct.shape[1]
    n_tiles = (n + TILE - 1) // TILE
    n_groups = sums.shape[0]
    per_group = (n_tiles + n_groups - 1) // n_groups
    for g in prange(n_groups):
        prod = np.empty((TILE, k), dtype=X.dtype)
        local = np.zeros((k, d), dtype=X.dtype)
        # typed like the data: a bare np.inf is float64 and would widen every compare
        inf = np.full(1, np.inf, dtype=cnorm.dtype)[0]
        for tile in range(g * per_group, min(n_tiles, (g + 1) * per_group)):
            r0 = tile * TILE
            m = min(TILE, n - r0)
            if m == TILE:
                np.dot(X[r0:r0 + TILE], Ct, prod)  # BLAS, into the tile buffer
            else:
                prod[:m] = np.dot(X[r0:r0 + m], Ct)
            for r in range(m):
                best, arg = _nearest(cnorm, prod[r], inf)
                i = r0 + r
                _record(i, g, arg, best, labels, changed, mind, sqn, counts, update, want_mind)
                if update:
                    for t in range(d):
                        local[arg, t] += X[i, t]
            if update:
                # a tile's sums in the data's dtype, then float64 across tiles: fast inner
                # adds without float32 drift over millions of points
                for j in range(k):
                    for t in range(d):
                        sums[g, j, t] += local[j, t]
                        local[j, t] = 0


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _sparse(indptr, indices, data, Ct, cnorm, sqn, labels, mind, sums, counts, changed,
            update, want_mind):  # pragma: no cover - jit
    n = indptr.shape[0] - 1
    k = Ct.shape[1]
    n_groups = sums.shape[0]
    per_group = (n + n_groups - 1) // n_groups
    for g in prange(n_groups):
        acc = np.empty(k, dtype=Ct.dtype)
        inf = np.full(1, np.inf, dtype=cnorm.dtype)[0]
        for i in range(g * per_group, min(n, (g + 1) * per_group)):
            for j in range(k):
                acc[j] = 0
            for p in range(indptr[i], indptr[i + 1]):
                v = data[p]
                col = indices[p]
                for j in range(k):
                    acc[j] += v * Ct[col, j]
            bv, bj = _nearest(cnorm, acc, inf)
            _record(i, g, bj, bv, labels, changed, mind, sqn, counts, update, want_mind)
            if update:
                for p in range(indptr[i], indptr[i + 1]):
                    sums[g, bj, indices[p]] += data[p]


def _run(X, C, sq_norms, labels, update, want_mind, n_groups):
    n, d = X.shape
    k = C.shape[0]
    sparse = not isinstance(X, np.ndarray)
    dtype = X.dtype
    C = np.ascontiguousarray(C, dtype=dtype)
    Ct = np.ascontiguousarray(C.T)
    cnorm = np.einsum("ij,ij->i", C, C)
    if labels is None:
        labels = np.full(n, -1, dtype=np.int32)
    elif labels.dtype != np.int32 or labels.shape != (n,):
        raise ValueError(f"labels must be int32 of shape ({n},), got {labels.dtype} "
                         f"{labels.shape}")
    if sq_norms is None:
        sq_norms = np.zeros(1, dtype=dtype)
    # one group of rows per thread, each with its own sums: no atomics. (A CSR group's
    # sums are k × d with d the number of movies, so no more groups than threads.)
    g = n_groups or max(1, min(get_num_threads(), (n + TILE - 1) // TILE if not sparse else n))
    mind = np.empty(n if want_mind else 1, dtype=dtype)
    sums = np.zeros((g, k, d) if update else (g, 1, 1), dtype=np.float64)
    counts = np.zeros((g, k) if update else (g, 1), dtype=np.int64)
    changed = np.zeros(g, dtype=np.int64)
    if sparse:
        _sparse(X.indptr, X.indices, X.data, Ct, cnorm, sq_norms, labels, mind, sums, counts,
                changed, update, want_mind)
    else:
        # one BLAS thread per tile: the parallelism is over tiles, as in scikit-learn
        with _one_blas_thread():
            _dense(X, Ct, cnorm, sq_norms, labels, mind, sums, counts, changed, update,
                   want_mind)
    out_sums = sums.sum(axis=0).astype(dtype) if update else None
    return (labels, mind if want_mind else None, out_sums,
            counts.sum(axis=0) if update else None, int(changed.sum()))


def assign_dense(X: np.ndarray, C: np.ndarray, sq_norms: np.ndarray, *, update: bool = True,
                 n_groups: int | None = None):
    """Labels (int32), squared distances, and (``update``) per-cluster sums and counts."""
    return _run(X, C, sq_norms, None, update, True, n_groups)[:4]


def assign_sparse(X, C: np.ndarray, sq_norms: np.ndarray, *, update: bool = True,
                  n_groups: int | None = None):
    """The same for a SciPy CSR ``X`` (canonical: sorted, no duplicates)."""
    return _run(X, C, sq_norms, None, update, True, n_groups)[:4]


def lloyd_step(X, C: np.ndarray, labels: np.ndarray | None, *, n_groups: int | None = None):
    """One Lloyd assignment for dense or CSR ``X``: ``labels`` (int32, or None on the first
    step) is updated in place; returns ``(labels, sums, counts, n_changed)``.

    Skipping the distances (needed only to re-seed an empty cluster) and counting label
    changes in the same pass saves two passes over n values an iteration.
    """
    labels, _, sums, counts, changed = _run(X, C, None, labels, True, False, n_groups)
    return labels, sums, counts, changed
