"""Bootstrap confidence intervals for any metric of (truth, prediction) pairs.

Percentile intervals from ``scipy.stats.bootstrap`` with paired resampling. With
``groups`` (e.g. the test rows' user codes) whole groups are resampled, which is the
honest interval when one user's ratings are correlated; that path is done here because
scipy resamples rows only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from kmrec_gpu import seeding

Metric = Callable[[np.ndarray, np.ndarray], float]


def bootstrap_ci(metric: Metric, y_true, y_pred, *, n_resamples: int = 1000,
                 confidence: float = 0.95, seed: int = 0,
                 groups: np.ndarray | None = None) -> tuple[float, float, float]:
    """``(point, low, high)``: the metric on all rows and a percentile interval."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_pred has {p.size}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    point = float(metric(y, p))
    rng = seeding.rng(seed, "bootstrap")
    if y.size < 2:
        return point, float("nan"), float("nan")
    if groups is None:
        res = stats.bootstrap(
            (y, p), lambda a, b: metric(a, b), paired=True, vectorized=False,
            n_resamples=n_resamples, confidence_level=confidence, method="percentile",
            # scipy draws (batch, n) indices at once: keep that under ~160 MB
            batch=max(1, min(n_resamples, 20_000_000 // y.size)), random_state=rng,
        )
        return point, float(res.confidence_interval.low), float(res.confidence_interval.high)
    g = np.asarray(groups).ravel()
    if g.shape != y.shape:
        raise ValueError(f"groups has {g.size} values, expected {y.size}")
    _, gid = np.unique(g, return_inverse=True)
    order = np.argsort(gid, kind="stable")
    counts = np.bincount(gid)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    n_g = counts.size
    vals = np.empty(n_resamples)
    for b in range(n_resamples):
        pick = rng.integers(0, n_g, size=n_g)
        rows = order[np.repeat(starts[pick], counts[pick])
                     + _ranges(counts[pick])]
        vals[b] = metric(y[rows], p[rows])
    a = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(vals, [a, 1.0 - a])
    return point, float(lo), float(hi)



def pooled_bootstrap_ci(metric: Metric, parts, *, n_resamples: int = 1000,
                        confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """The metric on the test rows of several splits pooled, with an interval that resamples
    (split, user) groups. ``parts``: one ``(y_true, y_pred, users)`` per split."""
    parts = [tuple(np.asarray(a) for a in part) for part in parts]
    if not parts:
        raise ValueError("need at least one (y_true, y_pred, users) part")
    width = max(int(u.max()) + 1 if u.size else 1 for _, _, u in parts)
    groups = np.concatenate([i * width + u.astype(np.int64) for i, (_, _, u) in enumerate(parts)])
    return bootstrap_ci(metric, np.concatenate([y for y, _, _ in parts]),
                        np.concatenate([p for _, p, _ in parts]), n_resamples=n_resamples,
                        confidence=confidence, seed=seed, groups=groups)

def _ranges(counts: np.ndarray) -> np.ndarray:
    """``concat(arange(c) for c in counts)`` without a Python loop."""
    total = int(counts.sum())
    ends = np.cumsum(counts)
    out = np.arange(total) - np.repeat(ends - counts, counts)
    return out
