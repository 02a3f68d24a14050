"""Global-mean and user/item bias baselines: the floor every recommender must beat.

The bias model is ``r_ui = mu + b_u + b_i``, fitted by alternating ridge updates
(Koren 2010, as Surprise's ``BaselineOnly(method="als")``): each half-step is a closed-form
average over one side, so an epoch is two ``bincount`` passes over the ratings.
"""

from __future__ import annotations

import numpy as np

from kmrec_gpu.estimator import Estimator
from kmrec_gpu.ratings import Ratings


class _Fitted(Estimator):
    _fitted_attr = "global_mean_"


class GlobalMean(_Fitted):
    """Predicts the training mean for every pair."""

    def __init__(self, *, clip: bool = True) -> None:
        self.clip = clip

    def fit(self, train: Ratings) -> GlobalMean:
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        self.global_mean_ = float(np.mean(train.ratings, dtype=np.float64))
        self.scale_ = train.scale
        return self

    def predict(self, X: Ratings) -> np.ndarray:
        self._check_fitted()
        return np.full(len(X), self.global_mean_, dtype=np.float64)


class BiasBaseline(_Fitted):
    """``mu + b_u + b_i`` with ridge penalties; unknown users/items get a zero bias."""

    def __init__(self, *, reg_user: float = 15.0, reg_item: float = 10.0, n_iter: int = 10,
                 clip: bool = True) -> None:
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_iter = n_iter
        self.clip = clip

    def fit(self, train: Ratings) -> BiasBaseline:
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        from kernels.cpu_bias import bias_half_step

        u, i, r = train.users, train.items, train.ratings
        mu = float(r.astype(np.float64).mean())  # the pairwise sum over float64, as before
        den_u = np.bincount(u, minlength=train.n_users) + float(self.reg_user)
        den_i = np.bincount(i, minlength=train.n_items) + float(self.reg_item)
        b_u = np.zeros(train.n_users)
        b_i = np.zeros(train.n_items)
        for _ in range(self.n_iter):
            b_i = bias_half_step(i, u, r, mu, b_u, train.n_items, den_i)
            b_u = bias_half_step(u, i, r, mu, b_i, train.n_users, den_u)
        self.global_mean_, self.user_bias_, self.item_bias_ = mu, b_u, b_i
        self.scale_ = train.scale
        self.n_iter_ = self.n_iter
        return self

    def predict(self, X: Ratings) -> np.ndarray:
        self._check_fitted()
        if X.n_users != self.user_bias_.shape[0] or X.n_items != self.item_bias_.shape[0]:
            raise ValueError("X must share the training set's vocabularies (use a TTSplit)")
        p = self.global_mean_ + self.user_bias_[X.users] + self.item_bias_[X.items]
        if self.clip:
            p = np.clip(p, self.scale_.minimum, self.scale_.maximum)
        return p
