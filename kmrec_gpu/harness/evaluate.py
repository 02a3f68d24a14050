"""Fit, predict and score one model by its task: rating prediction, top-k lists, a
pipeline that maps a split to test predictions (seed 004's forest), or a probe that
measures a protocol which is no fit/predict (a cluster count, one training row's
prediction) and returns its own metrics."""

from __future__ import annotations

from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.metrics import per_user_ranking, rating_metrics
from kmrec_gpu.metrics import users as user_stats
from kmrec_gpu.metrics.ranking import ranking_summary
from kmrec_gpu.splits import TTSplit


def fit(task: str, model: Any, split: TTSplit) -> Any:
    if task == "pipeline":
        model.predictions_ = model.fit_predict(split)
        return model
    if task == "probe":
        return model.measure(split)
    return model.fit(split.train)


def test_users(split: TTSplit) -> np.ndarray:
    return np.unique(split.test.users)


# the recommenders score a dense users x items block: at 25M ratings all test users at
# once would need ~80 GB, so they are asked in slices that keep a block near 256 MB
SCORE_BLOCK_BYTES = 256 * 2**20


def predict(task: str, model: Any, split: TTSplit, k: int) -> np.ndarray:
    if task == "rating":
        return np.asarray(model.predict(split.test), dtype=np.float64)
    if task == "topk":
        users = test_users(split)
        step = max(1, SCORE_BLOCK_BYTES // (8 * max(split.train.n_items, 1)))
        return np.concatenate([model.recommend(users[i:i + step], k)
                               for i in range(0, max(len(users), 1), step)])
    return model.predictions_


def score(task: str, out: np.ndarray, split: TTSplit, *, seed: int, name: str,
          n_boot: int, k: int, threshold: float) -> tuple[dict[str, float], dict | None]:
    """The cell's metrics, and per test user the statistics behind them (None for a probe,
    or past :data:`kmrec_gpu.metrics.users.MAX_USERS` users) so that figures can be pooled
    over seeds and resampled by user later."""
    ids = split.test.user_ids
    if task == "topk":
        users = test_users(split)
        per_user, scored = per_user_ranking(out, users, split.test, train=split.train, k=k,
                                            threshold=threshold)
        m = ranking_summary(per_user, scored, out, users, k=k,
                            catalog_size=split.train.n_rated_items)
        stats = user_stats.ranking_stats(per_user, scored, k, ids)
        if n_boot and scored.size > 1:
            # resampling users, as for RMSE below
            ci = user_stats.user_bootstrap([stats], f"ndcg@{k}", n_resamples=n_boot,
                                           seed=seeding.int_seed(seed, "bootstrap", name))
            m.update({f"ndcg@{k}_ci_low": ci.ci_low, f"ndcg@{k}_ci_high": ci.ci_high})
        return m, stats if scored.size <= user_stats.MAX_USERS else None
    y = split.test.ratings.astype(np.float64)
    m = rating_metrics(y, out, scale=split.test.scale)
    stats = user_stats.rating_stats(split.test.users, y, out, ids)
    if n_boot and len(stats["users"]) > 1:
        # users are the resampled unit, as in every pooled figure of the claims
        ci = user_stats.user_bootstrap([stats], "rmse", n_resamples=n_boot,
                                       seed=seeding.int_seed(seed, "bootstrap", name))
        m.update(rmse_ci_low=ci.ci_low, rmse_ci_high=ci.ci_high)
    m["n_test"] = len(y)
    return m, stats if len(stats["users"]) <= user_stats.MAX_USERS else None


def artifacts(model: Any) -> dict[str, Any]:
    """What a CPU-vs-GPU comparison checks for parity, where the model has it."""
    out: dict[str, Any] = {}
    km = getattr(model, "kmeans_", None)
    if getattr(model, "raw_labels_", None) is not None:
        out["labels"] = np.asarray(model.raw_labels_)
    elif getattr(model, "labels_", None) is not None:
        out["labels"] = np.asarray(model.labels_)
    for src in (model, km):
        if src is not None and getattr(src, "inertia_", None) is not None:
            out["inertia"] = float(src.inertia_)
            break
    if getattr(model, "singular_values_", None) is not None:
        out["singular_values"] = np.asarray(model.singular_values_, dtype=np.float64)
    return out


def model_facts(model: Any) -> dict[str, Any]:
    """Small fitted facts worth keeping in a row (iterations, convergence, library, and
    which fused kernel ran: ``assign_path`` of the K-means, ``sddmm_path``)."""
    facts = {}
    km = getattr(model, "kmeans_", None)  # a recommender's inner K-means
    for attr in ("n_iter_", "converged_", "n_clusters_", "library_", "fallback_reason_",
                 "best_epoch_", "epochs_run_", "n_fallback_users_", "n_cold_test_users_",
                 "assign_path_", "sddmm_path_", "n_trials_", "tune_s_", "at_edge_",
                 "best_score_"):
        v = getattr(model, attr, None)
        if v is None and attr == "assign_path_":
            v = getattr(km, attr, None)
        if isinstance(v, (bool, int, float, str, np.integer, np.floating)):
            facts[attr.rstrip("_")] = v.item() if hasattr(v, "item") else v
    best = getattr(model, "best_params_", None)  # a search's choice, kept with its budget
    if isinstance(best, dict):
        facts["best_params"] = {k: v.item() if hasattr(v, "item") else v for k, v in best.items()}
    return facts
