"""Seed 001's user segments: K-means on the latent user factors of a fitted model.

The factors are the fitted model's user rows (``U·diag(s)`` for the SVDs, ``W`` for NMF),
clustered by the harness's K-means engine. Each segment is summarised from the training
ratings of its users: size, mean rating, and the genres its users rate most often
relative to everyone (lift = segment share of a genre's ratings / overall share).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmrec_gpu.cluster import KMeans
from kmrec_gpu.ratings import Ratings


def latent_segments(model: Any, train: Ratings, n_clusters: int = 8, *, random_state: int = 0,
                    backend: str = "cpu", top_genres: int = 3) -> tuple[np.ndarray, list[dict]]:
    """``(labels, summaries)``: ``labels[u]`` for every vocabulary user (-1 without
    training ratings), and one summary dict per segment."""
    factors = getattr(model, "user_factors_", None)
    if factors is None:
        raise RuntimeError("latent_segments needs a fitted factor model (user_factors_)")
    filled = model.filled_
    if filled.row_of_user.size != train.n_users:
        raise ValueError("train must be the Ratings the model was fitted on")
    km = KMeans(n_clusters, random_state=random_state, backend=backend).fit(factors)
    labels = np.full(train.n_users, -1, dtype=np.int64)
    known = filled.row_of_user >= 0
    labels[known] = km.labels_[filled.row_of_user[known]]
    seg = labels[train.users]
    n_ratings = np.bincount(seg, minlength=n_clusters)
    mean_rating = np.bincount(seg, train.ratings.astype(np.float64), minlength=n_clusters)
    out = []
    genre_counts = None
    if train.genres is not None and train.genres.shape[1]:
        g = train.genres[train.items].astype(np.float64)  # (ratings, genres)
        genre_counts = np.stack([g[seg == c].sum(axis=0) for c in range(n_clusters)])
        overall = g.sum(axis=0) / max(len(train), 1)
    for c in range(n_clusters):
        row: dict[str, Any] = {
            "segment": c,
            "users": int((labels == c).sum()),
            "ratings": int(n_ratings[c]),
            "mean_rating": float(mean_rating[c] / n_ratings[c]) if n_ratings[c] else float("nan"),
        }
        if genre_counts is not None and n_ratings[c]:
            lift = np.divide(genre_counts[c] / n_ratings[c], overall,
                             out=np.zeros_like(overall), where=overall > 0)
            top = np.argsort(-lift, kind="stable")[:top_genres]
            row["top_genres"] = [(train.genre_names[j], round(float(lift[j]), 3)) for j in top]
        out.append(row)
    return labels, out
