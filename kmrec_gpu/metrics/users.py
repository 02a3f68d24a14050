"""Per-user sufficient statistics of a held-out evaluation, and the user bootstrap.

Every held-out figure the claims use is a ratio of sums over test rows (RMSE is
``sqrt(sum e^2 / n)``, MAE ``sum |e| / n``, relative accuracy ``sum (1 - |e|/y) / n``) or a
mean over scored users (nDCG@k and the other list metrics). A row keeps, per test user,
the numerators and denominators; a later step can then pool the test rows of several
seeds' splits and resample **users** — the same users appear in every random split, so
the user (with all their held-out rows across all seeds) is the unit that is independent.

One procedure everywhere: :func:`user_bootstrap` for one model's interval and
:func:`paired_difference` for two models on the same splits, with the same resampled
users on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from kmrec_gpu import seeding

# metric -> (numerator key, denominator key, transform of the ratio)
_SQRT: Callable[[np.ndarray], np.ndarray] = np.sqrt
_IDENTITY: Callable[[np.ndarray], np.ndarray] = np.asarray
RATING_STATS = {
    "rmse": ("sse", "n", _SQRT),
    "mae": ("sae", "n", _IDENTITY),
    "relative_accuracy": ("rel", "n_rel", _IDENTITY),
}
RANKING_NAMES = ("precision", "recall", "ndcg", "map", "hit_rate")
# a row keeps per-user statistics up to this many test users: ~60 bytes of JSON each, so a
# 10M-rating synthetic set's 69k made 4 MB rows; ml-1m (6,040) and every set a claim is
# measured on stay well under it
MAX_USERS = 10_000


def _round(a: np.ndarray) -> list:
    # 12 significant digits: a pooled RMSE over 10^5 rows keeps ~1e-10 relative precision
    return [float(f"{v:.12g}") for v in np.asarray(a, dtype=np.float64)]


def rating_stats(users: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                 ids: np.ndarray | None = None) -> dict[str, list]:
    """Per test user: rows ``n``, ``sse``, ``sae``, and ``rel``/``n_rel`` (the relative
    accuracy terms over rows with a non-zero truth). ``ids`` maps user codes to raw ids."""
    u = np.asarray(users)
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if not (u.shape == y.shape == p.shape):
        raise ValueError(f"users {u.shape}, y_true {y.shape}, y_pred {p.shape} must align")
    codes, inv = np.unique(u, return_inverse=True)
    e = p - y
    nz = y != 0
    rel = np.where(nz, 1.0 - np.abs(e) / np.where(nz, np.abs(y), 1.0), 0.0)

    def total(w: np.ndarray) -> np.ndarray:
        return np.bincount(inv, weights=w, minlength=codes.size)

    return {"users": _ids(codes, ids), "n": total(np.ones_like(y)).astype(int).tolist(),
            "sse": _round(total(e * e)), "sae": _round(total(np.abs(e))),
            "rel": _round(total(rel)), "n_rel": total(nz.astype(float)).astype(int).tolist()}


def ranking_stats(per_user: Mapping[str, np.ndarray], users: np.ndarray, k: int,
                  ids: np.ndarray | None = None) -> dict[str, list]:
    """Per scored user: each list metric at ``k`` (``ndcg@10``, ...) and ``n`` = 1."""
    out: dict[str, list] = {"users": _ids(np.asarray(users), ids),
                            "n": [1] * int(np.asarray(users).size)}
    for name, v in per_user.items():
        out[f"{name}@{k}"] = _round(v)
    return out


def _ids(codes: np.ndarray, ids: np.ndarray | None) -> list:
    raw = codes if ids is None else np.asarray(ids)[codes]
    return [v.item() if hasattr(v, "item") else v for v in raw]


def metric_terms(metric: str) -> tuple[str, str, Callable[[np.ndarray], np.ndarray]]:
    """(numerator key, denominator key, transform) of a metric the bootstrap supports."""
    if metric in RATING_STATS:
        return RATING_STATS[metric]
    name = metric.split("@")[0]
    if name in RANKING_NAMES and "@" in metric:
        return metric, "n", _IDENTITY
    raise ValueError(f"no per-user statistics for metric {metric!r}; supported: "
                     f"{sorted(RATING_STATS)} and {list(RANKING_NAMES)} at k (e.g. ndcg@10)")


def _table(parts: Sequence[Mapping[str, list]], metric: str, users: list
           ) -> tuple[np.ndarray, np.ndarray]:
    """Per (seed, user) numerators and denominators, users in the order of ``users``."""
    num_key, den_key, _ = metric_terms(metric)
    index = {u: j for j, u in enumerate(users)}
    num = np.zeros((len(parts), len(users)))
    den = np.zeros((len(parts), len(users)))
    for s, part in enumerate(parts):
        for key in (num_key, den_key, "users"):
            if key not in part:
                raise ValueError(f"per-user statistics of part {s} lack {key!r} "
                                 f"(needed for {metric})")
        cols = [index[u] for u in part["users"]]
        num[s, cols] = np.asarray(part[num_key], dtype=np.float64)
        den[s, cols] = np.asarray(part[den_key], dtype=np.float64)
    return num, den


def _users(*groups: Sequence[Mapping[str, list]]) -> list:
    seen: dict = {}
    for parts in groups:
        for part in parts:
            for u in part["users"]:
                seen.setdefault(u, None)
    return list(seen)


def _resampled(f, num: Sequence[np.ndarray], den: Sequence[np.ndarray], n_resamples: int,
               seed: int, what: str) -> np.ndarray:
    """``f(w @ num / w @ den)`` for each numerator/denominator pair and each resample, with
    ``w`` how often each user is drawn (one draw of users per resample, shared by the
    pairs: that is what makes a difference paired). Shape ``(len(num), n_resamples)``."""
    rng = seeding.rng(seed, "user-bootstrap", what)
    n_users = num[0].shape[0]
    out = np.empty((len(num), n_resamples))
    for b in range(n_resamples):
        w = np.bincount(rng.integers(0, n_users, size=n_users), minlength=n_users)
        for j, (a, d) in enumerate(zip(num, den)):
            out[j, b] = _ratio(f, w @ a, w @ d)
    return out


@dataclass(frozen=True)
class Interval:
    """A pooled figure, its percentile interval, and the per-seed values beside it."""

    value: float
    ci_low: float
    ci_high: float
    per_seed: tuple[float, ...]
    n_users: int
    n_resamples: int
    confidence: float

    def as_dict(self) -> dict:
        ps = np.asarray(self.per_seed)
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "per_seed": list(self.per_seed),
                "per_seed_sd": float(ps.std(ddof=1)) if ps.size > 1 else None,
                "n_users": self.n_users, "n_resamples": self.n_resamples,
                "confidence": self.confidence}


def _ratio(f, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return f(num / den)


def _check(n_resamples: int, confidence: float, parts: Sequence) -> None:
    if not parts:
        raise ValueError("need the per-user statistics of at least one split")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def user_bootstrap(parts: Sequence[Mapping[str, list]], metric: str, *,
                   n_resamples: int = 2000, confidence: float = 0.95,
                   seed: int = 0) -> Interval:
    """``metric`` on the test rows of every split in ``parts`` pooled, with a percentile
    interval that resamples users (each with all their rows across all splits)."""
    _check(n_resamples, confidence, parts)
    _, _, f = metric_terms(metric)
    users = _users(parts)
    num, den = _table(parts, metric, users)
    un, ud = num.sum(axis=0), den.sum(axis=0)
    (vals,) = _resampled(f, [un], [ud], n_resamples, seed, metric)
    a = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(vals, [a, 1.0 - a])
    per_seed = tuple(float(_ratio(f, n.sum(), d.sum())) for n, d in zip(num, den))
    return Interval(float(_ratio(f, un.sum(), ud.sum())), float(lo), float(hi), per_seed,
                    len(users), n_resamples, confidence)


def paired_difference(parts_a: Sequence[Mapping[str, list]],
                      parts_b: Sequence[Mapping[str, list]], metric: str, *,
                      n_resamples: int = 2000, confidence: float = 0.95,
                      seed: int = 0) -> Interval:
    """``metric(A) - metric(B)`` on the same splits (``parts_a[s]`` and ``parts_b[s]`` come
    from one split), with the same resampled users on both sides in every resample."""
    _check(n_resamples, confidence, parts_a)
    if len(parts_a) != len(parts_b):
        raise ValueError(f"a paired difference needs the same splits on both sides: "
                         f"{len(parts_a)} against {len(parts_b)}")
    _, _, f = metric_terms(metric)
    users = _users(parts_a, parts_b)
    na, da = _table(parts_a, metric, users)
    nb, db = _table(parts_b, metric, users)
    va, vb = _resampled(f, [na.sum(axis=0), nb.sum(axis=0)],
                        [da.sum(axis=0), db.sum(axis=0)], n_resamples, seed, "paired " + metric)
    vals = va - vb
    a = (1.0 - confidence) / 2.0
    lo, hi = np.nanquantile(vals, [a, 1.0 - a])
    point = float(_ratio(f, na.sum(), da.sum()) - _ratio(f, nb.sum(), db.sum()))
    per_seed = tuple(float(_ratio(f, x.sum(), y.sum()) - _ratio(f, u.sum(), v.sum()))
                     for x, y, u, v in zip(na, da, nb, db))
    return Interval(point, float(lo), float(hi), per_seed, len(users), n_resamples,
                    confidence)


def pooled_value(parts: Sequence[Mapping[str, list]], metric: str) -> float:
    """The metric of the pooled rows, without resampling."""
    _, _, f = metric_terms(metric)
    num, den = _table(parts, metric, _users(parts))
    v = float(_ratio(f, num.sum(), den.sum()))
    return v if math.isfinite(v) else float("nan")
