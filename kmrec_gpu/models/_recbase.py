"""Pieces every top-k recommender here shares: input checks, popularity, the final top-k.

Recommendations are built as a users × items score matrix and cut with
:func:`kmrec_gpu.metrics.top_k_items`, which drops the users' training items and pads
with ``-1``. Scores are composed lexicographically (a primary count plus a popularity
fraction below 1), so ties in the primary order are broken by training popularity and
then by the lower item code, the same way on every run.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kmrec_gpu.estimator import Estimator
from kmrec_gpu.metrics import top_k_items
from kmrec_gpu.ratings import Ratings


class RecommenderMixin(Estimator):
    """The project's estimator base with the fitted check of a recommender."""

    _fitted_attr = "n_items_"

    def _store_train(self, train: Ratings) -> None:
        if not isinstance(train, Ratings):
            raise TypeError(f"fit expects a Ratings, got {type(train).__name__}")
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        self.seen_ = train.to_csr(np.float32, binary=True)


def check_k(k: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    return int(k)


def check_threshold(threshold: float | None) -> None:
    if threshold is not None and not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite rating or None, got {threshold!r}")


def check_users(users: np.ndarray, n_users: int) -> np.ndarray:
    u = np.asarray(users)
    if u.ndim != 1 or not np.issubdtype(u.dtype, np.integer):
        raise ValueError(f"users must be a 1-d array of int user codes, got {u.dtype} {u.shape}")
    if u.size and (u.min() < 0 or u.max() >= n_users):
        raise ValueError(f"user codes must lie in [0, {n_users}), got min {u.min()} "
                         f"max {u.max()}")
    return u.astype(np.int64)


def liked_mask(r: Ratings, threshold: float | None) -> np.ndarray:
    return np.ones(len(r), dtype=bool) if threshold is None else r.ratings >= threshold


def item_counts(r: Ratings, threshold: float | None) -> np.ndarray:
    """Training ratings per item (only those ``>= threshold`` when one is given)."""
    m = liked_mask(r, threshold)
    return np.bincount(r.items[m], minlength=r.n_items).astype(np.float64)


def popularity_fraction(counts: np.ndarray) -> np.ndarray:
    """Counts mapped into [0, 0.5): a tie-breaker that never outweighs a unit of a count."""
    return 0.5 * counts / (counts.max() + 1.0) if counts.size else counts


def top_k(scores: np.ndarray, users: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
    """Top ``k`` per row of ``scores`` (rows aligned with ``users``), training items out."""
    return top_k_items(scores, k, exclude=seen[users]).astype(np.int64)


def rankings(score_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's items best first — score descending, then item code, as
    :func:`top_k_items` orders them — leaving out items it never recommends (score
    ``-inf`` or NaN); concatenated, row ``g`` at ``orders[starts[g]:starts[g + 1]]``."""
    s = np.asarray(score_rows, dtype=np.float64)
    items = np.arange(s.shape[1])
    return concat_rankings([items[np.lexsort((items, -row))][: int((row > -np.inf).sum())]
                            for row in s])


def concat_rankings(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rankings of item codes laid end to end, as the top-k walks read them: ranking ``g``
    is ``orders[starts[g]:starts[g + 1]]``."""
    starts = np.zeros(len(parts) + 1, dtype=np.int64)
    starts[1:] = np.cumsum([p.size for p in parts])
    return (np.concatenate(parts) if parts else np.zeros(0, np.int64)).astype(np.int64), starts


def grouped_top_k(orders: np.ndarray, starts: np.ndarray, groups: np.ndarray,
                  users: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
    """Top ``k`` for users whose scores are their group's row of :func:`rankings`: the
    same lists :func:`top_k` gives on the dense block, without building it."""
    from kernels.cpu_rank import walk_top_k

    rows = seen[users]
    return walk_top_k(orders, starts, np.asarray(groups, np.int64), rows.indptr.astype(np.int64),
                      rows.indices.astype(np.int64), seen.shape[1], k)
