"""The leakage check for top-k recommenders (``kmrec_gpu.leakage`` checks rating predictions).

Fit and recommend; give every test rating another allowed value
(:func:`kmrec_gpu.leakage.perturb_test`) and move every test row to another movie
(:func:`move_test_items`: implicit-feedback models ignore values); fit again from scratch
and recommend to the same users. The lists, which are all the ranking metrics read besides
the test set itself, must be identical. A recommender that counts test ratings anywhere
(popularity over all rows, clusters fitted before the split) reorders some list, and the
check says how many.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.leakage import LeakageError, perturb_test
from kmrec_gpu.ratings import Ratings
from kmrec_gpu.splits import TTSplit


@dataclass(frozen=True)
class RecLeakageReport:
    n_users: int
    n_changed_ratings: int
    n_users_moved: int
    n_slots_moved: int

    @property
    def leaks(self) -> bool:
        return self.n_users_moved > 0


def scored_users(split: TTSplit) -> np.ndarray:
    """User codes with at least one test rating: the users a ranking evaluation scores."""
    return np.flatnonzero(np.bincount(split.test.users, minlength=split.test.n_users) > 0)


def fit_recommend_estimator(make_model: Callable[[], Any], *, k: int = 10
                            ) -> Callable[[TTSplit], np.ndarray]:
    """Adapter: an estimator factory as a ``split -> recommendations`` pipeline, fitted on
    the training part only and asked for the test users."""
    return lambda split: np.asarray(make_model().fit(split.train).recommend(
        scored_users(split), k))


def with_test_rows(split: TTSplit) -> Ratings:
    """Train and test rows together: what a leaky pipeline fits on (for the tests)."""
    tr, te = split.train, split.test
    ts = None if tr.timestamps is None else np.concatenate([tr.timestamps, te.timestamps])
    return dataclasses.replace(tr, users=np.concatenate([tr.users, te.users]),
                               items=np.concatenate([tr.items, te.items]),
                               ratings=np.concatenate([tr.ratings, te.ratings]),
                               timestamps=ts)


def move_test_items(split: TTSplit, seed: int = 0) -> TTSplit:
    """The same split with every test row moved to another movie (same user, same
    rating): an implicit-feedback model that counts test rows as interactions ignores
    their values, so changed values alone would not show it; moved rows do."""
    t = split.test
    step = seeding.rng(seed, "leakage", "items").integers(1, max(t.n_items, 2), size=len(t))
    items = ((t.items.astype(np.int64) + step) % max(t.n_items, 1)).astype(t.items.dtype)
    return dataclasses.replace(split, test=dataclasses.replace(t, items=items))


def check_recommender_leakage(fit_recommend: Callable[[TTSplit], np.ndarray],
                              split: TTSplit, *, seed: int = 0) -> RecLeakageReport:
    before = np.asarray(fit_recommend(split))
    changed = move_test_items(perturb_test(split, seed), seed)
    after = np.asarray(fit_recommend(changed))
    if before.shape != after.shape:
        raise LeakageError(f"recommendation shape changed: {before.shape} -> {after.shape}")
    moved = before != after
    return RecLeakageReport(
        n_users=int(before.shape[0]),
        n_changed_ratings=int((changed.test.ratings != split.test.ratings).sum()),
        n_users_moved=int(moved.any(axis=1).sum()) if moved.ndim == 2 else int(moved.any()),
        n_slots_moved=int(moved.sum()),
    )


def assert_no_recommender_leakage(fit_recommend: Callable[[TTSplit], np.ndarray],
                                  split: TTSplit, *, seed: int = 0) -> RecLeakageReport:
    rep = check_recommender_leakage(fit_recommend, split, seed=seed)
    if rep.leaks:
        raise LeakageError(
            f"{rep.n_users_moved} of {rep.n_users} users' recommendation lists moved "
            f"({rep.n_slots_moved} slots) when only the test rows changed (their ratings, and "
            "the movies they are on): the recommender reads test ratings")
    return rep
