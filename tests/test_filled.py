"""Seed 001's mean-filled matrix against a pandas pivot of the training frame, exactly:
its rows and columns, the fill, min-max scaling, held-out pairs mapped back, the messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kmrec_gpu.factor.filled import _compact, fill_matrix
from kmrec_gpu.metrics.rating import HALF_STAR
from kmrec_gpu.ratings import from_arrays


def _ratings(seed: int = 0):
    """40 users and 60 movies drawn sparsely, so some of each have no training rating."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(40 * 60, size=300, replace=False)
    users, items = pairs // 60 + 100, pairs % 60 + 1000
    return from_arrays(users, items, rng.integers(1, 11, size=300) / 2.0, scale=HALF_STAR)


def _split(r, seed: int = 0):
    test = np.random.default_rng(seed + 1).random(len(r)) < 0.3
    return r.subset(np.flatnonzero(~test)), r.subset(np.flatnonzero(test))


def _pivot(train, minmax: bool = False):
    df = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings.astype(float)})
    if minmax:
        df["r"] = (df.r - df.r.min()) / (df.r.max() - df.r.min())
    p = df.pivot(index="u", columns="i", values="r")
    return p.apply(lambda row: row.fillna(row.mean()), axis=1), df


@pytest.mark.parametrize("minmax", [False, True])
def test_the_filled_matrix_is_the_pandas_pivot_filled_with_user_means(minmax):
    train, _ = _split(_ratings())
    f = fill_matrix(train, minmax=minmax)
    want, df = _pivot(train, minmax)
    assert f.shape == want.shape and f.nnz == len(train)
    # equal up to the order of summation (bincount against pandas' group sums)
    np.testing.assert_allclose(f.dense(), want.to_numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(f.user_means, df.groupby("u").r.mean(), rtol=1e-14, atol=1e-15)
    assert f.global_mean == pytest.approx(df.r.mean(), rel=1e-14)
    assert f.mean() == pytest.approx(want.to_numpy().mean(), rel=1e-15)
    np.testing.assert_allclose(f.residual().toarray(),
                               np.where(want.notna() & df.pivot(index="u", columns="i",
                                                                values="r").notna(),
                                        want.to_numpy() - f.user_means[:, None], 0.0),
                               rtol=0, atol=1e-15)
    # the pivot's rows and columns are the training users and movies in code order
    np.testing.assert_array_equal(np.flatnonzero(f.row_of_user >= 0), want.index)
    np.testing.assert_array_equal(f.row_of_user[want.index], np.arange(want.shape[0]))
    np.testing.assert_array_equal(np.flatnonzero(f.col_of_item >= 0), want.columns)
    np.testing.assert_array_equal(f.col_of_item[want.columns], np.arange(want.shape[1]))


def test_min_max_scaling_uses_the_training_extremes_and_is_inverted():
    train, _ = _split(_ratings(3))
    f = fill_matrix(train, minmax=True)
    lo, hi = float(train.ratings.min()), float(train.ratings.max())
    assert (f.offset, f.span) == (lo, hi - lo) and lo < hi
    np.testing.assert_allclose(f.to_rating(f.dense()), _pivot(train)[0].to_numpy(), atol=1e-12)
    plain = fill_matrix(train)
    assert (plain.offset, plain.span) == (0.0, 1.0)
    np.testing.assert_array_equal(plain.to_rating(np.array([0.5, 2.0])), [0.5, 2.0])


def test_held_out_pairs_map_to_the_pivot_or_fall_back():
    train, test = _split(_ratings(2))  # 3 test pairs of cold users, 7 of cold movies
    f = fill_matrix(train)
    want, df = _pivot(train)
    rows, cols = f.locate(test)
    u_known = np.isin(test.users, want.index)
    i_known = np.isin(test.items, want.columns)
    assert (~u_known).any() and (~i_known).any() and (u_known & i_known).any()
    np.testing.assert_array_equal(rows >= 0, u_known)
    np.testing.assert_array_equal(cols >= 0, i_known)
    np.testing.assert_array_equal(want.index[rows[u_known]], test.users[u_known])
    np.testing.assert_array_equal(want.columns[cols[i_known]], test.items[i_known])
    means = df.groupby("u").r.mean()
    expect = np.where(u_known, means.reindex(test.users).to_numpy(), df.r.mean())
    np.testing.assert_array_equal(f.fallback(rows), expect)
    assert f.fallback(np.array([0, -1, 2])).tolist() == [means.iloc[0], df.r.mean(),
                                                          means.iloc[2]]


def test_locate_needs_the_training_vocabularies():
    train, _ = _split(_ratings())
    f = fill_matrix(train)
    other = _ratings(5)
    other = from_arrays(np.r_[other.user_ids[other.users], 999],
                        np.r_[other.item_ids[other.items], 1000],
                        np.r_[other.ratings, 1.0], scale=HALF_STAR)
    with pytest.raises(ValueError, match=r"^X must share the training set's vocabularies "
                                         r"\(use a TTSplit\)$"):
        f.locate(other)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_stored_arrays_take_the_dtype_asked_for(dtype):
    train, _ = _split(_ratings())
    f = fill_matrix(train, dtype=dtype)
    assert f.observed.dtype == dtype and f.user_means.dtype == dtype
    assert f.dense().dtype == dtype
    assert isinstance(f.global_mean, float) and isinstance(f.mean(), float)


def test_repeated_pairs_and_bad_training_sets_are_named():
    r = from_arrays(np.array([1, 1, 2, 1]), np.array([5, 6, 5, 5]), np.array([1.0, 2, 3, 4]),
                    scale=HALF_STAR)
    with pytest.raises(ValueError, match=r"^training ratings repeat 1 \(user, movie\) pairs$"):
        fill_matrix(r)
    with pytest.raises(ValueError, match="^cannot build a rating matrix from an empty "
                                         "training set$"):
        fill_matrix(r.subset(np.array([], dtype=int)))
    with pytest.raises(ValueError, match=r"^min-max scaling needs two distinct training "
                                         r"ratings, all are 2\.0$"):
        fill_matrix(r.subset(np.array([1])), minmax=True)


def test_compact_ranks_the_codes_present():
    out = _compact(np.array([4, 1, 4, 6]), 8)
    assert out.dtype == np.int64
    assert out.tolist() == [-1, 0, -1, -1, 1, -1, 2, -1]
