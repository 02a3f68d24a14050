"""Seed 001's rating predictors: truncated SVD, NMF and iterative SVD of the filled matrix.

Each estimator fits on a training :class:`Ratings` only, and has three solvers:

- ``"dense"``: the seed's procedure on the materialised users × movies matrix (the
  reference; O(users·movies) memory, so ml-latest-small / ml-100k scale);
- ``"scalable"``: the same factorisation through products with the sparse-plus-low-rank
  form (:mod:`kmrec_gpu.factor.operator`), O(nnz + (users + movies)·r) memory, on any
  backend. Its SVDs (truncated SVD, NMF's NNDSVD start, each iterative-SVD step) are
  thick-restarted Golub–Kahan–Lanczos (:func:`~kmrec_gpu.factor.lanczos.lanczos_svd`),
  stopped when every Ritz residual ``‖Zᵀu_i − s_i·v_i‖/s_i`` is within ``tol``/``svd_tol``;
  setting ``oversample`` (truncated and iterative SVD) asks for block subspace iteration
  (:func:`~kmrec_gpu.factor.linalg.subspace_svd`) with that many extra columns instead,
  the solver before Lanczos (same test and accuracy; on MovieLens ~10× Lanczos's time
  cold, ~2× warm-started). ``n_iter_`` (truncated SVD) and ``power_iters_`` (iterative
  SVD) count Lanczos steps (one single-column product each way), or block iterations
  where ``oversample`` is set;
- ``"sklearn"``: scikit-learn's ``TruncatedSVD`` / ``NMF`` with their defaults on the
  dense matrix (the peer a seed author would have called; not for iterative SVD).

A prediction is the reconstruction at the pair's cell on the rating scale, clipped to the
rating range; pairs outside the training pivot get the fill value (see
:mod:`kmrec_gpu.factor.filled`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.backends import Backend, check_float_dtype, resolve_backend
from kmrec_gpu.estimator import Estimator
from kmrec_gpu.factor.filled import FilledMatrix, fill_matrix
from kmrec_gpu.factor.impute import dense_impute, scalable_impute
from kmrec_gpu.factor.lanczos import scalable_svd
from kmrec_gpu.factor.linalg import exact_svd, sddmm_path
from kmrec_gpu.factor.nmf import hals, nndsvda, random_init
from kmrec_gpu.factor.operator import DenseOperator, SparsePlusLowRank
from kmrec_gpu.ratings import Ratings

SOLVERS = ("dense", "scalable", "sklearn")


class _FactorModel(Estimator):
    """Shared plumbing: the fill, the backend, prediction from factors (parameters, clone
    and the not-fitted error are the estimator base's)."""

    _fitted_attr = "user_factors_"
    _solvers: tuple[str, ...] = SOLVERS

    def _prepare(self, train: Ratings) -> tuple[FilledMatrix, Backend, Any]:
        if self.solver not in self._solvers:
            raise ValueError(f"solver must be one of {self._solvers}, got {self.solver!r}")
        check_float_dtype(self.dtype)
        backend = resolve_backend(self.backend, self.library)
        filled = fill_matrix(train, minmax=self.minmax, dtype=np.dtype(self.dtype))
        rank = self.n_components
        if not 1 <= rank <= min(filled.shape):
            raise ValueError(f"n_components={rank} must be in [1, {min(filled.shape)}] "
                             f"for a {filled.shape[0]}x{filled.shape[1]} training pivot")
        self.filled_, self.backend_, self.scale_ = filled, backend, train.scale
        return filled, backend, getattr(backend.xp, self.dtype)

    def _structured(self, filled: FilledMatrix, backend: Backend, dtype: Any) -> SparsePlusLowRank:
        xp = backend.xp
        sparse = backend.sparse.from_scipy(filled.residual())
        means = backend.asarray(filled.user_means[:, None], dtype=dtype)
        ones = xp.ones((filled.shape[1], 1), dtype=dtype, device=backend.device)
        return SparsePlusLowRank(backend, sparse, means, ones)

    def _dense(self, filled: FilledMatrix, backend: Backend, dtype: Any) -> DenseOperator:
        return DenseOperator(backend, backend.asarray(filled.dense(), dtype=dtype))

    def _set_factors(self, left: Any, right: Any) -> None:
        to_np = self.backend_.to_numpy
        self.user_factors_ = np.asarray(to_np(left), dtype=np.float64).copy()
        self.item_factors_ = np.asarray(to_np(right), dtype=np.float64).copy()

    def _predict_with(self, X: Ratings, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        rows, cols = self.filled_.locate(X)
        out = self.filled_.fallback(rows)
        inside = (rows >= 0) & (cols >= 0)
        out[inside] = np.einsum("ij,ij->i", left[rows[inside]], right[cols[inside]])
        return np.clip(self.filled_.to_rating(out), self.scale_.minimum, self.scale_.maximum)

    def predict(self, X: Ratings) -> np.ndarray:
        self._check_fitted()
        return self._predict_with(X, self.user_factors_, self.item_factors_)


class TruncatedSVDModel(_FactorModel):
    """Rank-``n_components`` SVD of the mean-filled matrix (seed 001: 16 components)."""


    def __init__(self, n_components: int = 16, *, solver: str = "scalable",
                 minmax: bool = False, backend: str | Backend = "cpu",
                 library: str | None = None, dtype: str = "float64", random_state: int = 0,
                 tol: float = 1e-6, oversample: int | None = None) -> None:
        self.n_components = n_components
        self.solver = solver
        self.minmax = minmax
        self.backend = backend
        self.library = library
        self.dtype = dtype
        self.random_state = random_state
        self.tol = tol
        self.oversample = oversample

    def fit(self, train: Ratings) -> TruncatedSVDModel:
        filled, backend, dtype = self._prepare(train)
        r = self.n_components
        if self.solver == "sklearn":
            from sklearn.decomposition import TruncatedSVD

            svd = TruncatedSVD(r, random_state=seeding.int_seed(self.random_state, "tsvd"))
            left = svd.fit_transform(filled.dense())
            self.singular_values_ = svd.singular_values_.copy()
            self.n_iter_ = svd.n_iter
            self._set_factors(left, svd.components_.T)
            return self
        if self.solver == "dense":
            res = exact_svd(backend, self._dense(filled, backend, dtype).array, r)
        else:
            res = scalable_svd(self._structured(filled, backend, dtype), r, backend=backend,
                               dtype=dtype, seed=self.random_state, tol=self.tol,
                               oversample=self.oversample)
        xp = backend.xp
        self.singular_values_ = backend.to_numpy(res.s).astype(np.float64)
        self.n_iter_, self.converged_ = res.n_iter, res.converged
        self._set_factors(res.u * res.s, xp.matrix_transpose(res.vt))
        return self


class NMFModel(_FactorModel):
    """Rank-``n_components`` NMF of the mean-filled matrix by HALS (seed 001: 15)."""


    def __init__(self, n_components: int = 15, *, solver: str = "scalable",
                 minmax: bool = False, init: str = "nndsvda", max_iter: int = 200,
                 tol: float = 1e-4, backend: str | Backend = "cpu",
                 library: str | None = None, dtype: str = "float64", random_state: int = 0,
                 svd_tol: float = 1e-6) -> None:
        self.n_components = n_components
        self.solver = solver
        self.minmax = minmax
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.backend = backend
        self.library = library
        self.dtype = dtype
        self.random_state = random_state
        self.svd_tol = svd_tol

    def fit(self, train: Ratings) -> NMFModel:
        if self.init not in ("nndsvda", "random"):
            raise ValueError(f"init must be 'nndsvda' or 'random', got {self.init!r}")
        filled, backend, dtype = self._prepare(train)
        r = self.n_components
        if float(filled.observed.min()) < 0:
            raise ValueError("NMF needs non-negative ratings; the training pivot has negatives")
        if self.solver == "sklearn":
            from sklearn.decomposition import NMF

            nmf = NMF(r, init=self.init, max_iter=self.max_iter, tol=self.tol,
                      random_state=seeding.int_seed(self.random_state, "nmf"))
            w = nmf.fit_transform(filled.dense())
            self.n_iter_ = int(nmf.n_iter_)
            self._set_factors(w, nmf.components_.T)
            return self
        op = (self._dense(filled, backend, dtype) if self.solver == "dense"
              else self._structured(filled, backend, dtype))
        mean = filled.mean()
        if self.init == "random":
            w0, h0 = random_init(backend, filled.shape, r, mean, dtype=dtype,
                                 seed=self.random_state)
        else:
            svd = (exact_svd(backend, op.array, r) if self.solver == "dense" else
                   scalable_svd(op, r, backend=backend, dtype=dtype, seed=self.random_state,
                                tol=self.svd_tol))
            w0, h0 = nndsvda(backend, svd.u, svd.s, svd.vt, mean)
        w, h, self.n_iter_ = hals(op, w0, h0, backend=backend, max_iter=self.max_iter,
                                  tol=self.tol)
        self._set_factors(w, backend.xp.matrix_transpose(h))
        return self


class IterativeSVDModel(_FactorModel):
    """Seed 001's iterative SVD (``shrinkage=0``: hard-impute) or soft-impute (``> 0``).

    ``max_iter`` bounds the SVDs; the loop also stops when the filled matrix changes by
    less than ``tol`` (relative Frobenius norm). ``keep_history=True`` keeps each
    iteration's factors so :meth:`staged_predict` can score any iteration count after
    the fact — how the iteration count is chosen on a validation split, and how the
    (optimistic) best-on-test figure is shown for comparison. ``kernels`` picks the
    scalable solver's sampled products (``"auto"``: the Triton kernel on CUDA; ``"off"``:
    the composition); ``sddmm_path_`` says which ran.
    """

    _solvers = ("dense", "scalable")

    def __init__(self, n_components: int = 16, *, solver: str = "scalable",
                 minmax: bool = False, max_iter: int = 100, tol: float = 1e-5,
                 shrinkage: float = 0.0, keep_history: bool = False,
                 backend: str | Backend = "cpu", library: str | None = None,
                 dtype: str = "float64", random_state: int = 0, svd_tol: float = 1e-6,
                 oversample: int | None = None, kernels: str = "auto") -> None:
        self.n_components = n_components
        self.solver = solver
        self.minmax = minmax
        self.max_iter = max_iter
        self.tol = tol
        self.shrinkage = shrinkage
        self.keep_history = keep_history
        self.backend = backend
        self.library = library
        self.dtype = dtype
        self.random_state = random_state
        self.svd_tol = svd_tol
        self.oversample = oversample
        self.kernels = kernels

    def fit(self, train: Ratings, *, callback=None) -> IterativeSVDModel:
        """``callback(iteration, change)`` is called after each SVD (progress display)."""
        if self.shrinkage < 0:
            raise ValueError(f"shrinkage must be >= 0, got {self.shrinkage}")
        filled, backend, dtype = self._prepare(train)
        common = dict(max_iter=self.max_iter, tol=self.tol, shrinkage=self.shrinkage,
                      keep_history=self.keep_history, callback=callback)
        if self.solver == "dense":
            res = dense_impute(filled, self.n_components, **common)
        else:
            self.sddmm_path_, _ = sddmm_path(backend, self.kernels)
            res = scalable_impute(filled, self.n_components, backend=backend, dtype=dtype,
                                  seed=self.random_state, svd_tol=self.svd_tol,
                                  oversample=self.oversample, sddmm=self.sddmm_path_, **common)
        self.n_iter_, self.changes_ = res.n_iter, list(res.changes)
        self.power_iters_ = list(res.power_iters)
        self.singular_values_ = np.asarray(res.singular_values, dtype=np.float64)
        self.history_ = res.history
        self._set_factors(res.left, res.right)
        return self

    def staged_predict(self, X: Ratings) -> Iterator[np.ndarray]:
        """Predictions after iteration 1, 2, …, ``n_iter_`` (needs ``keep_history``)."""
        self._check_fitted()
        if not self.history_:
            raise RuntimeError("staged_predict needs keep_history=True at fit time")
        for left, right in self.history_:
            yield self._predict_with(X, left, right)
