"""SVD++ (Koren 2008): biased matrix factorisation plus implicit feedback, the Surprise
README's most accurate ml-100k row, as this project's own model.

``r̂_ui = μ + b_u + b_i + q_iᵀ (p_u + |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j)``, ``N(u)`` the movies
``u`` rated in training, fitted by stochastic gradient descent in Surprise's order and
with its defaults (20 factors, 20 epochs, learning rate 0.007, penalty 0.02, initial
factors N(0, 0.1²) drawn from ``RandomState(random_state)`` in Surprise's order: users
and movies numbered by first appearance in the training rows). The SGD is a numba loop
(``kernels/cpu_svdpp.py``) doing Surprise's float64 operations in its order, so with the
same seed both fit the same factors. An unseen user or movie leaves out its terms, as
Surprise does; the harness routes such pairs to its cold-pair rule in any case.
"""

from __future__ import annotations

import numpy as np

from kmrec_gpu.estimator import Estimator
from kmrec_gpu.ratings import Ratings


def _first_appearance(codes: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """Inner ids numbered by first appearance in ``codes`` (-1 for absent codes)."""
    uniq, first = np.unique(codes, return_index=True)
    inner = np.full(n, -1, dtype=np.int64)
    inner[uniq[np.argsort(first)]] = np.arange(uniq.size)
    return inner, int(uniq.size)


class SVDpp(Estimator):
    """SVD++ by SGD; parameters named and defaulted as Surprise's ``SVDpp``."""

    _fitted_attr = "pu_"

    def __init__(self, *, n_factors: int = 20, n_epochs: int = 20, init_mean: float = 0.0,
                 init_std_dev: float = 0.1, lr_all: float = 0.007, reg_all: float = 0.02,
                 random_state: int = 0, clip: bool = True) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.init_mean = init_mean
        self.init_std_dev = init_std_dev
        self.lr_all = lr_all
        self.reg_all = reg_all
        self.random_state = random_state
        self.clip = clip

    def _check(self) -> None:
        for name in ("n_factors", "n_epochs"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        for name in ("init_std_dev", "lr_all", "reg_all"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")

    def fit(self, train: Ratings) -> SVDpp:
        from kernels.cpu_svdpp import svdpp_sgd

        self._check()
        self.user_inner_, n_u = _first_appearance(train.users, train.n_users)
        self.item_inner_, n_i = _first_appearance(train.items, train.n_items)
        users = self.user_inner_[train.users]
        order = np.argsort(users, kind="stable")  # each user's ratings in training order
        self.indptr_ = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_u))]
                                      ).astype(np.int64)
        self.rated_ = self.item_inner_[train.items][order]  # int64, as item_inner_
        ratings = train.ratings.astype(np.float64)[order]
        self.mu_ = float(np.mean(ratings))  # summed in Surprise's order: the same bits
        rng = np.random.RandomState(self.random_state)
        k, m, s = int(self.n_factors), float(self.init_mean), float(self.init_std_dev)
        self.bu_, self.bi_ = np.zeros(n_u), np.zeros(n_i)
        self.pu_ = rng.normal(m, s, size=(n_u, k))
        self.qi_ = rng.normal(m, s, size=(n_i, k))
        self.yj_ = rng.normal(m, s, size=(n_i, k))
        lr, reg = float(self.lr_all), float(self.reg_all)
        svdpp_sgd(self.indptr_, self.rated_, ratings,
                  self.mu_, self.bu_, self.bi_, self.pu_, self.qi_, self.yj_,
                  int(self.n_epochs), lr, lr, lr, reg, reg, reg)
        self.scale_ = train.scale
        return self

    def predict(self, X: Ratings) -> np.ndarray:
        from kernels.cpu_svdpp import svdpp_predict

        self._check_fitted()

        def inner(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
            out = np.full(codes.shape, -1, dtype=np.int64)
            known = (codes >= 0) & (codes < table.size)
            out[known] = table[codes[known]]
            return out

        est = svdpp_predict(inner(X.users, self.user_inner_), inner(X.items, self.item_inner_),
                            self.indptr_, self.rated_, self.mu_, self.bu_, self.bi_,
                            self.pu_, self.qi_, self.yj_)
        return np.clip(est, self.scale_.minimum, self.scale_.maximum) if self.clip else est
