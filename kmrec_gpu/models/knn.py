"""kNN with baselines (Koren 2010, section 2.2), item- or user-based: the rating baseline of
Surprise's ``KNNBaseline`` and of the Rendle et al. and Ferrari Dacrema et al. studies.

``r̂_ui = b_ui + Σ_{j ∈ N_k(i; u)} s_ij (r_uj − b_uj) / Σ s_ij``: ``b`` is the bias baseline
(:class:`BiasBaseline`, Surprise's ALS baseline with its defaults), ``N_k(i; u)`` the ``k``
movies most similar to ``i`` among those ``u`` rated, only positive similarities counted,
and ``s`` the shrunk baseline Pearson correlation over the users who rated both:

``s_ij = (n_ij − 1) / (n_ij − 1 + shrinkage) · Σ_u e_ui e_uj / sqrt(Σ_u e_ui² · Σ_u e_uj²)``,
``e = r − b``. User-based swaps the roles of users and movies. The similarity matrix is
built on the backend's device from three sparse Gram products (NumPy, PyTorch, CuPy: one
body); the neighbour step runs on the host (``kernels/cpu_knn.py``). Its memory is the
dense similarity matrix: items² (or users²) doubles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from kmrec_gpu.backends import Backend, check_float_dtype, resolve_backend
from kmrec_gpu.estimator import Estimator
from kmrec_gpu.models.baseline import BiasBaseline
from kmrec_gpu.ratings import Ratings


class KNNBaseline(Estimator):
    """kNN with baselines; ``user_based=False`` (default) is item-based, as Koren and the
    Surprise README's "k-NN Baseline" row use it."""

    _fitted_attr = "similarity_"

    def __init__(self, *, k: int = 40, shrinkage: float = 100.0, user_based: bool = False,
                 reg_user: float = 15.0, reg_item: float = 10.0, n_iter: int = 10,
                 backend: str | Backend = "cpu", library: str | None = None,
                 dtype: str = "float64") -> None:
        self.k = k
        self.shrinkage = shrinkage
        self.user_based = user_based
        self.reg_user = reg_user
        self.reg_item = reg_item
        self.n_iter = n_iter
        self.backend = backend
        self.library = library
        self.dtype = dtype

    def _check(self) -> None:
        if not (isinstance(self.k, (int, np.integer)) and self.k >= 1):
            raise ValueError(f"k must be an int >= 1, got {self.k!r}")
        if not self.shrinkage >= 0:
            raise ValueError(f"shrinkage must be >= 0, got {self.shrinkage!r}")
        check_float_dtype(self.dtype)

    def fit(self, train: Ratings) -> KNNBaseline:
        self._check()
        base = BiasBaseline(reg_user=self.reg_user, reg_item=self.reg_item,
                            n_iter=self.n_iter, clip=False).fit(train)
        resid = train.ratings.astype(np.float64) - base.predict(train)
        own, ent = (train.items, train.users) if self.user_based else (train.users, train.items)
        n_own = train.n_items if self.user_based else train.n_users
        n_ent = train.n_users if self.user_based else train.n_items
        present = np.bincount(ent, minlength=n_ent) > 0
        cat = np.cumsum(present) - 1
        cat[~present] = -1
        m = sp.csr_matrix((resid, (own, cat[ent])), shape=(n_own, int(present.sum())))
        m.sort_indices()
        b = m.copy()
        b.data = np.ones_like(b.data)
        sq = m.multiply(m).tocsr()
        be = resolve_backend(self.backend, self.library)
        xp, dt = be.xp, getattr(be.xp, self.dtype)
        num = be.asarray((m.T @ m).toarray(), dtype=dt)
        sums = be.asarray((sq.T @ b).toarray(), dtype=dt)  # [i, j]: Σ e_ui² over users of both
        count = be.asarray((b.T @ b).toarray(), dtype=dt)
        self.similarity_ = be.to_numpy(_similarity(xp, num, sums, count, self.shrinkage))
        self.baseline_, self.catalog_of_ = base, cat
        self.neighbors_ = m  # each owner's rated neighbours and their r − b
        self.scale_, self.backend_ = train.scale, be
        return self

    def predict(self, X: Ratings) -> np.ndarray:
        from kernels.cpu_knn import knn_baseline

        self._check_fitted()
        base = self.baseline_.predict(X)  # unclipped, and checks the vocabularies
        owner, target = (X.items, X.users) if self.user_based else (X.users, X.items)
        m = self.neighbors_
        out = knn_baseline(owner.astype(np.int64), self.catalog_of_[target].astype(np.int64),
                           m.indptr.astype(np.int64), m.indices.astype(np.int64),
                           m.data.astype(np.float64),
                           np.ascontiguousarray(self.similarity_, dtype=np.float64),
                           base.astype(np.float64), int(self.k))
        return np.clip(out, self.scale_.minimum, self.scale_.maximum)


def _similarity(xp: Any, num: Any, sums: Any, count: Any, shrinkage: float) -> Any:
    """The shrunk baseline Pearson correlation from its three Gram matrices."""
    zero, one = xp.zeros_like(num), xp.ones_like(num)
    denom = xp.sqrt(sums * sums.T)
    corr = xp.where(denom > 0, num / xp.where(denom > 0, denom, one), zero)
    d = count - 1 + shrinkage
    return corr * xp.where(d > 0, (count - 1) / xp.where(d > 0, d, one), zero)
