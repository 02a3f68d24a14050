"""The leakage check every model must pass, rating models and top-k recommenders alike.

Rating models: fit, predict the test rows; give the test rows other ratings; fit again
from scratch and predict; the predictions must be identical. A model (or a whole
pipeline) that reads test ratings anywhere — a user mean over all rows, a scaler fitted on
everything, clusters computed before the split — moves, and the check names by how much.

Recommenders: fit and recommend; give every test rating another allowed value and move
every test row to another movie (:func:`move_test_items`: implicit-feedback models ignore
values); fit again from scratch and recommend to the same users. The lists, which are all
the ranking metrics read besides the test set itself, must be identical. A recommender
that counts test ratings anywhere (popularity over all rows, clusters fitted before the
split) reorders some list, and the check says how many.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.errors import KmrecError
from kmrec_gpu.ratings import Ratings
from kmrec_gpu.splits import TTSplit


class LeakageError(KmrecError, AssertionError):
    """Predictions moved when only test ratings changed."""


@dataclass(frozen=True)
class LeakageReport:
    n_rows: int
    n_changed_ratings: int
    n_moved: int
    max_abs_delta: float

    @property
    def leaks(self) -> bool:
        return self.n_moved > 0


def perturb_test(split: TTSplit, seed: int = 0) -> TTSplit:
    """The same split with every test rating replaced by a different allowed value."""
    values = split.test.scale.values
    r = seeding.rng(seed, "leakage").integers(0, len(values) - 1, size=len(split.test))
    cur = np.searchsorted(values, split.test.ratings)
    # skipping the current value's index guarantees every rating really changes
    new = values[r + (r >= cur)]
    return dataclasses.replace(split, test=split.test.with_ratings(new))


def fit_predict_estimator(make_model: Callable[[], Any]) -> Callable[[TTSplit], np.ndarray]:
    """Adapter: an estimator factory as a ``split -> test predictions`` pipeline."""
    return lambda split: np.asarray(make_model().fit(split.train).predict(split.test))


def check_leakage(
    fit_predict: Callable[[TTSplit], np.ndarray], split: TTSplit, *, seed: int = 0
) -> LeakageReport:
    before = np.asarray(fit_predict(split), dtype=np.float64)
    changed = perturb_test(split, seed)
    after = np.asarray(fit_predict(changed), dtype=np.float64)
    if before.shape != after.shape:
        raise LeakageError(f"prediction shape changed: {before.shape} -> {after.shape}")
    delta = np.abs(before - after)
    moved = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    return LeakageReport(
        n_rows=len(before),
        n_changed_ratings=int((changed.test.ratings != split.test.ratings).sum()),
        n_moved=int(moved.sum()),
        max_abs_delta=float(np.nanmax(delta)) if delta.size else 0.0,
    )


def assert_no_leakage(
    fit_predict: Callable[[TTSplit], np.ndarray], split: TTSplit, *, seed: int = 0
) -> LeakageReport:
    rep = check_leakage(fit_predict, split, seed=seed)
    if rep.leaks:
        raise LeakageError(
            f"{rep.n_moved} of {rep.n_rows} test predictions moved (max |delta| "
            f"{rep.max_abs_delta:.3g}) when only the test ratings changed: the model "
            "reads test ratings"
        )
    return rep


# -- top-k recommenders --------------------------------------------------------------------


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
