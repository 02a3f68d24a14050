"""Hyper-parameters of :class:`BiasedMF` chosen on a validation split of the training set.

:class:`TunedBiasedMF` is itself an estimator (``fit(train)``, ``predict(X)``), so the whole
pipeline — carve a validation split out of ``train``, try every grid point with early
stopping on the validation RMSE, refit the best on all of ``train`` for the best epoch
count — goes through the leakage check like any model. The test set is never an argument
of anything here: it cannot be used for tuning.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.backends import Backend
from kmrec_gpu.models.mf import BiasedMF
from kmrec_gpu.ratings import Ratings
from kmrec_gpu.splits import validation_split

# The range comes from exploratory runs on validation splits of ml-100k and ml-latest-small
# training sets (per-rating factor penalties above ~0.15 shrink the factors towards zero;
# below ~0.08 ALS overfits in 2-3 epochs).
DEFAULT_GRID: dict[str, Sequence[Any]] = {
    "n_factors": (50, 100),
    "reg": (0.08, 0.1, 0.12),
    "reg_bias": (2.0,),
}


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of a ``{name: values}`` grid, in a fixed order."""
    keys = sorted(grid)
    for k in keys:
        if isinstance(grid[k], (str, bytes)) or len(grid[k]) == 0:
            raise ValueError(f"grid[{k!r}] must be a non-empty sequence of values")
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


class TunedBiasedMF:
    """:class:`BiasedMF` with its grid searched on a validation split carved from ``train``.

    Parameters
    ----------
    param_grid : ``{parameter: values}`` searched exhaustively (default :data:`DEFAULT_GRID`).
    valid_fraction : share of ``train`` held out for validation.
    max_epochs : epoch cap for each grid point; the epoch count is chosen by early stopping.
    patience : epochs without validation improvement before a grid point stops.
    random_state : run seed; the validation split and every model derive from it.
    **base_params : fixed :class:`BiasedMF` parameters (backend, dtype, reg exponents...).

    Fitted attributes: ``cv_results_`` (one dict per grid point: params, ``valid_rmse``,
    ``best_epoch``, ``epochs_run``, ``fit_s``, ``valid_curve``), ``best_params_`` (including
    ``n_epochs``), ``best_score_`` (validation RMSE), ``best_estimator_`` (refitted on all of
    ``train``), ``n_valid_``, ``tune_s_``, ``refit_s_``.
    """

    def __init__(self, *, param_grid: Mapping[str, Sequence[Any]] | None = None,
                 valid_fraction: float = 0.1, max_epochs: int = 40, patience: int = 3,
                 random_state: int = 0, **base_params: Any) -> None:
        self.param_grid = dict(DEFAULT_GRID if param_grid is None else param_grid)
        self.valid_fraction = valid_fraction
        self.max_epochs = max_epochs
        self.patience = patience
        self.random_state = random_state
        self.base_params = base_params

    def get_params(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if not k.endswith("_")}
        out["param_grid"] = {k: list(v) for k, v in self.param_grid.items()}
        # a Backend object as its name, as a result row shows one
        out["base_params"] = {k: v.label if isinstance(v, Backend) else v
                              for k, v in self.base_params.items()}
        return out

    def _model(self, **params: Any) -> BiasedMF:
        clash = {"n_epochs", "patience", "random_state"} & set(self.base_params)
        if clash:
            raise ValueError(f"set {sorted(clash)} on TunedBiasedMF, not in base_params")
        return BiasedMF(**{**self.base_params, "random_state": self.random_state,
                           "patience": self.patience, **params})

    def fit(self, train: Ratings,
            callback: Callable[[dict[str, Any]], None] | None = None) -> TunedBiasedMF:
        """Search the grid on a validation split of ``train``, then refit on all of it.

        ``callback`` (e.g. a progress bar) receives each grid point's result as it finishes.
        """
        points = grid_points(self.param_grid)
        # a rank above the smaller side of the matrix is refused by BiasedMF: on a small
        # training set the grid keeps the points that fit, or the largest rank that does
        limit = min(train.n_users, train.n_items)
        if any(p.get("n_factors", 0) > limit for p in points):
            fits = [p for p in points if p.get("n_factors", 0) <= limit]
            points = fits or [{**p, "n_factors": limit} for p in points
                              if p["n_factors"] == min(q["n_factors"] for q in points)]
        bad = {"n_epochs", "patience", "random_state"} & set(self.param_grid)
        if bad:
            raise ValueError(f"{sorted(bad)} cannot be searched (epochs come from early "
                             "stopping)")
        t0 = time.perf_counter()
        vs = validation_split(train, self.valid_fraction,
                              seed=seeding.int_seed(self.random_state, "tune", "valid"))
        results = []
        for params in points:
            t = time.perf_counter()
            m = self._model(**params, n_epochs=self.max_epochs).fit(vs.train, vs.test)
            row = {"params": dict(params), "valid_rmse": float(min(m.valid_rmse_)),
                   "best_epoch": int(m.best_epoch_), "epochs_run": int(m.n_epochs_),
                   "fit_s": time.perf_counter() - t,
                   "valid_curve": [round(x, 6) for x in m.valid_rmse_]}
            results.append(row)
            if callback is not None:
                callback(row)
        best = min(range(len(results)), key=lambda j: (results[j]["valid_rmse"], j))
        self.cv_results_ = results
        self.best_params_ = {**results[best]["params"], "n_epochs": results[best]["best_epoch"]}
        self.best_score_ = results[best]["valid_rmse"]
        self.n_valid_ = len(vs.test)
        self.tune_s_ = time.perf_counter() - t0
        t = time.perf_counter()
        self.best_estimator_ = self._model(**self.best_params_).fit(train)
        self.refit_s_ = time.perf_counter() - t
        return self

    def predict(self, X: Ratings) -> np.ndarray:
        if not hasattr(self, "best_estimator_"):
            raise RuntimeError("TunedBiasedMF is not fitted; call fit(train) first")
        return self.best_estimator_.predict(X)
