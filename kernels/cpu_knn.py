"""The neighbourhood step of kNN-with-baseline rating prediction (numba, CPU).

For each test pair, the ``k`` most similar neighbours among those the pair's "owner" rated
(item-based: the user's rated movies; user-based: the movie's raters) give
``b_pair + Σ s·(r − b) / Σ s`` over the neighbours with a positive similarity, Koren's
(2010) rule as Surprise's ``KNNBaseline`` applies it; with none, the baseline alone.
Neighbours with equal similarity keep their order in the owner's row (a stable sort).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def knn_baseline(owner, target, indptr, indices, resid, sim, base, k):  # pragma: no cover - jit
    """``owner[t]``: the CSR row to scan (or -1: none); ``target[t]``: the row of ``sim``
    to read (or -1: no similarity known); ``indices``/``resid`` the rows' neighbours and
    their ``r − b``; ``base[t]`` the baseline of pair ``t``. Returns the predictions."""
    out = base.copy()
    for t in range(owner.size):
        o, g = owner[t], target[t]
        if o < 0 or g < 0:
            continue
        a, b = indptr[o], indptr[o + 1]
        n = b - a
        if n == 0:
            continue
        s = np.empty(n)
        for p in range(n):
            s[p] = sim[g, indices[a + p]]
        order = np.argsort(-s, kind="mergesort")
        num = 0.0
        den = 0.0
        for q in range(min(k, n)):
            j = order[q]
            if s[j] > 0:
                num += s[j] * resid[a + j]
                den += s[j]
        if den > 0:
            out[t] = base[t] + num / den
    return out
