"""Train/test splits that never let a test rating reach a model.

Every split is a function of a :class:`Ratings` and a seed that returns
``TTSplit(train, test)`` (k-fold yields several). Both parts keep the full vocabularies,
so codes agree across them; rows are partitioned, never shared. ``drop_cold`` removes
test rows whose user or item has no training rating and reports how many.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.errors import DataError
from kmrec_gpu.ratings import Ratings


@dataclass(frozen=True, eq=False)
class TTSplit:
    train: Ratings
    test: Ratings
    method: str = "custom"
    params: dict[str, Any] = field(default_factory=dict)
    n_dropped_cold: int = 0

    def summary(self) -> dict[str, Any]:
        seen_u = np.bincount(self.train.users, minlength=self.train.n_users) > 0
        seen_i = np.bincount(self.train.items, minlength=self.train.n_items) > 0
        cold_u = ~seen_u[self.test.users]
        cold_i = ~seen_i[self.test.items]
        return {
            "method": self.method,
            "params": dict(self.params),
            "n_train": len(self.train),
            "n_test": len(self.test),
            "train_users": self.train.n_rated_users,
            "train_items": self.train.n_rated_items,
            "test_users": self.test.n_rated_users,
            "test_items": self.test.n_rated_items,
            "cold_user_rows": int(cold_u.sum()),
            "cold_item_rows": int(cold_i.sum()),
            "cold_rows": int((cold_u | cold_i).sum()),
            "dropped_cold": self.n_dropped_cold,
        }


def _make(r: Ratings, test_mask: np.ndarray, method: str, params: dict, drop_cold: bool) -> TTSplit:
    train, test = r.subset(~test_mask), r.subset(test_mask)
    dropped = 0
    if drop_cold:
        seen_u = np.bincount(train.users, minlength=r.n_users) > 0
        seen_i = np.bincount(train.items, minlength=r.n_items) > 0
        warm = seen_u[test.users] & seen_i[test.items]
        dropped = int((~warm).sum())
        test = test.subset(warm)
    return TTSplit(train, test, method, dict(params, drop_cold=drop_cold), dropped)


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")


def holdout(r: Ratings, test_fraction: float = 0.1, *, seed: int = 0,
            drop_cold: bool = False) -> TTSplit:
    """A random fraction of all ratings goes to test (the seeds' own protocol)."""
    _check_fraction("test_fraction", test_fraction)
    n_test = int(round(test_fraction * len(r)))
    mask = np.zeros(len(r), dtype=bool)
    mask[seeding.rng(seed, "split", "holdout").permutation(len(r))[:n_test]] = True
    return _make(r, mask, "holdout", {"test_fraction": test_fraction, "seed": seed}, drop_cold)


def _rank_within_user(r: Ratings, order_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's 0-based rank within its user under ``order_key``, and the user's count."""
    order = np.lexsort((order_key, r.users))
    counts = np.bincount(r.users, minlength=r.n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(len(r), dtype=np.int64)
    rank[order] = np.arange(len(r)) - starts[r.users[order]]
    return rank, counts[r.users]


def per_user(r: Ratings, *, fraction: float | None = None, k: int | None = None,
             min_train: int = 1, seed: int = 0, drop_cold: bool = False) -> TTSplit:
    """Each user gives ``k`` ratings (or ``fraction`` of theirs) to test, keeping
    at least ``min_train`` in train."""
    if (fraction is None) == (k is None):
        raise ValueError("per_user needs exactly one of fraction= or k=")
    if fraction is not None:
        _check_fraction("fraction", fraction)
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if min_train < 0:
        raise ValueError(f"min_train must be >= 0, got {min_train}")
    key = seeding.rng(seed, "split", "per_user").random(len(r))
    rank, n_u = _rank_within_user(r, key)
    want = np.round(fraction * n_u).astype(np.int64) if fraction is not None else np.full(len(r), k)
    n_test = np.clip(np.minimum(want, n_u - min_train), 0, None)
    params = {"fraction": fraction, "k": k, "min_train": min_train, "seed": seed}
    return _make(r, rank < n_test, "per_user", params, drop_cold)


def _require_timestamps(r: Ratings, method: str) -> np.ndarray:
    if r.timestamps is None:
        raise DataError(f"{method} split needs timestamps; {r.name} has none")
    return r.timestamps


def temporal(r: Ratings, test_fraction: float = 0.1, *, seed: int = 0,
             drop_cold: bool = False) -> TTSplit:
    """The latest ``test_fraction`` of ratings (globally, by timestamp) go to test.

    Ties at the cut are broken by a seeded random key, so the split is exact in size.
    """
    _check_fraction("test_fraction", test_fraction)
    ts = _require_timestamps(r, "temporal")
    tie = seeding.rng(seed, "split", "temporal").random(len(r))
    order = np.lexsort((tie, ts))
    n_test = int(round(test_fraction * len(r)))
    mask = np.zeros(len(r), dtype=bool)
    mask[order[len(r) - n_test:]] = True
    return _make(r, mask, "temporal", {"test_fraction": test_fraction, "seed": seed}, drop_cold)


def leave_last_k(r: Ratings, k: int = 1, *, min_train: int = 1, seed: int = 0,
                 drop_cold: bool = False) -> TTSplit:
    """Each user's ``k`` most recent ratings go to test (keeping ``min_train``)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ts = _require_timestamps(r, "leave_last_k")
    tie = seeding.rng(seed, "split", "leave_last_k").random(len(r))
    # rank by descending time: newest first; ties broken by the seeded key
    order_key = np.lexsort((tie, -ts))
    pos = np.empty(len(r), dtype=np.int64)
    pos[order_key] = np.arange(len(r))
    rank, n_u = _rank_within_user(r, pos)
    n_test = np.clip(np.minimum(k, n_u - min_train), 0, None)
    params = {"k": k, "min_train": min_train, "seed": seed}
    return _make(r, rank < n_test, "leave_last_k", params, drop_cold)


def kfold(r: Ratings, n_folds: int = 5, *, seed: int = 0,
          drop_cold: bool = False) -> Iterator[TTSplit]:
    """Ratings partitioned into ``n_folds`` random folds; each is the test set once."""
    if n_folds < 2 or n_folds > len(r):
        raise ValueError(f"n_folds must be in [2, {len(r)}], got {n_folds}")
    perm = seeding.rng(seed, "split", "kfold").permutation(len(r))
    fold = np.empty(len(r), dtype=np.int64)
    fold[perm] = np.arange(len(r)) % n_folds
    for f in range(n_folds):
        params = {"n_folds": n_folds, "fold": f, "seed": seed}
        yield _make(r, fold == f, "kfold", params, drop_cold)


SPLITS = {
    "holdout": holdout,
    "per_user": per_user,
    "temporal": temporal,
    "leave_last_k": leave_last_k,
}


def make_split(r: Ratings, method: str, *, seed: int, **params: Any) -> TTSplit:
    """One split by name (configuration as data); k-fold takes ``fold=``."""
    if method == "kfold":
        fold = params.pop("fold", 0)
        for i, s in enumerate(kfold(r, seed=seed, **params)):
            if i == fold:
                return s
        raise ValueError(f"fold {fold} out of range")
    if method not in SPLITS:
        raise ValueError(f"unknown split {method!r}; expected one of {sorted(SPLITS) + ['kfold']}")
    return SPLITS[method](r, seed=seed, **params)


def validation_split(train: Ratings, fraction: float = 0.1, *, seed: int = 0) -> TTSplit:
    """A validation split carved out of a training set (for tuning; never the test set)."""
    return holdout(train, fraction, seed=seed)
