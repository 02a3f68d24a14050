"""Seed 002: users clustered on the movies they liked; a cluster recommends its favourites.

The article (asdkazmi/AI-Movies-Recommendation-System-K-Means-Clustering) builds a binary
users × movies matrix of ratings >= 4, runs K-means with k = 15, dissolves clusters of
fewer than 6 users (:func:`fix_small_clusters`), and recommends a cluster's movies ordered
by how many members liked them, minus the user's own.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from kmrec_gpu.cluster.engines import make_kmeans
from kmrec_gpu.models._recbase import (
    RecommenderMixin,
    check_k,
    check_threshold,
    check_users,
    grouped_top_k,
    liked_mask,
    rankings,
)
from kmrec_gpu.models.popularity import GlobalPopularity
from kmrec_gpu.ratings import Ratings


def liked_matrix(r: Ratings, threshold: float | None) -> sp.csr_matrix:
    """users × items 0/1 CSR of the ratings ``>= threshold`` (all ratings when None)."""
    return r.subset(liked_mask(r, threshold)).to_csr(np.float32, binary=True)


def membership(labels: np.ndarray, n_clusters: int) -> sp.csr_matrix:
    """clusters × users 0/1 matrix; label -1 (not clustered) belongs to none."""
    labels = np.asarray(labels)
    rows = np.flatnonzero(labels >= 0)
    return sp.csr_matrix((np.ones(rows.size, np.float32), (labels[rows], rows)),
                         shape=(n_clusters, labels.size))


def fix_small_clusters(labels: np.ndarray, liked_csr: sp.spmatrix, min_size: int) -> np.ndarray:
    """Dissolve clusters of fewer than ``min_size`` users, as the article's ``fixClusters``.

    Each user of a dissolved cluster moves to the remaining cluster whose movie list (the
    movies liked by any of its members *before* any move) covers the largest share of that
    user's liked movies; then the remaining clusters are renumbered ``0..m-1`` in their old
    order. The lists are not grown as users move in because the article's code compares
    against ``each_cluster_movies_list``, which it never updates; so the order in which
    users move does not matter. Ties (including a user with no liked movie, who covers
    0 everywhere) go to the lowest new cluster number: the article's ``np.argmax``.
    Labels of -1 (users left out of the clustering) stay -1.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-d int array, got {labels.dtype} {labels.shape}")
    liked = sp.csr_matrix(liked_csr)
    if liked.shape[0] != labels.size:
        raise ValueError(f"liked_csr has {liked.shape[0]} rows; expected one per label "
                         f"({labels.size})")
    if not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ValueError(f"min_size must be a positive int, got {min_size!r}")
    n_old = int(labels.max()) + 1 if (labels >= 0).any() else 0
    sizes = np.bincount(labels[labels >= 0], minlength=n_old)
    kept = np.flatnonzero(sizes >= min_size)
    if kept.size == 0:
        raise ValueError(f"every cluster has fewer than min_size={min_size} users "
                         f"(largest: {sizes.max() if sizes.size else 0}); nothing to keep")
    new_of_old = np.full(n_old, -1, dtype=np.int64)
    new_of_old[kept] = np.arange(kept.size)
    out = np.where(labels >= 0, new_of_old[np.maximum(labels, 0)], -1)
    movers = np.flatnonzero((labels >= 0) & (out < 0))
    if movers.size:
        lists = (membership(out, kept.size) @ (liked > 0).astype(np.float32)) > 0
        # the share's denominator is the user's own count, so comparing counts is the same
        covered = np.asarray(((liked[movers] > 0).astype(np.float32) @ lists.T.astype(
            np.float32)).todense())
        out[movers] = np.argmax(covered, axis=1)
    return out.astype(np.int32)


class LikedClusters(RecommenderMixin):
    """K-means over users' liked-movie vectors; recommend the cluster's most liked movies.

    Only users with at least one liked training movie are clustered; the others (counted
    in ``n_fallback_users_``) get global popularity. With ``pad_with_popularity`` a
    cluster list shorter than ``k`` (after removing the user's own items) is filled with
    globally popular movies; without it the list is padded with -1, as the article would
    show it. ``engine`` picks the K-means: this project's (``"kmrec"``) or a peer's
    (``"sklearn"``, ``"cuml"``), so engines can be compared inside the same recommender;
    ``kernels`` is passed to this project's K-means (its ``assign_path_`` shows which
    assignment ran).
    """

    def __init__(self, *, n_clusters: int = 15, threshold: float = 4.0,
                 min_cluster_size: int = 6, pad_with_popularity: bool = True,
                 random_state: int = 0, n_init: int | str = "auto", max_iter: int = 300,
                 backend: str = "cpu", engine: str = "kmrec", kernels: str = "auto") -> None:
        self.n_clusters = n_clusters
        self.threshold = threshold
        self.min_cluster_size = min_cluster_size
        self.pad_with_popularity = pad_with_popularity
        self.random_state = random_state
        self.n_init = n_init
        self.max_iter = max_iter
        self.backend = backend
        self.engine = engine
        self.kernels = kernels

    def fit(self, train: Ratings) -> LikedClusters:
        check_threshold(self.threshold)
        if self.min_cluster_size is not None and self.min_cluster_size < 1:
            raise ValueError(f"min_cluster_size must be >= 1 or None, got "
                             f"{self.min_cluster_size!r}")
        self._store_train(train)
        liked = liked_matrix(train, self.threshold)
        has_liked = np.diff(liked.indptr) > 0
        rows = np.flatnonzero(has_liked)
        if rows.size < self.n_clusters:
            raise ValueError(f"n_clusters={self.n_clusters} but only {rows.size} users "
                             f"have a training rating >= {self.threshold}")
        km = make_kmeans(self.engine, self.n_clusters, n_init=self.n_init,
                         max_iter=self.max_iter, random_state=self.random_state,
                         backend=self.backend, kernels=self.kernels).fit(liked[rows])
        labels = np.full(train.n_users, -1, dtype=np.int32)
        labels[rows] = km.labels_
        self.raw_labels_ = labels.copy()
        if self.min_cluster_size:
            labels = fix_small_clusters(labels, liked, int(self.min_cluster_size))
        self.labels_ = labels
        self.n_clusters_ = int(labels.max()) + 1
        self.inertia_ = km.inertia_
        self.kmeans_ = km
        self.cluster_item_counts_ = np.asarray(
            (membership(labels, self.n_clusters_) @ liked).todense(), dtype=np.float64)
        self.cluster_sizes_ = np.bincount(labels[labels >= 0], minlength=self.n_clusters_)
        self.cluster_n_items_ = (self.cluster_item_counts_ > 0).sum(axis=1)
        rated = np.bincount(train.users, minlength=train.n_users) > 0
        self.n_fallback_users_ = int((rated & ~has_liked).sum())
        self.popularity_ = GlobalPopularity(threshold=self.threshold).fit(train)
        self.rankings_ = self._rank()
        return self

    def recommend(self, users: np.ndarray, k: int = 10) -> np.ndarray:
        self._check_fitted()
        k, users = check_k(k), check_users(users, self.n_users_)
        lab = self.labels_[users]
        groups = np.where(lab >= 0, lab, self.n_clusters_)  # the last ranking: no cluster
        return grouped_top_k(*self.rankings_, groups, users, self.seen_, k)

    def _rank(self) -> tuple[np.ndarray, np.ndarray]:
        """One ranking per cluster, and one for users in none, sorted once at fit."""
        pop = self.popularity_.scores_
        finite = np.isfinite(pop)
        # popularity squeezed into [0, 0.5): orders the padding and breaks ties within a
        # cluster's counts, never outranks a movie some member liked
        frac = np.where(finite, 0.5 * pop / (pop[finite].max() + 1.0), -np.inf)
        counts = self.cluster_item_counts_
        base = np.where(counts > 0, counts + frac, frac if self.pad_with_popularity
                        else -np.inf)
        return rankings(np.vstack([base, frac]))
