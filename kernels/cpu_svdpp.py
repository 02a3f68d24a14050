"""SVD++ (Koren 2008) by stochastic gradient descent, Surprise's update order (numba, CPU).

Per epoch, users in order, each user's ratings in order: the implicit term
``|N(u)|^-1/2 Σ_{j ∈ N(u)} y_j`` is recomputed for every rating (the y_j moved at the
previous one), then the biases, ``p_u``, ``q_i`` and every ``y_j`` of the user take one
step. The operations and their order are those of Surprise's ``SVDpp.sgd`` (float64, no
reassociation), so from the same initial factors both end with the same numbers. One
rating costs O(|N(u)| · factors): an epoch is O(Σ_u |N(u)|² · factors).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def svdpp_sgd(indptr, items, ratings, mu, bu, bi, pu, qi, yj, n_epochs, lr_b, lr_f,
              lr_y, reg_b, reg_f, reg_y):  # pragma: no cover - jit
    """Update bu, bi, pu, qi, yj in place. ``indptr``/``items``/``ratings``: each user's
    ratings (inner item ids) in training order."""
    n_users = indptr.size - 1
    n_factors = pu.shape[1]
    impl = np.zeros(n_factors)
    for _ in range(n_epochs):
        for u in range(n_users):
            lo, hi = indptr[u], indptr[u + 1]
            sqrt_iu = np.sqrt(np.float64(hi - lo))
            for t in range(lo, hi):
                i = items[t]
                for f in range(n_factors):
                    impl[f] = 0.0
                for k in range(lo, hi):
                    j = items[k]
                    for f in range(n_factors):
                        impl[f] += yj[j, f] / sqrt_iu
                dot = 0.0
                for f in range(n_factors):
                    dot += qi[i, f] * (pu[u, f] + impl[f])
                err = ratings[t] - (mu + bu[u] + bi[i] + dot)
                bu[u] += lr_b * (err - reg_b * bu[u])
                bi[i] += lr_b * (err - reg_b * bi[i])
                for f in range(n_factors):
                    puf = pu[u, f]
                    qif = qi[i, f]
                    pu[u, f] += lr_f * (err * qif - reg_f * puf)
                    qi[i, f] += lr_f * (err * (puf + impl[f]) - reg_f * qif)
                    step = err * qif / sqrt_iu
                    for k in range(lo, hi):
                        j = items[k]
                        yj[j, f] += lr_y * (step - reg_y * yj[j, f])


@njit(cache=True, nogil=True)
def svdpp_predict(users, items, indptr, rated, mu, bu, bi, pu, qi, yj):  # pragma: no cover
    """Estimates for inner (user, item) ids; -1 marks one unseen in training."""
    n_factors = pu.shape[1]
    out = np.empty(users.size)
    impl = np.zeros(n_factors)
    for t in range(users.size):
        u, i = users[t], items[t]
        est = mu
        if u >= 0:
            est += bu[u]
        if i >= 0:
            est += bi[i]
        if u >= 0 and i >= 0:
            lo, hi = indptr[u], indptr[u + 1]
            for f in range(n_factors):
                impl[f] = 0.0
            for k in range(lo, hi):
                for f in range(n_factors):
                    impl[f] += yj[rated[k], f]
            sqrt_iu = np.sqrt(np.float64(hi - lo))
            dot = 0.0
            for f in range(n_factors):
                dot += qi[i, f] * (pu[u, f] + impl[f] / sqrt_iu)
            est += dot
        out[t] = est
    return out
