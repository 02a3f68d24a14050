"""Seed 004: users clustered on a user × movie pivot filled with each user's mean.

Moviematcher pivots users × titles, fills the holes with the user's mean rating (over
*all* ratings, test included; here only over the ratings passed in, so a caller that
passes the training split leaks nothing), and fits ``KMeans(n_clusters=7)`` unseeded.
Its "clusters of over 20,000 individuals" count rating rows, not users:
:func:`cluster_sizes` gives both.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import silhouette_score

from kmrec_gpu import seeding
from kmrec_gpu.cluster import KMeans
from kmrec_gpu.ratings import Ratings


def mean_filled_pivot(r: Ratings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, user_codes, item_codes)``: dense rated-users × rated-items ratings with each
    user's holes set to that user's mean over ``r``."""
    if len(r) == 0:
        raise ValueError("cannot pivot an empty Ratings")
    users, u_idx = np.unique(r.users, return_inverse=True)
    items, i_idx = np.unique(r.items, return_inverse=True)
    n_u = np.bincount(u_idx)
    means = np.bincount(u_idx, r.ratings.astype(np.float64)) / n_u
    X = np.repeat(means[:, None], items.size, axis=1)
    X[u_idx, i_idx] = r.ratings
    return X, users.astype(np.int32), items.astype(np.int32)


def fit_pivot_kmeans(X: np.ndarray, n_clusters: int, *, random_state: int = 0,
                     backend: str = "cpu") -> KMeans:
    return KMeans(n_clusters, random_state=random_state, backend=backend).fit(X)


def k_scan(X: np.ndarray, ks=range(2, 10), *, random_state: int = 0,
           sample_size: int | None = 2000, backend: str = "cpu") -> list[dict]:
    """SSE (inertia) and silhouette for each k, as Moviematcher's scan over k = 2..9.

    The silhouette is computed on a seeded sample of ``sample_size`` rows (all rows when
    there are fewer), because it costs O(n²) distances.
    """
    ks = list(ks)
    if not ks or min(ks) < 2 or max(ks) >= X.shape[0]:
        raise ValueError(f"ks must lie in [2, {X.shape[0] - 1}], got {ks}")
    out = []
    for k in ks:
        km = fit_pivot_kmeans(X, k, random_state=random_state, backend=backend)
        n = X.shape[0] if sample_size is None else min(sample_size, X.shape[0])
        sil = silhouette_score(X, km.labels_, sample_size=n if n < X.shape[0] else None,
                               random_state=seeding.int_seed(random_state, "silhouette", str(k)))
        out.append({"k": k, "sse": km.inertia_, "silhouette": float(sil),
                    "n_iter": km.n_iter_})
    return out


def cluster_sizes(labels: np.ndarray, user_codes: np.ndarray, r: Ratings,
                  n_clusters: int) -> dict[str, list[int]]:
    """Users and rating rows per cluster (``labels[j]`` is user ``user_codes[j]``'s)."""
    labels = np.asarray(labels)
    if labels.shape != np.asarray(user_codes).shape:
        raise ValueError(f"labels {labels.shape} and user_codes "
                         f"{np.asarray(user_codes).shape} must align")
    of_user = np.full(r.n_users, -1, dtype=np.int64)
    of_user[user_codes] = labels
    lab = of_user[r.users]
    if (lab < 0).any():
        raise ValueError("some ratings belong to users with no cluster label")
    return {"users": np.bincount(labels, minlength=n_clusters).tolist(),
            "ratings": np.bincount(lab, minlength=n_clusters).tolist()}


class PivotClusters:
    """Fit-only estimator: ``labels_`` per rated user (``user_codes_``) of the mean-filled
    pivot of the training ratings."""

    def __init__(self, *, n_clusters: int = 7, random_state: int = 0,
                 backend: str = "cpu") -> None:
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.backend = backend

    def get_params(self, deep: bool = True) -> dict:
        return {"n_clusters": self.n_clusters, "random_state": self.random_state,
                "backend": self.backend}

    def fit(self, train: Ratings) -> PivotClusters:
        X, self.user_codes_, self.item_codes_ = mean_filled_pivot(train)
        if X.shape[0] < self.n_clusters:
            raise ValueError(f"n_clusters={self.n_clusters} > {X.shape[0]} rated users")
        km = fit_pivot_kmeans(X, self.n_clusters, random_state=self.random_state,
                              backend=self.backend)
        self.labels_, self.inertia_, self.kmeans_ = km.labels_, km.inertia_, km
        self.sizes_ = cluster_sizes(km.labels_, self.user_codes_, train, self.n_clusters)
        return self
