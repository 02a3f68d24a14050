"""Baselines a clustering recommender has to beat: global popularity and random items."""

from __future__ import annotations

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.models._recbase import (
    RecommenderMixin,
    check_k,
    check_threshold,
    check_users,
    grouped_top_k,
    item_counts,
    rankings,
    top_k,
)
from kmrec_gpu.ratings import Ratings


class GlobalPopularity(RecommenderMixin):
    """Items ranked by their number of training ratings ``>= threshold`` (all ratings when
    ``threshold`` is None); items nobody rated in training are never recommended."""

    def __init__(self, *, threshold: float | None = 4.0) -> None:
        self.threshold = threshold

    def fit(self, train: Ratings) -> GlobalPopularity:
        check_threshold(self.threshold)
        self._store_train(train)
        counts = item_counts(train, self.threshold)
        # a tie in liked counts goes to the item with more ratings of any value
        self.item_counts_ = counts
        any_counts = item_counts(train, None)
        self.scores_ = np.where(any_counts > 0, counts + 0.5 * any_counts /
                                (any_counts.max() + 1.0), -np.inf)
        self.rankings_ = rankings(self.scores_[None, :])
        return self

    def recommend(self, users: np.ndarray, k: int = 10) -> np.ndarray:
        self._check_fitted()
        k, users = check_k(k), check_users(users, self.n_users_)
        return grouped_top_k(*self.rankings_, np.zeros(users.size, np.int64), users,
                             self.seen_, k)


class RandomRecommender(RecommenderMixin):
    """Uniformly random unseen items among those with a training rating; each user's
    draw comes from the stream (random_state, "random-rec", user code), so a user's list
    does not depend on which other users are asked for."""

    def __init__(self, *, random_state: int = 0) -> None:
        self.random_state = random_state

    def fit(self, train: Ratings) -> RandomRecommender:
        seeding.seed_sequence(self.random_state)  # validates the seed up front
        self._store_train(train)
        self.catalog_ = np.bincount(train.items, minlength=train.n_items) > 0
        return self

    def recommend(self, users: np.ndarray, k: int = 10) -> np.ndarray:
        self._check_fitted()
        k, users = check_k(k), check_users(users, self.n_users_)
        scores = np.empty((users.size, self.n_items_))
        for j, u in enumerate(users):
            scores[j] = seeding.rng(self.random_state, "random-rec", str(int(u))).random(
                self.n_items_)
        scores[:, ~self.catalog_] = -np.inf
        return top_k(scores, users, self.seen_, k)
