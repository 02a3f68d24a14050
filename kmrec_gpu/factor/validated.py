"""Seed 001's iterative SVD and soft-impute with the iteration count picked on data.

The iterative SVD's held-out RMSE is not monotone in the iterations: on ml-latest-small it
falls for three or four refits, then rises steadily (the rank-16 reconstruction overfits the
observed cells). So "the" iterative-SVD figure depends on when the loop stops, and how the
stop is chosen decides whether the figure is held out:

- :class:`ValidatedIterativeSVD` carves a validation split out of the training ratings
  (:func:`kmrec_gpu.splits.validation_split`, seeded by ``random_state``), runs the loop on
  the rest for ``max_iter`` iterations, scores every iteration on the validation ratings,
  takes the argmin, and refits on all of ``train`` for that many iterations. It only ever
  receives ``train``: the test ratings cannot reach it.
- :class:`ValidatedSoftImpute` is the same with the singular-value shrinkage also chosen
  on the validation split, from :data:`SOFT_GRID`.
- :class:`IterativeSVDTestSelected` is the optimistic variant, as such figures are often
  produced: it is a ``split -> test predictions`` pipeline that runs the loop on
  ``split.train`` and keeps the iteration with the lowest RMSE on ``split.test``. It reads
  the test ratings by construction (``leaky_`` says so); it exists to show the
  as-published figure beside the held-out one.

The loop's trajectory does not depend on ``max_iter`` (``tol`` is 0 here, so no run stops
early), so refitting for ``n`` iterations gives exactly the ``n``-th stage of a longer fit:
what the former seed-001 script took with ``keep_history`` and ``staged_predict``, at the
cost of ``n`` iterations instead of ``max_iter`` and without keeping the history.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmrec_gpu.backends import Backend
from kmrec_gpu.estimator import Estimator
from kmrec_gpu.factor.models import IterativeSVDModel
from kmrec_gpu.metrics import rmse
from kmrec_gpu.ratings import Ratings
from kmrec_gpu.splits import TTSplit, validation_split

# soft-impute's shrinkage candidates, on the min-max (0-1) scale (as the former seed-001 script)
SOFT_GRID = (1.5, 3.0)
TEST_SELECTED = "iteration count picked on the test set"

_LOOP_PARAMS = ("n_components", "solver", "minmax", "max_iter", "backend", "library", "dtype",
                "random_state", "svd_tol", "oversample", "kernels")


def staged_rmse(model: IterativeSVDModel, X: Ratings) -> list[float]:
    """RMSE on ``X`` after each iteration of a model fitted with ``keep_history``."""
    return [rmse(X.ratings, p) for p in model.staged_predict(X)]


class _LoopParams(Estimator):
    """Parameters shared with :class:`IterativeSVDModel`, on the estimator base."""

    _fitted_attr = "model_"

    def _loop(self, **over: Any) -> IterativeSVDModel:
        """The underlying model: ``tol=0`` (every stage is run), ``max_iter`` unless
        overridden."""
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        kw = {k: getattr(self, k) for k in _LOOP_PARAMS}
        kw.update(tol=0.0, **over)
        return IterativeSVDModel(**kw)

    def _record(self, model: IterativeSVDModel) -> None:
        """Facts of the final fit that the harness and CPU-vs-GPU comparisons read."""
        self.model_ = model
        self.singular_values_ = model.singular_values_
        self.power_iters_ = model.power_iters_
        self.user_factors_, self.item_factors_ = model.user_factors_, model.item_factors_
        if hasattr(model, "sddmm_path_"):
            self.sddmm_path_ = model.sddmm_path_


class ValidatedIterativeSVD(_LoopParams):
    """Iterative SVD with its iteration count (and shrinkage) chosen on a validation split
    carved from the training ratings, then refitted on all of them.

    Parameters are :class:`IterativeSVDModel`'s (``tol`` is fixed at 0: every stage up to
    ``max_iter`` is scored) plus ``shrinkage_grid`` (the candidate shrinkages; ``(0.0,)``:
    plain hard-impute, the seed's iterative SVD) and ``valid_fraction`` (the share of
    ``train`` held out for validation, seeded by ``random_state``).

    Fitted: ``n_iter_`` (chosen iteration count), ``shrinkage_``, ``validation_curve_``
    (validation RMSE after each iteration, at the chosen shrinkage),
    ``validation_curves_`` (``{shrinkage: curve}``), ``validation_rmse_``, ``n_valid_``,
    ``model_`` (the :class:`IterativeSVDModel` refitted on ``train`` for ``n_iter_``
    iterations), ``singular_values_``.
    """


    def __init__(self, n_components: int = 16, *, solver: str = "scalable",
                 minmax: bool = False, max_iter: int = 25,
                 shrinkage_grid: tuple[float, ...] = (0.0,), valid_fraction: float = 0.1,
                 backend: str | Backend = "cpu", library: str | None = None,
                 dtype: str = "float64", random_state: int = 0, svd_tol: float = 1e-6,
                 oversample: int | None = None, kernels: str = "auto") -> None:
        self.n_components = n_components
        self.solver = solver
        self.minmax = minmax
        self.max_iter = max_iter
        self.shrinkage_grid = shrinkage_grid
        self.valid_fraction = valid_fraction
        self.backend = backend
        self.library = library
        self.dtype = dtype
        self.random_state = random_state
        self.svd_tol = svd_tol
        self.oversample = oversample
        self.kernels = kernels

    def fit(self, train: Ratings) -> ValidatedIterativeSVD:
        grid = tuple(float(x) for x in self.shrinkage_grid)
        if not grid or min(grid) < 0:
            raise ValueError(f"shrinkage_grid must be non-empty and >= 0, got {grid}")
        inner = validation_split(train, self.valid_fraction, seed=self.random_state)
        if len(inner.test) == 0:
            raise ValueError(f"the validation split of {len(train)} training ratings at "
                             f"valid_fraction={self.valid_fraction} is empty")
        curves: dict[float, list[float]] = {}
        best: tuple[float, float, int] | None = None  # (rmse, shrinkage, stage index)
        for lam in grid:
            model = self._loop(shrinkage=lam, keep_history=True).fit(inner.train)
            curves[lam] = staged_rmse(model, inner.test)
            j = int(np.argmin(curves[lam]))
            if best is None or curves[lam][j] < best[0]:  # first of equals, as the script
                best = (curves[lam][j], lam, j)
            del model
        score, lam, j = best
        self._record(self._loop(shrinkage=lam, max_iter=j + 1).fit(train))
        self.n_iter_, self.shrinkage_ = j + 1, lam
        self.validation_curves_ = curves
        self.validation_curve_ = curves[lam]
        self.validation_rmse_ = float(score)
        self.n_valid_ = len(inner.test)
        return self

    def predict(self, X: Ratings) -> np.ndarray:
        self._check_fitted()
        return self.model_.predict(X)


class ValidatedSoftImpute(ValidatedIterativeSVD):
    """Soft-impute (Mazumder, Hastie & Tibshirani 2010) with its shrinkage, from
    :data:`SOFT_GRID`, and its iteration count chosen on a validation split of ``train``:
    the former seed-001 script's ``soft-impute-16``."""

    def __init__(self, n_components: int = 16, *, solver: str = "scalable",
                 minmax: bool = False, max_iter: int = 25,
                 shrinkage_grid: tuple[float, ...] = SOFT_GRID, valid_fraction: float = 0.1,
                 backend: str | Backend = "cpu", library: str | None = None,
                 dtype: str = "float64", random_state: int = 0, svd_tol: float = 1e-6,
                 oversample: int | None = None, kernels: str = "auto") -> None:
        super().__init__(n_components, solver=solver, minmax=minmax, max_iter=max_iter,
                         shrinkage_grid=shrinkage_grid, valid_fraction=valid_fraction,
                         backend=backend, library=library, dtype=dtype,
                         random_state=random_state, svd_tol=svd_tol, oversample=oversample,
                         kernels=kernels)


class IterativeSVDTestSelected(_LoopParams):
    """The as-published, optimistic iterative SVD: ``split -> test predictions`` with the
    iteration count that is best **on the test set** (it reads the test ratings).

    Runs ``max_iter`` iterations on ``split.train`` (``tol`` 0), scores each on
    ``split.test`` and returns the predictions of the best. Fitted: ``n_iter_``,
    ``test_curve_`` (test RMSE after each iteration), ``leaky_`` (what it reads that it
    should not), ``user_factors_``/``item_factors_`` (of the chosen iteration), ``model_``
    and ``singular_values_`` (of the last SVD run).
    """


    def __init__(self, n_components: int = 16, *, solver: str = "scalable",
                 minmax: bool = False, max_iter: int = 25, shrinkage: float = 0.0,
                 backend: str | Backend = "cpu", library: str | None = None,
                 dtype: str = "float64", random_state: int = 0, svd_tol: float = 1e-6,
                 oversample: int | None = None, kernels: str = "auto") -> None:
        self.n_components = n_components
        self.solver = solver
        self.minmax = minmax
        self.max_iter = max_iter
        self.shrinkage = shrinkage
        self.backend = backend
        self.library = library
        self.dtype = dtype
        self.random_state = random_state
        self.svd_tol = svd_tol
        self.oversample = oversample
        self.kernels = kernels

    def fit_predict(self, split: TTSplit) -> np.ndarray:
        model = self._loop(shrinkage=float(self.shrinkage), keep_history=True).fit(split.train)
        test = split.test
        curve: list[float] = []
        best: np.ndarray | None = None
        for p in model.staged_predict(test):  # one stage's predictions at a time
            curve.append(rmse(test.ratings, p))
            if best is None or curve[-1] < min(curve[:-1]):
                best = p
        j = int(np.argmin(curve))
        chosen = model.history_[j]
        model.history_ = []  # the stages are spent; do not keep max_iter factor pairs
        self._record(model)
        self.user_factors_, self.item_factors_ = chosen  # the returned stage's factors
        self.n_iter_ = j + 1
        self.test_curve_ = curve
        self.leaky_ = TEST_SELECTED
        return best

    __call__ = fit_predict
