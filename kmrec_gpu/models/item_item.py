"""Item-to-item top-k baselines: EASE and item-kNN, one body over the array namespace.

Both score a user's unseen movies as ``x_u · W``, ``x_u`` the user's training row (1 for
each movie they rated, whatever the rating: the implicit-feedback form both papers use)
and ``W`` an items × items weight matrix with a zero diagonal, over the movies that have a
training rating (the catalogue; a movie outside it is never recommended):

- :class:`EASE` (Steck 2019, "Embarrassingly shallow autoencoders"): the closed form
  ``P = (XᵀX + λI)⁻¹``, ``W = I − P·diag(1/diag(P))``; one dense inverse, O(items³).
- :class:`ItemKNN` (Sarwar et al. 2001, with the shrunk cosine of Ferrari Dacrema et al.
  2019): ``W_ij = (XᵀX)_ij / (‖x_i‖‖x_j‖ + shrink)``, each column keeping its ``neighbors``
  largest weights (ties at the cut all kept).

A user without a training rating gets the most rated movies; ties go to the lower item
code. The weights are computed on the
backend's device (NumPy, PyTorch, CuPy); the top-k cut runs on the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmrec_gpu.backends import Backend, check_float_dtype, resolve_backend
from kmrec_gpu.models._recbase import RecommenderMixin, check_k, check_users, top_k
from kmrec_gpu.ratings import Ratings


class _ItemItem(RecommenderMixin):
    backend: Any
    library: str | None
    dtype: str

    def _weights(self, xp: Any, gram: Any, dtype: Any) -> Any:
        raise NotImplementedError

    def fit(self, train: Ratings) -> _ItemItem:
        check_float_dtype(self.dtype)
        self._store_train(train)
        be = resolve_backend(self.backend, self.library)
        counts = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
        self.catalog_ = np.flatnonzero(counts > 0)
        x = self.seen_[:, self.catalog_]
        gram = (x.T @ x).toarray()  # sparse on the host: O(Σ_u n_u²), then dense
        dt = getattr(be.xp, self.dtype)
        w = self._weights(be.xp, be.asarray(gram, dtype=dt), dt)
        self.backend_, self.weights_ = be, w
        self.popularity_ = np.where(counts > 0, counts, -np.inf)
        return self

    def recommend(self, users: np.ndarray, k: int = 10) -> np.ndarray:
        self._check_fitted()
        k, users = check_k(k), check_users(users, self.n_users_)
        be = self.backend_
        rows = self.seen_[users][:, self.catalog_].toarray()
        s = be.to_numpy(be.asarray(rows, dtype=self.weights_.dtype) @ self.weights_)
        scores = np.full((users.size, self.n_items_), -np.inf)
        scores[:, self.catalog_] = np.asarray(s, dtype=np.float64)
        cold = rows.sum(axis=1) == 0
        scores[cold] = self.popularity_  # no training row: nothing to propagate from
        return top_k(scores, users, self.seen_, k)


class EASE(_ItemItem):
    """EASE^R with L2 weight ``l2`` (Steck's λ; 500 in his MovieLens-20M runs)."""

    def __init__(self, *, l2: float = 500.0, backend: str | Backend = "cpu",
                 library: str | None = None, dtype: str = "float64") -> None:
        self.l2 = l2
        self.backend = backend
        self.library = library
        self.dtype = dtype

    def _weights(self, xp: Any, gram: Any, dtype: Any) -> Any:
        if not self.l2 > 0:
            raise ValueError(f"l2 must be > 0, got {self.l2!r}")
        n = gram.shape[0]
        eye = xp.eye(n, dtype=dtype, device=getattr(gram, "device", None))
        p = xp.linalg.inv(gram + self.l2 * eye)
        # column j over P_jj: its diagonal is exactly -1, so adding I zeroes it exactly
        return eye - p / xp.linalg.diagonal(p)[None, :]


class ItemKNN(_ItemItem):
    """Item-kNN over shrunk cosine similarities, ``neighbors`` per item."""

    def __init__(self, *, neighbors: int = 100, shrink: float = 10.0,
                 backend: str | Backend = "cpu", library: str | None = None,
                 dtype: str = "float64") -> None:
        self.neighbors = neighbors
        self.shrink = shrink
        self.backend = backend
        self.library = library
        self.dtype = dtype

    def _weights(self, xp: Any, gram: Any, dtype: Any) -> Any:
        if not (isinstance(self.neighbors, (int, np.integer)) and self.neighbors >= 1):
            raise ValueError(f"neighbors must be an int >= 1, got {self.neighbors!r}")
        if not self.shrink >= 0:
            raise ValueError(f"shrink must be >= 0, got {self.shrink!r}")
        n = gram.shape[0]
        eye = xp.eye(n, dtype=dtype, device=getattr(gram, "device", None))
        norm = xp.sqrt(xp.linalg.diagonal(gram))
        w = gram / (norm[:, None] * norm[None, :] + self.shrink)
        w = w - w * eye
        kk = min(int(self.neighbors), n)
        # each column's kk-th largest weight; everything below it goes
        cut = xp.sort(w, axis=0)[n - kk, :]
        return xp.where(w >= cut[None, :], w, xp.zeros_like(w))
