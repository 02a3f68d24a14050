"""Seed 000's clusterings: users on genre profiles (the text), movies on genres (the code).

The text clusters users by genre taste; the code (``Kmeansmovie.py``) actually clusters
*movies* on their genre one-hot with ``KMeans(n_clusters=6, random_state=0)``.
:class:`GenreProfileClusters` is the recommender the text describes;
:func:`movie_genre_clusters` is what the code ran, reported beside it.
"""

from __future__ import annotations

import numpy as np

from kmrec_gpu.cluster import KMeans
from kmrec_gpu.cluster.engines import make_kmeans
from kmrec_gpu.models._recbase import (
    RecommenderMixin,
    check_k,
    check_threshold,
    check_users,
    concat_rankings,
    liked_mask,
)
from kmrec_gpu.models.liked_clusters import membership
from kmrec_gpu.models.popularity import GlobalPopularity
from kmrec_gpu.ratings import Ratings

PROFILES = ("liked_share", "mean_rating")


def _require_genres(r: Ratings) -> np.ndarray:
    if r.genres is None or r.genres.shape[1] == 0:
        raise ValueError(f"{r.name} has no genre table; genre clustering needs one")
    return r.genres


def genre_profiles(r: Ratings, *, threshold: float = 4.0,
                   kind: str = "liked_share") -> np.ndarray:
    """users × genres profile. ``liked_share``: each genre's share of the user's liked
    (``>= threshold``) ratings, a movie counting once per genre it has, rows summing to 1;
    ``mean_rating``: the user's mean rating per genre (0 where they rated none)."""
    if kind not in PROFILES:
        raise ValueError(f"kind must be one of {PROFILES}, got {kind!r}")
    g = _require_genres(r).astype(np.float64)
    m = liked_mask(r, threshold) if kind == "liked_share" else np.ones(len(r), bool)
    u, it = r.users[m], r.items[m]
    out = np.zeros((r.n_users, g.shape[1]))
    w = r.ratings[m].astype(np.float64) if kind == "mean_rating" else np.ones(u.size)
    np.add.at(out, u, g[it] * w[:, None])
    if kind == "liked_share":
        tot = out.sum(axis=1, keepdims=True)
    else:
        tot = np.zeros_like(out)
        np.add.at(tot, u, g[it])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, out / np.where(tot > 0, tot, 1.0), 0.0)


def allocate_slots(profile: np.ndarray, k: int) -> np.ndarray:
    """Split ``k`` slots over genres in proportion to ``profile`` (largest remainder;
    equal remainders go to the lower genre index, so the split is reproducible). A 2-d
    ``profile`` is split row by row."""
    p = np.asarray(profile, dtype=np.float64)
    rows = p if p.ndim == 2 else p[None, :]
    if p.ndim not in (1, 2) or (p < 0).any() or (rows.sum(axis=1) <= 0).any():
        raise ValueError(f"profile must be a 1-d non-negative vector with a positive sum "
                         f"(or a 2-d array of them), got {p!r}")
    quota = k * rows / rows.sum(axis=1, keepdims=True)
    slots = np.floor(quota).astype(np.int64)
    rem = quota - slots
    # the rank of each genre's remainder in its row, largest first, lower index on ties
    rank = np.empty_like(slots)
    np.put_along_axis(rank, np.argsort(-rem, axis=1, kind="stable"),
                      np.arange(rows.shape[1])[None, :], axis=1)
    slots += rank < (k - slots.sum(axis=1, keepdims=True))
    return slots if p.ndim == 2 else slots[0]


class GenreProfileClusters(RecommenderMixin):
    """Users clustered (K-means) on genre profiles; each user's ``k`` slots are shared out
    across genres in proportion to their own profile, each genre's slots filled with the
    unseen movies of that genre most liked in the user's cluster (ties: global
    popularity). A movie with several genres is taken once; slots a genre cannot fill,
    and users without a profile (counted in ``n_fallback_users_``), get global
    popularity. The chosen movies are listed in order of cluster popularity, then the
    popularity fill. ``engine`` picks the K-means (``"kmrec"``, ``"sklearn"``, ``"cuml"``);
    ``kernels`` is passed to this project's K-means."""

    def __init__(self, *, n_clusters: int = 8, threshold: float = 4.0,
                 profile: str = "liked_share", random_state: int = 0,
                 n_init: int | str = "auto", backend: str = "cpu",
                 engine: str = "kmrec", kernels: str = "auto") -> None:
        self.n_clusters = n_clusters
        self.threshold = threshold
        self.profile = profile
        self.random_state = random_state
        self.n_init = n_init
        self.backend = backend
        self.engine = engine
        self.kernels = kernels

    def fit(self, train: Ratings) -> GenreProfileClusters:
        check_threshold(self.threshold)
        self._store_train(train)
        prof = genre_profiles(train, threshold=self.threshold, kind=self.profile)
        has = prof.sum(axis=1) > 0
        rows = np.flatnonzero(has)
        if rows.size < self.n_clusters:
            raise ValueError(f"n_clusters={self.n_clusters} but only {rows.size} users have "
                             "a genre profile")
        km = make_kmeans(self.engine, self.n_clusters, n_init=self.n_init,
                         random_state=self.random_state, backend=self.backend,
                         kernels=self.kernels).fit(prof[rows])
        labels = np.full(train.n_users, -1, dtype=np.int32)
        labels[rows] = km.labels_
        self.profiles_, self.labels_, self.kmeans_ = prof, labels, km
        self.n_fallback_users_ = int(((np.bincount(train.users, minlength=train.n_users) > 0)
                                      & ~has).sum())
        self.popularity_ = GlobalPopularity(threshold=self.threshold).fit(train)
        liked = train.subset(liked_mask(train, self.threshold)).to_csr(np.float32, binary=True)
        counts = np.asarray((membership(labels, self.n_clusters) @ liked).todense(), float)
        pop = self.popularity_.scores_
        finite = np.isfinite(pop)
        self.pop_order_ = np.lexsort((np.arange(pop.size), -pop))[: int(finite.sum())]
        frac = np.where(finite, 0.5 * pop / (pop[finite].max() + 1.0), -np.inf)
        self.cluster_scores_ = counts + frac  # -inf for movies nobody rated in training
        genres = _require_genres(train)
        self.genre_items_ = [np.flatnonzero(genres[:, g] & finite) for g in range(genres.shape[1])]
        self.genre_rankings_ = self._rank()
        return self

    def recommend(self, users: np.ndarray, k: int = 10) -> np.ndarray:
        from kernels.cpu_rank import walk_genre_slots

        self._check_fitted()
        k, users = check_k(k), check_users(users, self.n_users_)
        labels = self.labels_[users].astype(np.int64)
        slots = np.zeros((users.size, len(self.genre_items_)), dtype=np.int64)
        inside = labels >= 0
        if inside.any():
            slots[inside] = allocate_slots(self.profiles_[users[inside]], k)
        orders, starts = self.genre_rankings_
        seen = self.seen_[users]
        return walk_genre_slots(orders, starts, len(self.genre_items_), labels, slots,
                                self.cluster_scores_, self.pop_order_.astype(np.int64),
                                seen.indptr.astype(np.int64), seen.indices.astype(np.int64),
                                self.n_items_, k)

    def _rank(self) -> tuple[np.ndarray, np.ndarray]:
        """Each (cluster, genre)'s rated movies by the cluster's score (then item code),
        sorted once at fit; group ``cluster * n_genres + genre``."""
        return concat_rankings([cand[np.lexsort((cand, -sc[cand]))]
                                for sc in self.cluster_scores_ for cand in self.genre_items_])


def movie_genre_clusters(ratings: Ratings, n_clusters: int = 6, random_state: int = 0,
                         backend: str = "cpu") -> KMeans:
    """K-means on the movies' genre one-hot (seed 000's ``Kmeansmovie.py``); every movie
    of the table is clustered, rated or not, as their code read movies.csv."""
    g = _require_genres(ratings).astype(np.float64)
    return KMeans(n_clusters, random_state=random_state, backend=backend).fit(g)
