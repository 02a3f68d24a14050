"""One coordinate-descent sweep of biased-MF ALS per row, on a CPU (numba).

The exact half-step forms and solves a ``(k+1) x (k+1)`` system per row: ``O(nnz k^2 +
n k^3)`` an epoch, which at 100 factors is what BLAS can do at its peak and still several
times a Cython SGD epoch (``O(nnz k)``). Cyclic coordinate descent (Pilászy, Zibriczky &
Tikk 2010, "Fast ALS-based matrix factorization for explicit and implicit feedback
datasets"; LensKit's ``method="cd"``) instead updates each of a row's ``k+1`` unknowns once
per half-step, in order, from the previous epoch's values, keeping the row's residuals
current: ``O(nnz k)`` an epoch, with each row's ratings and their factor rows in cache.

For row ``u`` with rated columns ``j``, fixed factors ``V`` (cols, k), fixed biases ``b``,
centred ratings ``r`` and current ``x = [p_u, b_u]``, residuals ``e_j = r_j - b_j - V_j
p_u - b_u``; coordinate ``f`` (the factors in order, then the bias, whose column is 1):

    x_f' = (sum_j e_j v_jf + x_f sum_j v_jf^2) / (sum_j v_jf^2 + pen_f),  e_j -= (x_f' - x_f) v_jf

with ``pen`` the row's factor penalty for ``f < k`` and its bias penalty for the bias; a
coordinate whose denominator is 0 keeps its value, and a row without ratings is zero.
:meth:`kmrec_gpu.models.mf.BiasedMF._cd_composed` is the same sweep over an array
namespace (every row at once, one coordinate at a time), for torch and CuPy.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# reassociation lets LLVM vectorise the sums over a row's ratings; no assumption about
# NaN or infinity (the inputs are finite, but the kernel should not rely on it)
_FAST = {"reassoc", "contract", "arcp"}


@njit(cache=True, fastmath=_FAST)
def cd_sweep(indptr: np.ndarray, indices: np.ndarray, r: np.ndarray, v: np.ndarray,
             b: np.ndarray, x: np.ndarray, pen_f: np.ndarray, pen_b: np.ndarray) -> float:
    """Update ``x`` (rows, k+1) in place: one sweep per row of the CSR ``(indptr, indices,
    r)`` against the fixed ``v`` (cols, k) and ``b`` (cols,), penalties ``pen_f``,
    ``pen_b`` (rows,). Returns the sum of squared residuals after the sweep (the training
    error of the updated rows: the item sweep's is the epoch's, for free)."""
    n_rows = x.shape[0]
    k = x.shape[1] - 1
    widest = 0
    for u in range(n_rows):
        widest = max(widest, indptr[u + 1] - indptr[u])
    s = np.empty((k, widest), dtype=v.dtype)  # the row's factor rows, one factor a line
    e = np.empty(widest, dtype=v.dtype)
    sse = 0.0
    for u in range(n_rows):
        lo = indptr[u]
        d = indptr[u + 1] - lo
        if d == 0:
            x[u, :] = 0.0
            continue
        for t in range(d):
            j = indices[lo + t]
            acc = 0.0
            for f in range(k):
                s[f, t] = v[j, f]
                acc += v[j, f] * x[u, f]
            e[t] = r[lo + t] - b[j] - acc - x[u, k]
        for f in range(k):
            num = 0.0
            den = 0.0
            for t in range(d):
                num += e[t] * s[f, t]
                den += s[f, t] * s[f, t]
            den_all = den + pen_f[u]
            if den_all > 0.0:
                old = x[u, f]
                new = (num + old * den) / den_all
                step = new - old
                for t in range(d):
                    e[t] -= step * s[f, t]
                x[u, f] = new
        num = 0.0
        for t in range(d):
            num += e[t]
        new = (num + x[u, k] * d) / (d + pen_b[u])
        step = new - x[u, k]
        x[u, k] = new
        for t in range(d):
            e[t] -= step
            sse += e[t] * e[t]
    return sse
