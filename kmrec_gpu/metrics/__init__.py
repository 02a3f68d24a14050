"""Rating metrics, ranking metrics at k, and bootstrap confidence intervals.

The names below load with their submodule on first use: the harness needs the rating and
ranking metrics, not ``bootstrap`` (which imports ``scipy.stats``, a second at start-up).
"""

from kmrec_gpu._lazy import lazy_exports

__all__ = [
    "HALF_STAR", "bootstrap_ci", "exact_match", "mae", "per_user_ranking",
    "pooled_bootstrap_ci", "ranking_metrics", "rating_metrics", "relative_accuracy", "rmse",
    "top_k_items", "within",
]

_LAZY = {
    "bootstrap_ci": "kmrec_gpu.metrics.bootstrap",
    "pooled_bootstrap_ci": "kmrec_gpu.metrics.bootstrap",
    "per_user_ranking": "kmrec_gpu.metrics.ranking",
    "ranking_metrics": "kmrec_gpu.metrics.ranking",
    "top_k_items": "kmrec_gpu.metrics.ranking",
    "HALF_STAR": "kmrec_gpu.metrics.rating",
    "exact_match": "kmrec_gpu.metrics.rating",
    "mae": "kmrec_gpu.metrics.rating",
    "rating_metrics": "kmrec_gpu.metrics.rating",
    "relative_accuracy": "kmrec_gpu.metrics.rating",
    "rmse": "kmrec_gpu.metrics.rating",
    "within": "kmrec_gpu.metrics.rating",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
