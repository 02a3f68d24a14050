"""Non-negative matrix factorisation ``X ≈ W·H`` by HALS, through products only.

The update is scikit-learn's coordinate-descent solver (``NMF(solver="cd")``, Cichocki &
Phan 2009) step for step: per sweep, ``X·Hᵀ`` and ``H·Hᵀ``, then each column ``t`` of ``W``
in turn moves to ``max(0, W_t − (W·HHᵀ_t − XHᵀ_t)/HHᵀ_tt)``; the same for ``H`` with
``Xᵀ·W``; it stops when the summed projected gradient falls below ``tol`` times the
first sweep's. scikit-learn loops over rows in Cython; rows are independent within a
column update, so here each column is one vectorised expression over ``xp``. The only
contact with ``X`` is ``op.matmul(Hᵀ)`` and ``op.rmatmul(W)``: O(nnz·r) per sweep on the
mean-filled matrix's sparse-plus-rank-1 form.

Initialisation ``"nndsvda"`` (Boutsidis & Gallopoulos 2008, zeros set to the mean of X,
scikit-learn's default) is built from the top singular triplets; ``"random"`` is
scikit-learn's scaled half-normal.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.backends import Backend


def nndsvda(backend: Backend, u: Any, s: Any, vt: Any, mean: float) -> tuple[Any, Any]:
    """NNDSVD factors from singular triplets, zeros replaced by ``mean`` (the "a" variant)."""
    xp = backend.xp
    r = int(s.shape[0])
    cols_w, rows_h = [], []
    for j in range(r):
        x, y, sj = u[:, j], vt[j, :], s[j]
        if j == 0:
            cols_w.append(xp.sqrt(sj) * xp.abs(x))
            rows_h.append(xp.sqrt(sj) * xp.abs(y))
            continue
        x_p, x_n = xp.maximum(x, 0.0), xp.abs(xp.minimum(x, 0.0))
        y_p, y_n = xp.maximum(y, 0.0), xp.abs(xp.minimum(y, 0.0))
        nxp, nxn = xp.linalg.vector_norm(x_p), xp.linalg.vector_norm(x_n)
        nyp, nyn = xp.linalg.vector_norm(y_p), xp.linalg.vector_norm(y_n)
        m_p, m_n = nxp * nyp, nxn * nyn
        if float(m_p) > float(m_n):
            a, b, sigma = x_p / nxp, y_p / nyp, m_p
        else:
            a, b, sigma = x_n / nxn, y_n / nyn, m_n
        lbd = xp.sqrt(sj * sigma)
        cols_w.append(lbd * a)
        rows_h.append(lbd * b)
    w = xp.stack(cols_w, axis=1)
    h = xp.stack(rows_h, axis=0)
    eps = 1e-6  # scikit-learn's threshold for "zero" in NNDSVD
    w = xp.where(w < eps, xp.asarray(mean, dtype=w.dtype, device=backend.device), w)
    h = xp.where(h < eps, xp.asarray(mean, dtype=h.dtype, device=backend.device), h)
    return w, h


def random_init(backend: Backend, shape: tuple[int, int], rank: int, mean: float, *,
                dtype: Any, seed: int) -> tuple[Any, Any]:
    """scikit-learn's ``init="random"`` scale: ``sqrt(mean/r)·|N(0, 1)|``."""
    g = seeding.rng(seed, "nmf", "init")
    avg = math.sqrt(mean / rank)
    w = avg * np.abs(g.standard_normal((shape[0], rank)))
    h = avg * np.abs(g.standard_normal((rank, shape[1])))
    return backend.asarray(w, dtype=dtype), backend.asarray(h, dtype=dtype)


def _sweep(xp: Any, w: Any, gram: Any, xg: Any) -> tuple[Any, Any]:
    """One pass of coordinate descent over the columns of ``w`` (in place on a copy).

    The projected-gradient sum stays on the device and a zero Hessian is masked rather
    than tested on the host, so a sweep costs no device-to-host round trips.
    """
    violation = xp.zeros((), dtype=w.dtype, device=array_api_compat.device(w))
    for t in range(int(w.shape[1])):
        grad = w @ gram[:, t] - xg[:, t]
        pg = xp.where(w[:, t] == 0, xp.minimum(grad, 0.0), grad)
        violation = violation + xp.sum(xp.abs(pg))
        hess = gram[t, t]
        safe = xp.where(hess != 0, hess, xp.ones_like(hess))
        w[:, t] = xp.where(hess != 0, xp.maximum(w[:, t] - grad / safe, 0.0), w[:, t])
    return w, violation


def hals(op: Any, w: Any, h: Any, *, backend: Backend, max_iter: int = 200,
         tol: float = 1e-4) -> tuple[Any, Any, int]:
    """Fit ``op ≈ w·h`` from the given non-negative start; returns ``(w, h, n_iter)``."""
    xp = backend.xp
    w = xp.asarray(w, copy=True)
    ht = xp.asarray(xp.matrix_transpose(h), copy=True)
    violation_init, n_iter = None, 0
    for n_iter in range(1, max_iter + 1):
        w, v_w = _sweep(xp, w, xp.matrix_transpose(ht) @ ht, op.matmul(ht))
        ht, v_h = _sweep(xp, ht, xp.matrix_transpose(w) @ w, op.rmatmul(w))
        violation = float(v_w + v_h)  # the one host round trip per sweep
        if violation_init is None:
            violation_init = violation
        if violation_init == 0 or violation / violation_init <= tol:
            break
    return w, xp.matrix_transpose(ht), n_iter
