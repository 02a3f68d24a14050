"""Seed 004's k = 7 clusters, counted in users and in rating rows.

Moviematcher (CLAIMS.md, 004) pivots users × movies, fills each user's holes with the
user's mean rating, fits ``KMeans(n_clusters=7)`` with no seed and speaks of "clusters of
over 20,000 individuals": with 610 users that can only count rating rows. The probe
builds the same pivot from the ratings it is given (:func:`~kmrec_gpu.models.
pivot_clusters.mean_filled_pivot`; the whole dataset under split ``all``, as the seed
did), fits the project's K-means seeded with the cell's seed (so a sweep over seeds shows
what the unseeded original left to chance), and counts each cluster both ways.
"""

from __future__ import annotations

from kmrec_gpu.models.pivot_clusters import cluster_sizes, fit_pivot_kmeans, mean_filled_pivot
from kmrec_gpu.probes import Probe


class Probe004Clusters(Probe):
    """K-means of the mean-filled user × movie pivot of the training ratings.

    ``metrics_``: ``largest_cluster_users``, ``largest_cluster_ratings``,
    ``clusters_over_<over>_ratings`` and ``clusters_over_<over>_users`` (``over`` =
    20,000 by default, the README's figure), ``inertia``. ``details_``: users and rating
    rows per cluster (in label order), the pivot's shape, and the totals.
    """

    def __init__(self, *, n_clusters: int = 7, over: int = 20000, random_state: int = 0,
                 backend: str = "cpu") -> None:
        self.n_clusters = n_clusters
        self.over = over
        self.random_state = random_state
        self.backend = backend

    def measure(self, split) -> Probe004Clusters:
        r = split.train
        k = int(self.n_clusters)
        X, users, items = mean_filled_pivot(r)
        if X.shape[0] < k:
            raise ValueError(f"n_clusters={k} > {X.shape[0]} rated users")
        km = fit_pivot_kmeans(X, k, random_state=int(self.random_state), backend=self.backend)
        sizes = cluster_sizes(km.labels_, users, r, k)
        over = int(self.over)
        self.metrics_ = {
            "largest_cluster_users": max(sizes["users"]),
            "largest_cluster_ratings": max(sizes["ratings"]),
            f"clusters_over_{over}_ratings": sum(x > over for x in sizes["ratings"]),
            f"clusters_over_{over}_users": sum(x > over for x in sizes["users"]),
            "inertia": float(km.inertia_),
        }
        self.details_ = {
            "users": [int(x) for x in sizes["users"]],
            "ratings": [int(x) for x in sizes["ratings"]],
            "pivot_shape": [int(X.shape[0]), int(X.shape[1])],
            "n_users": int(users.size), "n_items": int(items.size), "n_ratings": len(r),
            "fill": "each user's mean over the ratings given (all of them under split all)",
            "n_iter": int(km.n_iter_),
        }
        return self
