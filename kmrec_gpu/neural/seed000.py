"""Seed 000's protocol as its code ran it (CLAIMS.md, section 000).

* The split: scikit-learn's ``train_test_split(test_size=0.2, random_state=42)`` over the
  rating rows in file order; the test part keeps scikit-learn's order, which matters for
  the printed "Test Loss" (:func:`batch_mean_mse`: the mean of per-batch MSEs over
  batches of 32, so the last, shorter batch weighs as much as a full one).
* The single pair: "user 6 on movie 2", whose features were taken from the movie's first
  row in the seed's merged file with ``[2:-2]`` instead of the training slice ``[3:-1]``:
  one column to the left. The network then sees the column just before the genres in
  the slot of the first genre, and loses the last genre. That column is not in any
  published file; the rating is the likeliest (see :data:`LEAD_COLUMNS`).
* The "accuracy": ``1 - |pred - true| / true`` for that one pair (true = 4.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmrec_gpu.ratings import Ratings
from kmrec_gpu.splits import TTSplit

PAIR = (6, 2)  # (userId, movieId) of the one printed prediction
# What the column before the genres in the seed's ``all_del.csv`` may have held. Every
# column of that row must be numeric (torch.tensor refuses an object array), and a
# timestamp there (~8e8) would not give a prediction near 4; so the rating or the tag
# count. "rating" is the default, and the report shows both.
LEAD_COLUMNS = ("rating", "tag_count")


def published_rows(n: int, test_size: float = 0.2,
                   random_state: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """Training and test row indices of the seed's split of ``n`` rows, in its order."""
    from sklearn.model_selection import train_test_split

    train_idx, test_idx = train_test_split(np.arange(n), test_size=test_size,
                                           random_state=random_state)
    return np.asarray(train_idx), np.asarray(test_idx)


def published_split(r: Ratings, test_size: float = 0.2, random_state: int = 42) -> TTSplit:
    """The seed's split over rating rows, rows of each part in scikit-learn's order."""
    train_idx, test_idx = published_rows(len(r), test_size, random_state)
    return TTSplit(r.subset(train_idx), r.subset(test_idx), method="seed000_published",
                   params={"test_size": test_size, "random_state": random_state})


def batch_mean_mse(y_true, y_pred, batch_size: int = 32) -> float:
    """The seed's "Test Loss": the mean over consecutive batches of each batch's MSE."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need two equal, non-empty shapes, got {y.shape} and {p.shape}")
    starts = np.arange(0, y.size, batch_size)
    sq = (p - y) ** 2
    return float(np.mean(np.add.reduceat(sq, starts) / np.diff(np.append(starts, y.size))))


def pair_row(r: Ratings, user_id, movie_id) -> int:
    """Row index of the rating of ``movie_id`` by ``user_id``."""
    rows = np.flatnonzero((r.users == r.user_codes(user_id)) & (r.items == r.item_codes(movie_id)))
    if rows.size != 1:
        raise KeyError(f"{r.name}: user {user_id} rated movie {movie_id} {rows.size} times; "
                       "expected once")
    return int(rows[0])


def first_row_of_movie(r: Ratings, movie_id) -> int:
    """The movie's first row in file order (the seed's ``data[data.movieId == m].iloc[0]``)."""
    return int(np.flatnonzero(r.items == r.item_codes(movie_id))[0])


def pair_features(r: Ratings, row: int, genre_names: tuple[str, ...], *,
                  misaligned: bool, lead: str = "rating") -> np.ndarray:
    """The (1, n_genres) feature row the seed scored: the movie's flags, or with
    ``misaligned`` the flags shifted one column right behind the ``lead`` column's value.

    ``r`` holds the raw ratings (the lead value is the row's rating, not its target)."""
    cols = [r.genre_names.index(g) for g in genre_names]
    flags = r.genres[r.items[row], cols].astype(np.float32)
    if not misaligned:
        return flags[None, :]
    if lead not in LEAD_COLUMNS:
        raise ValueError(f"lead must be one of {LEAD_COLUMNS}, got {lead!r}")
    value = r.ratings[row] if lead == "rating" else r.tag_counts()[row]
    return np.concatenate([[np.float32(value)], flags[:-1]])[None, :].astype(np.float32)


def pair_accuracy(pred: float, true: float) -> float:
    """The inferred "accuracy" of one prediction: ``1 - |pred - true| / true``."""
    if true == 0:
        raise ValueError("the ratio is undefined for a true value of 0")
    return 1.0 - abs(pred - true) / abs(true)


@dataclass(frozen=True)
class PairCheck:
    """The single printed pair, recomputed."""

    row: int  # row index in the ratings file
    true: float  # its adjusted rating
    in_train: bool  # whether the seed's split put it in the training part
    features_row: int  # the row the seed took the features from


def pair_check(r: Ratings, user_id=PAIR[0], movie_id=PAIR[1], test_size: float = 0.2,
               random_state: int = 42) -> PairCheck:
    """Where the pair lies: its row, its target in ``r``, and its side of the seed's split."""
    row = pair_row(r, user_id, movie_id)
    train_idx, _ = published_rows(len(r), test_size, random_state)
    return PairCheck(row=row, true=float(r.ratings[row]), in_train=bool(np.isin(row, train_idx)),
                     features_row=first_row_of_movie(r, movie_id))
