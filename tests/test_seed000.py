"""Seed 000's protocol: its split, its printed test loss, the mis-sliced pair features."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from kmrec_gpu.neural import SEED000_GENRES, PublishedMLP000, adjusted_target
from kmrec_gpu.neural.seed000 import (
    PAIR,
    batch_mean_mse,
    first_row_of_movie,
    pair_accuracy,
    pair_check,
    pair_features,
    pair_row,
    published_rows,
    published_split,
)
from kmrec_gpu.ratings import Ratings, RatingScale, Tags

GENRES = ("Action", "Comedy", "Drama")


def tiny() -> Ratings:
    # movie 10: Action|Drama, movie 20: Comedy; user 1 tagged movie 20 twice
    users = np.array([0, 1, 0, 1, 2], dtype=np.int32)
    items = np.array([1, 1, 0, 0, 1], dtype=np.int32)
    vals = np.array([3.0, 4.0, 2.5, 5.0, 1.0], dtype=np.float32)
    return Ratings(users=users, items=items, ratings=vals, timestamps=None,
                   user_ids=np.array([1, 6, 9]), item_ids=np.array([10, 20]),
                   scale=RatingScale(0.5, 5.0, 0.5),
                   genres=np.array([[True, False, True], [False, True, False]]),
                   genre_names=GENRES,
                   tags=Tags(users=np.array([1, 1], dtype=np.int32),
                             items=np.array([1, 1], dtype=np.int32),
                             tags=np.array(["a", "b"], dtype=object))).validate()


def test_published_rows_are_sklearns_split_in_its_order():
    tr, te = published_rows(101)
    want_tr, want_te = train_test_split(np.arange(101), test_size=0.2, random_state=42)
    np.testing.assert_array_equal(tr, want_tr)
    np.testing.assert_array_equal(te, want_te)
    assert len(te) == 21  # scikit-learn rounds the test share up


def test_published_split_keeps_the_test_order():
    r = tiny()
    s = published_split(r, test_size=0.4)
    _, te = published_rows(len(r), test_size=0.4)
    np.testing.assert_array_equal(s.test.ratings, r.ratings[te])
    assert len(s.train) + len(s.test) == len(r)


def test_batch_mean_mse_weighs_the_short_last_batch_like_a_full_one():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    p = np.array([1.0, 2.0, 3.0, 4.0, 7.0])  # one error of 2 in the last, single-row batch
    assert batch_mean_mse(y, p, batch_size=2) == pytest.approx((0 + 0 + 4) / 3)
    assert batch_mean_mse(y, p, batch_size=5) == pytest.approx(4 / 5)
    with pytest.raises(ValueError):
        batch_mean_mse([], [])


def test_pair_features_misaligned_shift_one_column_right():
    r = tiny()
    row = pair_row(r, 6, 20)  # user 6 rated movie 20 with 4.0 and tagged it twice
    assert row == 1
    aligned = pair_features(r, row, GENRES, misaligned=False)
    np.testing.assert_array_equal(aligned, [[0, 1, 0]])
    np.testing.assert_array_equal(pair_features(r, row, GENRES, misaligned=True),
                                  [[4.0, 0, 1]])  # rating in the first slot, last flag lost
    np.testing.assert_array_equal(
        pair_features(r, row, GENRES, misaligned=True, lead="tag_count"), [[2.0, 0, 1]])
    with pytest.raises(ValueError, match="lead"):
        pair_features(r, row, GENRES, misaligned=True, lead="timestamp")


def test_pair_lookup_errors_and_first_row():
    r = tiny()
    assert first_row_of_movie(r, 20) == 0
    with pytest.raises(KeyError):
        pair_row(r, 9, 10)  # user 9 never rated movie 10
    assert pair_accuracy(3.2476, 4.0) == pytest.approx(0.8119, abs=1e-4)
    assert pair_accuracy(3.9744, 4.0) == pytest.approx(0.9936, abs=1e-4)
    with pytest.raises(ValueError):
        pair_accuracy(1.0, 0.0)


def test_seed000_pair_lies_in_the_training_part(ml_small):
    target = adjusted_target(ml_small)
    check = pair_check(target)
    assert PAIR == (6, 2)
    assert check.row == 560 and check.features_row == 560  # user 6 is movie 2's first row
    assert check.true == 4.0
    assert check.in_train
    split = published_split(target)
    assert (len(split.train), len(split.test)) == (80668, 20168)


def test_published_network_scores_the_misaligned_row(ml_small):
    """The as-published path end to end on a slice of ml-latest-small (one short epoch)."""
    target = adjusted_target(ml_small)
    split = published_split(target)
    m = PublishedMLP000(epochs=1, batch_size=1024, device="cpu").fit(split.train)
    row = pair_row(ml_small, *PAIR)
    u, i = np.array([ml_small.users[row]]), np.array([ml_small.items[row]])
    feats = pair_features(ml_small, row, SEED000_GENRES, misaligned=True)
    own = pair_features(ml_small, row, SEED000_GENRES, misaligned=False)
    p_mis = m.predict_with_genres(u, i, feats)[0]
    p_own = m.predict_with_genres(u, i, own)[0]
    assert p_own == pytest.approx(m.predict_pairs(u, i)[0], abs=1e-6)
    assert p_mis != pytest.approx(p_own, abs=1e-6)
