"""K-means on every backend, and elbow selection.

The names below load with their submodule on first use.
"""

from kmrec_gpu._lazy import lazy_exports

__all__ = [
    "KMeans", "NotFittedError", "kmeans_plusplus",
]

_LAZY = {
    "KMeans": "kmrec_gpu.cluster.kmeans",
    "NotFittedError": "kmrec_gpu.cluster.kmeans",
    "kmeans_plusplus": "kmrec_gpu.cluster.kmeans",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
