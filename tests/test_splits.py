"""Every split: a partition of the rows, the promised sizes, seeds that reproduce."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmrec_gpu import splits
from kmrec_gpu.errors import DataError
from kmrec_gpu.ratings import RatingScale, from_arrays


def make_ratings(n_users=30, n_items=40, per_user=12, seed=0, timestamps=True):
    g = np.random.default_rng(seed)
    users = np.repeat(np.arange(1, n_users + 1), per_user)
    items = np.concatenate([g.choice(n_items, per_user, replace=False) + 1
                            for _ in range(n_users)])
    ratings = g.integers(1, 11, size=len(users)) / 2
    ts = g.integers(0, 50, size=len(users)) if timestamps else None  # many ties on purpose
    return from_arrays(users, items, ratings, ts, scale=RatingScale(0.5, 5, 0.5), name="toy")


def row_keys(r):
    return set(zip(r.users.tolist(), r.items.tolist()))


def assert_partition(r, s):
    train, test = row_keys(s.train), row_keys(s.test)
    assert not train & test, "a rating is in both train and test"
    assert train | test == row_keys(r) or s.n_dropped_cold > 0
    assert len(s.train) + len(s.test) + s.n_dropped_cold == len(r)
    assert s.train.n_users == r.n_users and s.test.n_items == r.n_items  # shared vocab


ALL = [
    ("holdout", dict(test_fraction=0.2)),
    ("per_user", dict(fraction=0.25)),
    ("per_user", dict(k=3)),
    ("temporal", dict(test_fraction=0.2)),
    ("leave_last_k", dict(k=2)),
    ("kfold", dict(n_folds=4, fold=1)),
]


@pytest.mark.parametrize("method, params", ALL)
def test_partition_and_seed_reproducibility(method, params):
    r = make_ratings()
    a = splits.make_split(r, method, seed=0, **dict(params))
    b = splits.make_split(r, method, seed=0, **dict(params))
    c = splits.make_split(r, method, seed=1, **dict(params))
    assert_partition(r, a)
    np.testing.assert_array_equal(a.test.users, b.test.users)
    np.testing.assert_array_equal(a.test.items, b.test.items)
    if method != "temporal":  # temporal depends on the seed only through ties
        assert row_keys(a.test) != row_keys(c.test)
    assert a.summary()["n_test"] == len(a.test)


def test_holdout_size():
    r = make_ratings()
    s = splits.holdout(r, 0.1, seed=0)
    assert len(s.test) == round(0.1 * len(r))


def test_per_user_k_and_min_train():
    r = make_ratings(per_user=4)
    s = splits.per_user(r, k=3, min_train=2, seed=0)
    assert np.bincount(s.test.users, minlength=r.n_users).max() == 2  # capped by min_train
    assert np.bincount(s.train.users, minlength=r.n_users).min() == 2
    s = splits.per_user(r, fraction=0.5, seed=0)
    assert (np.bincount(s.test.users, minlength=r.n_users) == 2).all()


def test_temporal_test_is_the_latest():
    r = make_ratings()
    s = splits.temporal(r, 0.25, seed=0)
    assert s.train.timestamps.max() <= s.test.timestamps.min()
    assert len(s.test) == round(0.25 * len(r))


def test_leave_last_k_takes_each_users_newest():
    r = make_ratings()
    s = splits.leave_last_k(r, k=2, seed=0)
    for u in range(r.n_users):
        tr = s.train.timestamps[s.train.users == u]
        te = s.test.timestamps[s.test.users == u]
        assert len(te) == 2 and te.min() >= tr.max()


def test_kfold_test_sets_partition_the_data():
    r = make_ratings()
    folds = list(splits.kfold(r, 5, seed=3))
    seen = [row_keys(f.test) for f in folds]
    assert sum(len(x) for x in seen) == len(r)
    assert set().union(*seen) == row_keys(r)
    for f in folds:
        assert_partition(r, f)


def test_drop_cold_removes_and_counts_unseen_users_and_items():
    # user 9 and item 99 are rated only once, so a test row with them is cold
    base = make_ratings()
    r = from_arrays(
        np.concatenate([base.user_ids[base.users], [9999]]),
        np.concatenate([base.item_ids[base.items], [99]]),
        np.concatenate([base.ratings, [3.0]]),
        np.concatenate([base.timestamps, [1000]]),
        scale=base.scale,
    )
    s = splits.temporal(r, 0.2, seed=0)  # the newest row, (9999, 99), is in test
    assert s.summary()["cold_rows"] >= 1
    d = splits.temporal(r, 0.2, seed=0, drop_cold=True)
    assert d.n_dropped_cold == s.summary()["cold_rows"] and d.summary()["cold_rows"] == 0
    assert len(d.test) == len(s.test) - d.n_dropped_cold


def test_split_errors():
    r = make_ratings(timestamps=False)
    with pytest.raises(ValueError, match="test_fraction must be in"):
        splits.holdout(r, 1.5)
    with pytest.raises(ValueError, match="exactly one of"):
        splits.per_user(r, fraction=0.1, k=2)
    with pytest.raises(DataError, match="temporal split needs timestamps"):
        splits.temporal(r)
    with pytest.raises(ValueError, match="unknown split"):
        splits.make_split(r, "random", seed=0)
    with pytest.raises(TypeError, match="0 is a valid seed"):
        splits.holdout(r, 0.1, seed=None)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), frac=st.floats(0.05, 0.95),
       method=st.sampled_from(["holdout", "per_user", "temporal"]))
def test_property_never_shares_a_rating(seed, frac, method):
    r = make_ratings(n_users=8, n_items=10, per_user=5, seed=seed % 1000)
    key = "fraction" if method == "per_user" else "test_fraction"
    s = splits.make_split(r, method, seed=seed, **{key: frac})
    assert_partition(r, s)


@pytest.mark.data
def test_ml100k_per_user_k10_matches_the_official_ua_sizes(ml100k):
    s = splits.per_user(ml100k, k=10, seed=0)
    assert (len(s.train), len(s.test)) == (90_570, 9_430)  # as ua.base / ua.test


@pytest.mark.parametrize("method", ["holdout", "temporal"])
def test_test_size_is_rounded_not_truncated(method):
    r = make_ratings()  # 360 rows: 0.1264 of them is 45.5 -> 46 test rows
    s = getattr(splits, method)(r, 0.1264, seed=0)
    assert len(s.test) == 46 and len(s.train) == 360 - 46


def test_drop_cold_drops_a_row_whose_user_or_item_alone_is_unseen():
    """One test row with only its user unseen in train, one with only its item unseen, one
    warm: both cold rows go, each counted on its own side."""
    base = make_ratings(timestamps=False)
    n = len(base)
    rated = set(base.item_ids[base.items].tolist())
    by_user_1 = set(base.item_ids[base.items[base.user_ids[base.users] == 1]].tolist())
    warm_item = min(rated - by_user_1)  # rated in train, not yet by user 1
    users = np.concatenate([base.user_ids[base.users], [9999, 1, 1]])
    items = np.concatenate([base.item_ids[base.items], [warm_item, 777, warm_item]])
    # the three extra rows are the newest, so the temporal split puts them in test
    ts = np.concatenate([np.zeros(n, dtype=np.int64), [10, 11, 12]])
    r = from_arrays(users, items, np.concatenate([base.ratings, [3.0, 4.0, 5.0]]), ts,
                    scale=base.scale)
    s = splits.temporal(r, 3 / (n + 3), seed=0)
    assert len(s.test) == 3
    summary = s.summary()
    assert (summary["cold_user_rows"], summary["cold_item_rows"], summary["cold_rows"]) \
        == (1, 1, 2)
    d = splits.temporal(r, 3 / (n + 3), seed=0, drop_cold=True)
    assert d.n_dropped_cold == 2 and len(d.test) == 1
    assert (d.test.user_ids[d.test.users[0]], d.test.item_ids[d.test.items[0]]) \
        == (1, warm_item)


def test_a_user_or_movie_with_one_training_rating_is_warm():
    """drop_cold keeps a test row whose user, and one whose movie, has a single training
    rating: seen once is seen."""
    base = make_ratings(timestamps=False)
    n = len(base)
    users = np.concatenate([base.user_ids[base.users], [9999, 9999, 1, 2]])
    items = np.concatenate([base.item_ids[base.items], [base.item_ids[0], base.item_ids[1],
                                                        777, 777]])
    # the newest rows are the test set: each of user 9999 and movie 777 is once in train
    ts = np.concatenate([np.zeros(n, dtype=np.int64), [10, 11, 10, 12]])
    r = from_arrays(users, items, np.concatenate([base.ratings, [3.0, 4.0, 5.0, 2.0]]), ts,
                    scale=base.scale)
    s = splits.temporal(r, 2 / (n + 4), seed=0)
    assert s.summary() == {
        "method": "temporal", "params": {"test_fraction": 2 / (n + 4), "seed": 0,
                                         "drop_cold": False},
        "n_train": n + 2, "n_test": 2, "train_users": s.train.n_rated_users,
        "train_items": s.train.n_rated_items, "test_users": 2, "test_items": 2,
        "cold_user_rows": 0, "cold_item_rows": 0, "cold_rows": 0, "dropped_cold": 0}
    assert (s.train.n_rated_users, s.train.n_rated_items) == (
        len(set(s.train.users.tolist())), len(set(s.train.items.tolist())))
    d = splits.temporal(r, 2 / (n + 4), seed=0, drop_cold=True)
    assert len(d.test) == 2 and d.n_dropped_cold == 0
    assert sorted(zip(d.test.user_ids[d.test.users].tolist(),
                      d.test.item_ids[d.test.items].tolist())) == [(2, 777),
                                                                   (9999, base.item_ids[1])]


def test_make_split_kfold_takes_its_fold_and_parameters():
    r = make_ratings()
    first = splits.make_split(r, "kfold", seed=3)
    assert first.test.ratings.tolist() == next(iter(splits.kfold(r, seed=3))).test.ratings.tolist()
    third = splits.make_split(r, "kfold", seed=3, n_folds=4, fold=2)
    want = list(splits.kfold(r, seed=3, n_folds=4))[2]
    assert (third.test.users.tolist(), third.test.items.tolist()) == (
        want.test.users.tolist(), want.test.items.tolist())
    with pytest.raises(ValueError, match=r"^unknown split 'nope'; expected one of \[.*'kfold'\]$"):
        splits.make_split(r, "nope", seed=0)
