"""Every split's exact rows for seed 0, pinned: a change to a seeded stream's name, a
default, a method name or a recorded parameter changes every published split, so it must
show here first (and then be a deliberate, documented re-pin). Plus the edges the
mutation run found unguarded: users with too few ratings, the range of k and n_folds,
and the error messages."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from kmrec_gpu import splits
from kmrec_gpu.errors import DataError
from tests.test_splits import make_ratings

R = make_ratings(n_users=25, n_items=30, per_user=9, seed=5)

# (sha256[:16] of the sorted test (user id, item id) pairs, test rows, method, params):
# pinned at the commit that added this file
PINNED = {
    "holdout": ("1f0751397f6dfe41", 22, "holdout",
        {'test_fraction': 0.1, 'seed': 0, 'drop_cold': False}),
    "per_user_k": ("ee90a318e7ea1f24", 50, "per_user",
        {'fraction': None, 'k': 2, 'min_train': 1, 'seed': 0, 'drop_cold': False}),
    "per_user_fraction": ("a9a21b636007f5c8", 75, "per_user",
        {'fraction': 0.3, 'k': None, 'min_train': 1, 'seed': 0, 'drop_cold': False}),
    "temporal": ("fda023a1c6a5631c", 22, "temporal",
        {'test_fraction': 0.1, 'seed': 0, 'drop_cold': False}),
    "leave_last_k": ("40f2e13734965ced", 25, "leave_last_k",
        {'k': 1, 'min_train': 1, 'seed': 0, 'drop_cold': False}),
    "validation_split": ("1f0751397f6dfe41", 22, "holdout",
        {'test_fraction': 0.1, 'seed': 0, 'drop_cold': False}),
    "kfold_0": ("8c28263d64a515e1", 45, "kfold",
        {'n_folds': 5, 'fold': 0, 'seed': 0, 'drop_cold': False}),
    "kfold_1": ("bd6e081a7d3811b7", 45, "kfold",
        {'n_folds': 5, 'fold': 1, 'seed': 0, 'drop_cold': False}),
    "kfold_2": ("b0c6069e8932d47b", 45, "kfold",
        {'n_folds': 5, 'fold': 2, 'seed': 0, 'drop_cold': False}),
    "kfold_3": ("013d7345a85c0f8c", 45, "kfold",
        {'n_folds': 5, 'fold': 3, 'seed': 0, 'drop_cold': False}),
    "kfold_4": ("105680fe6586bf89", 45, "kfold",
        {'n_folds': 5, 'fold': 4, 'seed': 0, 'drop_cold': False}),
}


def _digest(s: splits.TTSplit) -> str:
    pairs = sorted(zip(s.test.user_ids[s.test.users].tolist(),
                       s.test.item_ids[s.test.items].tolist()))
    return hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]


def _run(name: str) -> splits.TTSplit:
    if name.startswith("kfold_"):
        return list(splits.kfold(R))[int(name.split("_")[1])]
    return {"holdout": lambda: splits.holdout(R),
            "per_user_k": lambda: splits.per_user(R, k=2),
            "per_user_fraction": lambda: splits.per_user(R, fraction=0.3),
            "temporal": lambda: splits.temporal(R),
            "leave_last_k": lambda: splits.leave_last_k(R),
            "validation_split": lambda: splits.validation_split(R)}[name]()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_each_split_with_its_defaults_is_the_pinned_one(name):
    s = _run(name)
    assert (_digest(s), len(s.test), s.method, s.params) == PINNED[name]
    assert len(s.train) + len(s.test) == len(R) and s.n_dropped_cold == 0


@pytest.mark.parametrize(("method", "params"), [
    ("holdout", {"test_fraction": 0.1}), ("per_user", {"k": 2}),
    ("temporal", {"test_fraction": 0.1}), ("leave_last_k", {"k": 1}),
    ("kfold", {"n_folds": 5, "fold": 3})])
def test_make_split_by_name_is_the_function(method, params):
    key = {"holdout": "holdout", "per_user": "per_user_k", "temporal": "temporal",
           "leave_last_k": "leave_last_k", "kfold": "kfold_3"}[method]
    s = splits.make_split(R, method, seed=0, **params)
    assert _digest(s) == PINNED[key][0] and s.method == PINNED[key][2]


def test_leave_last_k_keeps_min_train_for_users_with_few_ratings():
    r = make_ratings(n_users=6, n_items=10, per_user=3, seed=1)
    s = splits.leave_last_k(r, k=2, min_train=2)
    # 3 ratings each, 2 kept: one test row per user, never the two asked for
    assert (np.bincount(s.test.users, minlength=r.n_users) == 1).all()
    s = splits.leave_last_k(r, k=1, min_train=3)
    assert len(s.test) == 0  # no user can spare one
    s = splits.leave_last_k(r, k=5, min_train=0)
    assert len(s.test) == len(r)


def test_the_ranges_and_their_messages():
    with pytest.raises(ValueError, match=r"^k must be >= 1, got 0$"):
        splits.leave_last_k(R, k=0)
    assert len(splits.leave_last_k(R, k=1).test) == 25
    with pytest.raises(ValueError, match=r"^n_folds must be in \[2, 225\], got 1$"):
        list(splits.kfold(R, 1))
    with pytest.raises(ValueError, match=r"^n_folds must be in \[2, 225\], got 226$"):
        list(splits.kfold(R, 226))
    assert len(list(splits.kfold(R, 2))) == 2
    small = make_ratings(n_users=2, n_items=5, per_user=2, seed=0)
    assert [len(s.test) for s in splits.kfold(small, len(small))] == [1] * len(small)
    bare = make_ratings(timestamps=False)
    for fn in (splits.temporal, splits.leave_last_k):
        name = fn.__name__
        with pytest.raises(DataError, match=rf"^{name} split needs timestamps; toy has none$"):
            fn(bare)
    with pytest.raises(ValueError, match=r"^fold 5 out of range$"):
        splits.make_split(R, "kfold", seed=0, fold=5)
    with pytest.raises(ValueError, match=r"^unknown split 'nope'; expected one of"):
        splits.make_split(R, "nope", seed=0)


@pytest.mark.parametrize("drop_cold", [False, True])
def test_drop_cold_is_recorded_and_off_by_default(drop_cold):
    for s in (splits.holdout(R, 0.3, drop_cold=drop_cold),
              splits.leave_last_k(R, k=3, drop_cold=drop_cold),
              next(splits.kfold(R, 2, drop_cold=drop_cold))):
        assert s.params["drop_cold"] is drop_cold
        assert s.summary()["cold_rows"] == 0 or not drop_cold


def test_tie_breaking_streams_are_pinned():
    """Every timestamp equal: the seeded tie-break alone picks the test rows."""
    flat = make_ratings(n_users=12, n_items=20, per_user=6, seed=2)
    flat = dataclasses.replace(flat, timestamps=np.zeros(len(flat), dtype=np.int64))
    assert _digest(splits.leave_last_k(flat, k=2)) == "f1959e1353d44f69"
    assert _digest(splits.temporal(flat, 0.25)) == "00e1a9267e415bc8"


def test_per_user_ranges_messages_and_users_with_few_ratings():
    r = make_ratings(n_users=6, n_items=10, per_user=3, seed=1)
    assert (np.bincount(splits.per_user(r, k=1).test.users, minlength=6) == 1).all()
    assert len(splits.per_user(r, k=3, min_train=0).test) == len(r)
    assert len(splits.per_user(r, k=1, min_train=3).test) == 0  # none can spare one
    assert len(splits.per_user(r, fraction=0.5, min_train=3).test) == 0
    for bad, msg in (({}, r"^per_user needs exactly one of fraction= or k=$"),
                     ({"k": 1, "fraction": 0.5}, r"^per_user needs exactly one of"),
                     ({"k": 0}, r"^k must be >= 1, got 0$"),
                     ({"k": 1, "min_train": -1}, r"^min_train must be >= 0, got -1$"),
                     ({"fraction": 1.0}, r"^fraction must be in \(0, 1\), got 1\.0$")):
        with pytest.raises(ValueError, match=msg):
            splits.per_user(r, **bad)
    with pytest.raises(ValueError, match=r"^test_fraction must be in \(0, 1\), got 0\.0$"):
        splits.temporal(r, 0.0)
    with pytest.raises(ValueError, match=r"^test_fraction must be in \(0, 1\), got 1\.5$"):
        splits.holdout(r, 1.5)


def test_validation_split_takes_its_fraction_and_seed():
    a = splits.validation_split(R, 0.3)
    assert len(a.test) == round(0.3 * len(R))
    assert _digest(splits.validation_split(R, seed=1)) != _digest(splits.validation_split(R))
    assert _digest(splits.validation_split(R, 0.3, seed=4)) == \
        _digest(splits.holdout(R, 0.3, seed=4))
