"""Iterative SVD (hard-impute) and soft-impute: the seed's loop and its scalable form.

Seed 001's loop: ``Z_0`` = the mean-filled matrix; ``L_t`` = rank-r SVD of ``Z_{t-1}``
(soft-impute shrinks its singular values by ``λ`` first, Mazumder, Hastie & Tibshirani
2010); ``Z_t`` = observed ratings where observed, ``L_t`` elsewhere; stop when
``‖Z_t − Z_{t−1}‖_F / ‖Z_{t−1}‖_F`` < ``tol``. ``L_1`` is the truncated SVD of the filled
matrix, so iteration 1 reproduces the truncated-SVD model.

:func:`dense_impute` is that loop on the materialised matrix (the oracle).
:func:`scalable_impute` keeps ``Z_t = P_Ω(X − L_t) + L_t`` as a sparse residual plus the
factors of ``L_t`` (with ``L_0 = m·1ᵀ``, the fill), takes its SVD through products
(:func:`~kmrec_gpu.factor.lanczos.scalable_svd`: Lanczos, or subspace iteration where
``oversample`` is set) warm-started from the previous right singular vectors, and
computes the stopping ratio from r×r Gram matrices and the sampled values of ``L`` on the
observed cells, so nothing of size users × movies exists at any point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmrec_gpu.backends import Backend
from kmrec_gpu.factor.filled import FilledMatrix
from kmrec_gpu.factor.lanczos import scalable_svd
from kmrec_gpu.factor.linalg import np_dtype, sampled_dot
from kmrec_gpu.factor.operator import SparsePlusLowRank


@dataclass(eq=False)
class ImputeResult:
    left: Any  # (rows, r) = U·diag(s), backend array
    right: Any  # (cols, r) = V
    singular_values: np.ndarray  # of the last SVD, before shrinkage
    n_iter: int
    changes: list[float] = field(default_factory=list)  # stopping ratio after each iteration
    power_iters: list[int] = field(default_factory=list)  # SVDResult.n_iter per SVD (scalable)
    history: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # host factors


def _shrink(s: np.ndarray, shrinkage: float) -> np.ndarray:
    return np.maximum(s - shrinkage, 0.0) if shrinkage else s


def dense_impute(filled: FilledMatrix, rank: int, *, max_iter: int, tol: float,
                 shrinkage: float = 0.0, keep_history: bool = False,
                 callback: Callable[[int, float], None] | None = None) -> ImputeResult:
    """The seed's loop on the dense NumPy matrix, with LAPACK's SVD."""
    z = filled.dense().astype(np.float64)
    coo = filled.observed.tocoo()
    known = (coo.row, coo.col)
    x_known = coo.data.astype(np.float64)
    res = ImputeResult(None, None, np.empty(0), 0)
    for t in range(1, max_iter + 1):
        u, s, vt = np.linalg.svd(z, full_matrices=False)
        res.singular_values = s[:rank].copy()
        left, right = u[:, :rank] * _shrink(s[:rank], shrinkage), vt[:rank].T
        new = left @ right.T
        new[known] = x_known
        change = float(np.linalg.norm(new - z) / np.linalg.norm(z))
        z = new
        res.left, res.right, res.n_iter = left, right, t
        res.changes.append(change)
        if keep_history:
            res.history.append((left.copy(), right.copy()))
        if callback:
            callback(t, change)
        if change < tol:
            break
    return res


def _inner(xp: Any, a: Any, b: Any, c: Any, d: Any) -> float:
    """``⟨A·Bᵀ, C·Dᵀ⟩_F`` from r×r products (never forms A·Bᵀ)."""
    mt = xp.matrix_transpose
    return float(xp.sum((mt(a) @ c) * (mt(b) @ d)))


def scalable_impute(filled: FilledMatrix, rank: int, *, backend: Backend, dtype: Any,
                    seed: int, max_iter: int, tol: float, shrinkage: float = 0.0,
                    svd_tol: float = 1e-10, oversample: int | None = None,
                    keep_history: bool = False, sddmm: str = "composed",
                    callback: Callable[[int, float], None] | None = None) -> ImputeResult:
    """The same loop over ``sparse residual + low rank``: O(nnz·r) work per power step.
    ``sddmm`` is :func:`~kmrec_gpu.factor.linalg.sampled_dot`'s path for the low-rank
    part on the observed cells."""
    xp = backend.xp
    csr = filled.observed.astype(np_dtype(dtype))
    pattern = backend.sparse.pattern(csr)
    x_known = pattern.values
    rows, cols = filled.shape
    left = backend.asarray(filled.user_means[:, None], dtype=dtype)
    right = xp.ones((cols, 1), dtype=left.dtype, device=backend.device)
    on_known = sampled_dot(backend, left, right, pattern.rows, pattern.cols, path=sddmm)
    x_norm2 = float(xp.sum(x_known * x_known))
    start = None
    old2 = _inner(xp, left, right, left, right)  # ‖L_{t−1}‖²_F, carried between steps
    res = ImputeResult(None, None, np.empty(0), 0)
    for t in range(1, max_iter + 1):
        z = SparsePlusLowRank(backend, pattern.matrix(x_known - on_known), left, right)
        svd = scalable_svd(z, rank, backend=backend, dtype=dtype, seed=seed,
                           oversample=oversample, tol=svd_tol, start=start)
        s = backend.to_numpy(svd.s).astype(np.float64)
        res.singular_values = s
        new_left = svd.u * backend.asarray(_shrink(s, shrinkage), dtype=dtype)
        new_right = xp.matrix_transpose(svd.vt)
        new_known = sampled_dot(backend, new_left, new_right, pattern.rows, pattern.cols,
                                path=sddmm)
        # Z_t − Z_{t−1} lives off the observed cells: ‖L_t − L_{t−1}‖² minus its observed part
        diff_known = new_known - on_known
        new2 = _inner(xp, new_left, new_right, new_left, new_right)
        diff2 = new2 + old2 - 2.0 * _inner(xp, new_left, new_right, left, right)
        off = diff2 - float(xp.sum(diff_known * diff_known))
        z_norm2 = x_norm2 + old2 - float(xp.sum(on_known * on_known))
        change = float(np.sqrt(max(off, 0.0) / z_norm2))
        left, right, on_known, start, old2 = new_left, new_right, new_known, new_right, new2
        res.left, res.right, res.n_iter = left, right, t
        res.changes.append(change)
        res.power_iters.append(svd.n_iter)
        if keep_history:
            res.history.append((backend.to_numpy(left).copy(), backend.to_numpy(right).copy()))
        if callback:
            callback(t, change)
        if change < tol:
            break
    return res
