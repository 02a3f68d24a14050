"""Which K-means does the clustering: this project's, or a peer's (scikit-learn, cuML).

The recommenders built on K-means take an ``engine`` so a peer's K-means can run inside
the very same recommender, on the same data, in the same process: only the clustering
differs, so a metric or time difference is the engine's.
"""

from __future__ import annotations

from typing import Any

from kmrec_gpu.errors import BackendUnavailable

ENGINES = ("kmrec", "sklearn", "cuml")


def make_kmeans(engine: str, n_clusters: int, *, random_state: int, n_init: int | str = "auto",
                max_iter: int = 300, backend: Any = "cpu", kernels: str = "auto") -> Any:
    """An unfitted K-means with scikit-learn's interface (``fit``, ``labels_``, ``inertia_``).
    ``kernels`` reaches this project's K-means only: the peers' engines have their own."""
    if engine == "kmrec":
        from kmrec_gpu.cluster import KMeans

        return KMeans(n_clusters, n_init=n_init, max_iter=max_iter, random_state=random_state,
                      backend=backend, kernels=kernels)
    if engine == "sklearn":
        from sklearn.cluster import KMeans as SkKMeans

        return SkKMeans(n_clusters, n_init=n_init, max_iter=max_iter, random_state=random_state)
    if engine == "cuml":
        try:
            from cuml.cluster import KMeans as CuKMeans
        except ImportError as e:
            raise BackendUnavailable(f"cuML is not installed ({e}); install the 'gpu' extra "
                                     "on a machine with a GPU") from None
        n_init = 1 if n_init == "auto" else n_init
        return CuKMeans(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter,
                        random_state=random_state, output_type="numpy")
    raise ValueError(f"engine {engine!r}; expected one of {ENGINES}")
