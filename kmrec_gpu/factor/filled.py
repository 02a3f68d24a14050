"""Seed 001's rating matrix, built from the training ratings only.

The pivot has one row per user and one column per movie *with a training rating* (as a
pandas pivot of the training frame would). Observed cells hold the rating, missing cells
the user's mean over their training ratings; optional min-max scaling uses the training
minimum and maximum. That matrix is ``m·1ᵀ + S``: a rank-1 term plus a sparse ``S`` whose
stored values are ``r_ui - m_u`` on the observed cells. :class:`FilledMatrix` keeps only
``m`` and the observed ratings (memory O(nnz + users); ``S`` is derived from them), and
materialises the dense matrix only when a dense reference asks for it.

A held-out pair maps back through the pivot: a user with no training rating gets the
training global mean, a movie with none gets the user's mean (the value the fill would
have put in its column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from kmrec_gpu.ratings import Ratings


@dataclass(frozen=True, eq=False)
class FilledMatrix:
    user_means: np.ndarray  # (rows,), on the model's scale (after min-max, if any)
    observed: sp.csr_matrix  # (rows, cols) ratings on the model's scale, observed cells
    row_of_user: np.ndarray  # (n_users,) vocab code -> pivot row, -1 if no training rating
    col_of_item: np.ndarray  # (n_items,) vocab code -> pivot column, -1 likewise
    global_mean: float  # on the model's scale
    offset: float  # model scale = (rating - offset) / span
    span: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.observed.shape

    @property
    def nnz(self) -> int:
        return int(self.observed.nnz)

    def dense(self) -> np.ndarray:
        """The filled users × movies matrix (what the seed factorises): O(rows·cols)."""
        out = np.repeat(self.user_means[:, None], self.shape[1], axis=1)
        coo = self.observed.tocoo()
        out[coo.row, coo.col] = coo.data
        return out

    def residual(self) -> sp.csr_matrix:
        """``S``: the observed pattern holding rating − user mean (built on demand, so a
        fitted model does not keep a second nnz-sized copy)."""
        out = self.observed.copy()
        out.data = out.data - np.repeat(self.user_means, np.diff(out.indptr))
        return out

    def mean(self) -> float:
        """Mean of every cell of the filled matrix, without forming it."""
        rows, cols = self.shape
        filled = self.user_means @ (cols - np.diff(self.observed.indptr))
        return float((self.observed.sum() + filled) / (rows * cols))

    def locate(self, X: Ratings) -> tuple[np.ndarray, np.ndarray]:
        """Pivot (row, column) of each pair of ``X``; -1 where the pivot has none."""
        if X.n_users != self.row_of_user.size or X.n_items != self.col_of_item.size:
            raise ValueError("X must share the training set's vocabularies (use a TTSplit)")
        return self.row_of_user[X.users], self.col_of_item[X.items]

    def fallback(self, rows: np.ndarray) -> np.ndarray:
        """The fill value for pairs outside the pivot: user mean, else the global mean."""
        out = np.full(rows.shape, self.global_mean)
        known = rows >= 0
        out[known] = self.user_means[rows[known]]
        return out

    def to_rating(self, values: np.ndarray) -> np.ndarray:
        return values * self.span + self.offset


def fill_matrix(train: Ratings, *, minmax: bool = False, dtype=np.float64) -> FilledMatrix:
    """The mean-filled pivot of ``train`` (nothing of any other split is read)."""
    if len(train) == 0:
        raise ValueError("cannot build a rating matrix from an empty training set")
    r = train.ratings.astype(np.float64)
    offset, span = (float(r.min()), float(r.max() - r.min())) if minmax else (0.0, 1.0)
    if span == 0.0:
        raise ValueError(f"min-max scaling needs two distinct training ratings, all are {offset}")
    r = (r - offset) / span
    row_of_user = _compact(train.users, train.n_users)
    col_of_item = _compact(train.items, train.n_items)
    rows, cols = row_of_user[train.users], col_of_item[train.items]
    counts = np.bincount(rows)
    means = np.bincount(rows, r) / counts
    shape = (counts.size, int(col_of_item.max()) + 1)
    observed = sp.csr_matrix((r.astype(dtype), (rows, cols)), shape=shape)
    if observed.nnz != len(train):
        raise ValueError(f"training ratings repeat {len(train) - observed.nnz} (user, movie) pairs")
    return FilledMatrix(means.astype(dtype), observed, row_of_user, col_of_item,
                        float(r.mean()), offset, span)


def _compact(codes: np.ndarray, size: int) -> np.ndarray:
    """Vocabulary code -> rank among the codes present (-1 if absent), without a sort."""
    present = np.bincount(codes, minlength=size) > 0
    out = np.cumsum(present, dtype=np.int64) - 1
    out[~present] = -1
    return out
