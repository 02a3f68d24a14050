"""Error and "accuracy" metrics for predicted ratings.

Seed 000 reports an "accuracy" with no definition, so every plausible reading is
computed side by side (CLAIMS.md, METRICS): RMSE, MAE, exact match after snapping the
prediction to the rating grid, share within ±0.5 and ±1.0, and the mean of
``1 - |pred - true| / true``.
"""

from __future__ import annotations

import numpy as np

from kmrec_gpu.ratings import RatingScale

HALF_STAR = RatingScale(0.5, 5.0, 0.5)


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_pred has {p.size}")
    if y.size == 0:
        raise ValueError("cannot score an empty set of ratings")
    for name, a in (("y_true", y), ("y_pred", p)):
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] is {a[bad[0]]!r}; expected a finite number")
    return y, p


def rmse(y_true, y_pred) -> float:
    y, p = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((p - y) ** 2)))


def mae(y_true, y_pred) -> float:
    y, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - y)))


def exact_match(y_true, y_pred, scale: RatingScale = HALF_STAR) -> float:
    """Share of predictions that, clipped and rounded to the scale's grid, equal the truth."""
    y, p = _pair(y_true, y_pred)
    return float(np.mean(np.isclose(scale.snap(p), y, rtol=0.0, atol=1e-6)))


def within(y_true, y_pred, tol: float) -> float:
    """Share of predictions at most ``tol`` from the truth (inclusive)."""
    y, p = _pair(y_true, y_pred)
    return float(np.mean(np.abs(p - y) <= tol + 1e-9))


def relative_accuracy(y_true, y_pred) -> float:
    """Mean of ``1 - |pred - true| / true`` over rows whose truth is non-zero.

    The likely definition behind seed 000's "81.19% → 99.36%". Rows with a true value of
    0 (seed 000's adjusted target has some) have no defined ratio and are left out; NaN
    when every row is such a row.
    """
    y, p = _pair(y_true, y_pred)
    nz = y != 0
    if not nz.any():
        return float("nan")
    return float(np.mean(1.0 - np.abs(p[nz] - y[nz]) / np.abs(y[nz])))


def rating_metrics(y_true, y_pred, *, scale: RatingScale = HALF_STAR) -> dict[str, float]:
    """Every rating metric, keyed as result rows store them."""
    y, p = _pair(y_true, y_pred)
    return {
        "rmse": rmse(y, p),
        "mae": mae(y, p),
        "exact_match": exact_match(y, p, scale),
        "within_0.5": within(y, p, 0.5),
        "within_1.0": within(y, p, 1.0),
        "relative_accuracy": relative_accuracy(y, p),
        "n": int(y.size),
    }
