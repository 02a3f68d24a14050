"""The synthetic generator: exact shape, MovieLens-like statistics, determinism, presets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from kmrec_gpu.data.synthetic import (
    SYNTHETIC_PRESETS,
    SyntheticSpec,
    synthetic,
    synthetic_preset,
)
from kmrec_gpu.errors import UnknownDataset

COLUMNS = ("users", "items", "ratings", "timestamps")
# ml-latest-small's counts of 0.5, 1.0, ..., 5.0
ML_SMALL = np.array([1370, 2811, 1791, 7551, 5550, 20047, 13136, 26818, 8551, 13211])


@pytest.fixture(scope="module")
def small_ml():
    """ml-latest-small's size: big enough for distribution checks, ~0.05 s to build."""
    return synthetic_preset("synthetic-ml-latest-small", seed=0)


def same(a, b) -> bool:
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in (*COLUMNS, "genres"))


def check_shape(r, n_users, n_items, n_ratings, min_user_ratings):
    assert len(r) == n_ratings
    r.validate()  # codes in range, half-star grid, no duplicate pairs
    assert r.duplicate_pairs().size == 0
    per_user = np.bincount(r.users, minlength=n_users)
    assert per_user.min() >= min_user_ratings and per_user.max() <= n_items
    assert (r.users.dtype, r.items.dtype, r.ratings.dtype, r.timestamps.dtype) == (
        np.int32, np.int32, np.float32, np.int64)
    assert np.array_equal(r.user_ids, np.arange(1, n_users + 1))
    assert np.array_equal(r.item_ids, np.arange(1, n_items + 1))


@pytest.mark.parametrize("n_users, n_items, n_ratings, floor", [
    (100, 200, 3_000, 20),
    (50, 100, 4_800, 20),   # most users rate most of the catalogue
    (50, 100, 5_000, 20),   # every pair rated
    (40, 300, 800, 20),     # every user at the floor
    (7, 3, 10, 1),
])
def test_exact_counts_distinct_pairs_and_floor(n_users, n_items, n_ratings, floor):
    r = synthetic(n_users, n_items, n_ratings, min_user_ratings=floor, seed=5)
    check_shape(r, n_users, n_items, n_ratings, floor)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(1, 60), st.integers(1, 5), st.floats(0, 1),
       st.integers(0, 2**32))
def test_any_feasible_request_is_met_exactly(n_users, n_items, floor, fill, seed):
    floor = min(floor, n_items)
    lo, hi = n_users * floor, n_users * n_items
    n_ratings = lo + int(fill * (hi - lo))
    r = synthetic(n_users, n_items, n_ratings, min_user_ratings=floor, seed=seed,
                  rank=3, n_genres=4)
    check_shape(r, n_users, n_items, n_ratings, floor)


def test_same_seed_same_bytes_whatever_the_chunking():
    a = synthetic(300, 500, 20_000, seed=0)
    for chunk in (1, 17, 10_000):
        assert same(a, synthetic(300, 500, 20_000, seed=0, chunk_users=chunk))
    assert same(a, synthetic(300, 500, 20_000, seed=0, progress=True))


def test_seeds_differ_and_zero_is_a_seed():
    a, b = synthetic(300, 500, 20_000, seed=0), synthetic(300, 500, 20_000, seed=1)
    assert not np.array_equal(a.items, b.items)
    assert np.mean(a.ratings != b.ratings) > 0.5
    assert not np.array_equal(a.genres, b.genres)
    assert a.meta["seed"] == 0 and b.meta["seed"] == 1


def test_histogram_is_ml_latest_smalls(small_ml):
    values, counts = np.unique(small_ml.ratings, return_counts=True)
    assert np.allclose(values, np.arange(1, 11) * 0.5)
    assert values[np.argmax(counts)] == 4.0
    assert 3.3 <= small_ml.ratings.mean() <= 3.7
    half = np.isin(values, [0.5, 1.5, 2.5, 3.5, 4.5])
    assert counts[half].sum() < counts[~half].sum()
    target = ML_SMALL / ML_SMALL.sum()
    assert np.abs(counts / counts.sum() - target).max() < 0.005


def test_item_popularity_is_heavy_tailed_and_shuffled(small_ml):
    counts = np.bincount(small_ml.items, minlength=small_ml.n_items)
    top = np.sort(counts)[::-1]
    assert top[: len(top) // 10].sum() > 0.4 * top.sum()
    assert np.median(counts) < 0.5 * counts.mean() and top[0] > 20 * np.median(counts)
    # the head is not items 1, 2, 3...: popularity is unrelated to the id
    assert abs(np.corrcoef(np.arange(len(counts)), counts)[0, 1]) < 0.1
    # but like MovieLens, no item is rated by nearly everyone
    assert top[0] < 0.8 * small_ml.n_users


def test_popular_items_are_rated_a_little_higher(small_ml):
    counts = np.bincount(small_ml.items, minlength=small_ml.n_items)
    means = np.bincount(small_ml.items, small_ml.ratings, small_ml.n_items) / np.maximum(counts, 1)
    ok = counts >= 5
    assert 0.05 < np.corrcoef(np.log(counts[ok]), means[ok])[0, 1] < 0.6


def test_user_activity_is_heavy_tailed(small_ml):
    per_user = np.sort(np.bincount(small_ml.users))[::-1]
    assert per_user[0] > 10 * np.median(per_user)
    assert per_user[: len(per_user) // 10].sum() > 0.3 * per_user.sum()
    assert per_user[-1] >= 20


def test_timestamps_are_plausible_and_spread_within_users(small_ml):
    ts = small_ml.timestamps
    assert ts.min() >= 820_454_400 and ts.max() < 1_538_352_000  # 1996-01-01 .. 2018-10-01
    first_user = ts[small_ml.users == 0]
    assert len(np.unique(first_user)) > 1


def test_genres(small_ml):
    g = small_ml.genres
    assert g.shape == (small_ml.n_items, 19) and g.dtype == np.bool_
    assert small_ml.genre_names[:2] == ("Genre00", "Genre01") and len(small_ml.genre_names) == 19
    assert g.any(axis=1).all()
    freq = g.mean(axis=0)
    assert freq[0] > 0.3 and freq[-1] < 0.1 and 1.5 < g.sum(axis=1).mean() < 3.0


def _cluster_rmse(r, labels, k, test):
    """Held-out RMSE of user mean + the user's cluster's (shrunk) mean offset on the item."""
    tr = ~test
    y = r.ratings.astype(np.float64)
    umean = np.bincount(r.users[tr], y[tr], r.n_users) / np.bincount(r.users[tr],
                                                                      minlength=r.n_users)
    key = labels[r.users] * r.n_items + r.items
    res = y - umean[r.users]
    dev = np.bincount(key[tr], res[tr], k * r.n_items) / (
        np.bincount(key[tr], minlength=k * r.n_items) + 5.0)
    pred = umean[r.users[test]] + dev[key[test]]
    return float(np.sqrt(np.mean((y[test] - pred) ** 2)))


def _genre_profiles(r, genres, train):
    u, i = r.users[train], r.items[train]
    y = r.ratings[train].astype(np.float64)
    umean = np.bincount(u, y, r.n_users) / np.bincount(u, minlength=r.n_users)
    shape = (r.n_users, r.n_items)
    rated = sp.csr_matrix((y - umean[u], (u, i)), shape=shape)
    seen = sp.csr_matrix((np.ones(len(u)), (u, i)), shape=shape)
    g = genres.astype(np.float64)
    return np.asarray(rated @ g) / np.maximum(np.asarray(seen @ g), 1.0)


@pytest.mark.parametrize("seed", [1, 4])
def test_genre_profiles_cluster_users_with_real_signal(seed):
    """K-means on users' genre profiles predicts held-out ratings better than the same
    K-means on profiles from shuffled genres (which carry no signal)."""
    from sklearn.cluster import KMeans

    r = synthetic(600, 1_500, 60_000, seed=seed)
    rng = np.random.default_rng(0)
    test = rng.random(len(r)) < 0.2
    k = 8
    rmse = {}
    for what, genres in (("genres", r.genres), ("shuffled", r.genres[rng.permutation(r.n_items)])):
        labels = KMeans(k, n_init=4, random_state=0).fit_predict(_genre_profiles(r, genres, ~test))
        rmse[what] = _cluster_rmse(r, labels, k, test)
    assert rmse["genres"] < rmse["shuffled"] - 0.01, rmse


def test_meta_name_and_summary():
    r = synthetic(100, 200, 3_000, seed=0)
    assert r.name == "synthetic-3000" and r.source is None and r.titles is None
    assert r.meta["generator"] == "synthetic" and r.meta["seed"] == 0
    assert r.meta["params"]["n_ratings"] == 3_000 and r.meta["params"]["rank"] == 16
    s = json.loads(json.dumps(r.summary()))
    assert (s["n_ratings"], s["n_users"], s["rating_step"]) == (3_000, 100, 0.5)


REQUIRED = {
    "synthetic-ml-100k": (943, 1_682, 100_000),
    "synthetic-ml-latest-small": (610, 9_742, 100_836),
    "synthetic-ml-1m": (6_040, 3_952, 1_000_209),
    "synthetic-ml-10m": (71_567, 10_681, 10_000_054),
    "synthetic-ml-20m": (138_493, 27_278, 20_000_263),
    "synthetic-ml-25m": (162_541, 62_423, 25_000_095),
    "synthetic-ml-32m": (200_948, 87_585, 32_000_204),
}
ROUND = {"synthetic-1m": 10**6, "synthetic-10m": 10**7, "synthetic-25m": 25 * 10**6,
         "synthetic-32m": 32 * 10**6, "synthetic-100m": 10**8}


def test_presets_are_listed_with_their_sizes():
    assert {"synthetic-small", *REQUIRED, *ROUND} <= set(SYNTHETIC_PRESETS)
    for name, (u, i, n) in REQUIRED.items():
        spec = SYNTHETIC_PRESETS[name]
        assert (spec.n_users, spec.n_items, spec.n_ratings) == (u, i, n)
    for name, n in ROUND.items():
        spec = SYNTHETIC_PRESETS[name]
        assert spec.n_ratings == n and 100 <= n / spec.n_users <= 200  # MovieLens-like
    for name, spec in SYNTHETIC_PRESETS.items():
        assert isinstance(spec, SyntheticSpec) and spec.description
        assert spec.n_users * 20 <= spec.n_ratings <= spec.n_users * spec.n_items, name


def test_preset_builds_with_its_name_and_seed():
    r = synthetic_preset("synthetic-small", seed=3)
    spec = SYNTHETIC_PRESETS["synthetic-small"]
    check_shape(r, spec.n_users, spec.n_items, spec.n_ratings, 20)
    assert r.name == "synthetic-small" and r.meta["preset"] == "synthetic-small"
    assert r.meta["seed"] == 3


def test_load_dispatches_to_presets():
    from kmrec_gpu.data import load

    assert same(load("synthetic-small", seed=2), synthetic_preset("synthetic-small", seed=2))


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(UnknownDataset) as e:
        synthetic_preset("synthetic-7m")
    assert "synthetic-7m" in str(e.value) and "synthetic-ml-25m" in str(e.value)
    assert isinstance(e.value, KeyError)


@pytest.mark.parametrize("args, kwargs, match", [
    ((100, 200, 1_999), {}, "below n_users \\* min_user_ratings"),
    ((10, 30, 301), {}, "cannot fit"),
    ((10, 10, 100), {"min_user_ratings": 11}, "exceeds n_items"),
    ((0, 10, 0), {}, "n_users must be >= 1"),
    ((10, 0, 0), {}, "n_items must be >= 1"),
    ((10, 30, 250), {"rank": 0}, "rank must be >= 1"),
    ((10, 30, 250), {"n_genres": 0}, "n_genres must be >= 1"),
    ((10, 30, 250), {"noise": -0.1}, "noise"),
    ((10, 30, 250), {"noise": float("nan")}, "noise"),
    ((10, 30, 250), {"chunk_users": 0}, "chunk_users"),
    ((10, 30, 250), {"seed": -1}, "non-negative"),
])
def test_invalid_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic(*args, **kwargs)


@pytest.mark.parametrize("args, kwargs", [
    ((10, 30, 250.0), {}),
    ((10, 30, 250), {"seed": None}),
])
def test_wrong_types(args, kwargs):
    with pytest.raises(TypeError):
        synthetic(*args, **kwargs)
