"""K-means on every backend, and elbow selection."""

from kmrec_gpu.cluster.kmeans import KMeans, NotFittedError, kmeans_plusplus

__all__ = ["KMeans", "NotFittedError", "kmeans_plusplus"]
