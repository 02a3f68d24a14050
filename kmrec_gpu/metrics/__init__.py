"""Rating metrics, ranking metrics at k, and bootstrap confidence intervals."""

from kmrec_gpu.metrics.bootstrap import bootstrap_ci, pooled_bootstrap_ci
from kmrec_gpu.metrics.ranking import per_user_ranking, ranking_metrics, top_k_items
from kmrec_gpu.metrics.rating import (
    HALF_STAR,
    exact_match,
    mae,
    rating_metrics,
    relative_accuracy,
    rmse,
    within,
)

__all__ = [
    "HALF_STAR", "bootstrap_ci", "exact_match", "mae", "per_user_ranking", "pooled_bootstrap_ci", "ranking_metrics", "rating_metrics",
    "relative_accuracy", "rmse", "top_k_items", "within",
]
