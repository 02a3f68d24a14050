"""Top-k ranking metrics, with the user's training items kept out of the candidates.

Recommendations arrive as an ``(n_users, k)`` array of item codes (``-1`` pads a short
list). The relevant items of a user are their test items, optionally only those rated at
least ``threshold``. Everything is vectorised over users: the per-position hit matrix is
one sorted-key lookup, so a million users cost a few array passes.

Definitions (binary relevance, ``R_u`` = the user's relevant test items):

- precision@k = hits / k
- recall@k = hits / |R_u|
- nDCG@k = sum_hits 1/log2(pos + 1) / sum_{i <= min(k, |R_u|)} 1/log2(i + 1)
- MAP@k: AP@k = sum over hit positions i of precision@i, divided by min(k, |R_u|)
- hit rate@k = share of users with at least one hit
- catalog coverage = distinct recommended items / catalog size

Users with no relevant test item are not scored (and counted as ``n_skipped_users``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kmrec_gpu.ratings import Ratings


def _pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    return users.astype(np.int64) * np.int64(n_items) + items.astype(np.int64)


def _member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def top_k_items(scores: np.ndarray, k: int, *, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    """The ``k`` best-scored item codes per row, best first, ties to the lower item code;
    ``exclude`` rows' items (e.g. the users' training items, as a users × items CSR
    aligned with ``scores``) never appear, nor do items scored ``-inf`` or NaN. Rows with
    fewer than ``k`` eligible items are padded with ``-1``."""
    from kernels.cpu_rank import top_k_rows

    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-d (users x items), got shape {s.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    if exclude is not None:
        ex = sp.csr_matrix(exclude)
        if ex.shape != s.shape:
            raise ValueError(f"exclude has shape {ex.shape}, scores {s.shape}")
        indptr, indices = ex.indptr.astype(np.int64), ex.indices.astype(np.int64)
    else:
        indptr, indices = np.zeros(s.shape[0] + 1, np.int64), np.zeros(0, np.int64)
    return top_k_rows(np.ascontiguousarray(s), indptr, indices, int(k))


def per_user_ranking(recommendations: np.ndarray, users: np.ndarray, test: Ratings, *,
                     train: Ratings | None = None, k: int = 10,
                     threshold: float | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each scored user's precision, recall, nDCG, AP and hit at ``k``, and the codes of
    those users (the ones with at least one relevant test item), in input order.

    ``recommendations[j]`` is the ranked list for user code ``users[j]``. When ``train``
    is given, a recommended training item is an error: the candidates must exclude them
    (a harness that let them through would hide a recommender's bug).
    """
    rec = np.asarray(recommendations)
    users = np.asarray(users)
    if rec.ndim != 2 or rec.shape[0] != users.shape[0]:
        raise ValueError(f"recommendations must be (len(users), k); got {rec.shape} for "
                         f"{users.shape[0]} users")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rec = rec[:, :k].astype(np.int64)
    if rec.shape[1] < k:
        rec = np.hstack([rec, np.full((rec.shape[0], k - rec.shape[1]), -1)])
    n_items = test.n_items
    valid = rec >= 0
    if (rec >= n_items).any():
        raise ValueError(f"recommended item code {int(rec.max())} outside [0, {n_items})")
    ukeys = np.broadcast_to(users[:, None], rec.shape)
    keys = _pair_keys(ukeys, np.where(valid, rec, 0), n_items)
    if train is not None:
        seen = _member(keys, np.unique(_pair_keys(train.users, train.items, n_items))) & valid
        if seen.any():
            j, c = np.argwhere(seen)[0]
            raise ValueError(
                f"user code {int(users[j])} was recommended item code {int(rec[j, c])}, "
                "which is in their training ratings; exclude training items from the "
                "candidates (top_k_items(..., exclude=train.to_csr()))")
    rel_rows = np.ones(len(test), dtype=bool) if threshold is None else test.ratings >= threshold
    rel_keys = np.unique(_pair_keys(test.users[rel_rows], test.items[rel_rows], n_items))
    n_rel = np.bincount(test.users[rel_rows], minlength=test.n_users)[users]
    scored = n_rel > 0
    hits = (_member(keys, rel_keys) & valid)[scored]
    n_rel = n_rel[scored]

    pos = np.arange(1, k + 1)
    discount = 1.0 / np.log2(pos + 1)
    n_hits = hits.sum(axis=1)
    ideal = np.cumsum(discount)[np.minimum(n_rel, k) - 1]
    prec_at_i = np.cumsum(hits, axis=1) / pos
    return {
        "precision": n_hits / k,
        "recall": n_hits / n_rel,
        "ndcg": (hits * discount).sum(axis=1) / ideal,
        "map": (prec_at_i * hits).sum(axis=1) / np.minimum(n_rel, k),
        "hit_rate": (n_hits > 0).astype(np.float64),
    }, users[scored]


def ranking_metrics(recommendations: np.ndarray, users: np.ndarray, test: Ratings, *,
                    train: Ratings | None = None, k: int = 10,
                    threshold: float | None = None,
                    catalog_size: int | None = None) -> dict[str, float]:
    """Means over scored users of :func:`per_user_ranking`, and catalog coverage.

    ``catalog_size`` defaults to the number of items with a training rating (or the
    vocabulary without ``train``).
    """
    per_user, scored_users = per_user_ranking(recommendations, users, test, train=train, k=k,
                                              threshold=threshold)
    if catalog_size is None:
        catalog_size = train.n_rated_items if train is not None else test.n_items
    return ranking_summary(per_user, scored_users, recommendations, users, k=k,
                           catalog_size=catalog_size)


def ranking_summary(per_user: dict[str, np.ndarray], scored_users: np.ndarray,
                    recommendations: np.ndarray, users: np.ndarray, *, k: int,
                    catalog_size: int) -> dict[str, float]:
    """The figures of :func:`ranking_metrics` from per-user values already computed."""
    rec = np.asarray(recommendations)[:, :k]
    rec_rows = np.isin(np.asarray(users), scored_users)
    rec_items = np.unique(rec[rec_rows][rec[rec_rows] >= 0])

    def mean(a: np.ndarray) -> float:
        return float(a.mean()) if a.size else float("nan")

    out = {f"{name}@{k}": mean(v) for name, v in per_user.items()}
    out["catalog_coverage"] = (float(rec_items.size / catalog_size) if catalog_size
                               else float("nan"))
    out["n_users"] = int(scored_users.size)
    out["n_skipped_users"] = int(len(users) - scored_users.size)
    return out
