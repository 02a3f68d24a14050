"""The one in-memory ratings type every part of kmrec_gpu reads.

A :class:`Ratings` holds parallel columns (int32 user and item codes, float32 ratings,
int64 timestamps) plus vocabularies mapping codes to the source's raw ids and back.
Subsets (a split's train or test part) keep the parent's vocabularies, so codes mean the
same thing on both sides of a split and matrices built from either have the same shape.
At 20 bytes a rating, 32M ratings take 640 MB.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from kmrec_gpu.errors import DataError, MalformedInput


@dataclass(frozen=True)
class RatingScale:
    """Allowed rating values: ``minimum, minimum + step, ..., maximum``."""

    minimum: float
    maximum: float
    step: float

    def __post_init__(self) -> None:
        if not (self.step > 0 and self.maximum >= self.minimum):
            raise ValueError(f"invalid rating scale {self}")

    @property
    def values(self) -> np.ndarray:
        n = int(round((self.maximum - self.minimum) / self.step)) + 1
        return (self.minimum + self.step * np.arange(n)).astype(np.float32)

    def invalid_mask(self, r: np.ndarray) -> np.ndarray:
        """True where ``r`` is NaN, outside the range, or off the step grid."""
        r = np.asarray(r, dtype=np.float64)
        with np.errstate(invalid="ignore"):  # NaN and inf are reported by isfinite below
            q = (r - self.minimum) / self.step
            off_grid = np.abs(q - np.round(q)) > 1e-6
            out = (r < self.minimum - 1e-9) | (r > self.maximum + 1e-9)
        return ~np.isfinite(r) | out | off_grid

    def snap(self, r: np.ndarray) -> np.ndarray:
        """Round to the nearest allowed value (used by exact-match metrics)."""
        r = np.clip(np.asarray(r, dtype=np.float64), self.minimum, self.maximum)
        return self.minimum + self.step * np.round((r - self.minimum) / self.step)

    def as_dict(self) -> dict[str, float]:
        return {"min": self.minimum, "max": self.maximum, "step": self.step}


@dataclass(frozen=True)
class Source:
    """Where a dataset was read from, and the digests of what was read."""

    path: str
    sha256: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # member name -> sha256


@dataclass(frozen=True)
class Tags:
    """Tag applications; ``users`` and ``items`` are codes in the owning Ratings."""

    users: np.ndarray
    items: np.ndarray
    tags: np.ndarray  # object array of str
    timestamps: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.users.shape[0])


@dataclass(frozen=True, eq=False)
class Ratings:
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray | None
    user_ids: np.ndarray
    item_ids: np.ndarray
    scale: RatingScale
    name: str = "ratings"
    genres: np.ndarray | None = None  # bool, (n_items, n_genres)
    genre_names: tuple[str, ...] = ()
    titles: np.ndarray | None = None  # object, (n_items,)
    tags: Tags | None = None
    source: Source | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.users.shape[0]
        for col, dtype in (("users", np.int32), ("items", np.int32), ("ratings", np.float32)):
            arr = getattr(self, col)
            if arr.dtype != dtype or arr.ndim != 1 or arr.shape[0] != n:
                raise DataError(
                    f"Ratings.{col} must be a 1-d {np.dtype(dtype).name} array of length {n}, "
                    f"got {arr.dtype} with shape {arr.shape}"
                )
        if self.timestamps is not None and (
            self.timestamps.dtype != np.int64 or self.timestamps.shape != (n,)
        ):
            raise DataError(f"Ratings.timestamps must be int64 of length {n}")
        if self.genres is not None:
            if self.genres.dtype != np.bool_ or self.genres.shape != (
                self.n_items,
                len(self.genre_names),
            ):
                raise DataError(
                    f"Ratings.genres must be bool of shape ({self.n_items}, "
                    f"{len(self.genre_names)}), got {self.genres.dtype} {self.genres.shape}"
                )

    # ---- sizes -----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.users.shape[0])

    @property
    def n_ratings(self) -> int:
        return len(self)

    @property
    def n_users(self) -> int:
        """Size of the user vocabulary (rows of :meth:`to_csr`)."""
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        """Size of the item vocabulary, rated or not (columns of :meth:`to_csr`)."""
        return int(self.item_ids.shape[0])

    @property
    def n_rated_users(self) -> int:
        return int(np.count_nonzero(np.bincount(self.users, minlength=self.n_users)))

    @property
    def n_rated_items(self) -> int:
        return int(np.count_nonzero(np.bincount(self.items, minlength=self.n_items)))

    @property
    def nbytes(self) -> int:
        cols = [self.users, self.items, self.ratings]
        if self.timestamps is not None:
            cols.append(self.timestamps)
        return int(sum(c.nbytes for c in cols))

    # ---- vocabularies ----------------------------------------------------------------
    def user_codes(self, ids: Any) -> np.ndarray:
        return _lookup(self.user_ids, ids, "user", self.name)

    def item_codes(self, ids: Any) -> np.ndarray:
        return _lookup(self.item_ids, ids, "item", self.name)

    # ---- derived views ---------------------------------------------------------------
    def subset(self, index: np.ndarray) -> Ratings:
        """Rows selected by a boolean mask or an index array; vocabularies are kept."""
        idx = np.asarray(index)
        ts = None if self.timestamps is None else self.timestamps[idx]
        return dataclasses.replace(
            self,
            users=self.users[idx],
            items=self.items[idx],
            ratings=self.ratings[idx],
            timestamps=ts,
        )

    def with_ratings(self, values: np.ndarray) -> Ratings:
        """The same rows with other rating values (used by the leakage check)."""
        values = np.asarray(values, dtype=np.float32)
        if values.shape != self.ratings.shape:
            raise ValueError(f"expected {self.ratings.shape} values, got {values.shape}")
        return dataclasses.replace(self, ratings=values)

    def to_csr(self, dtype: Any = np.float32, *, binary: bool = False) -> sp.csr_matrix:
        """users x items CSR matrix of the ratings (or ones where ``binary``)."""
        data = np.ones(len(self), dtype=dtype) if binary else self.ratings.astype(dtype, copy=False)
        m = sp.csr_matrix(
            (data, (self.users, self.items)), shape=(self.n_users, self.n_items)
        )
        m.sum_duplicates()
        return m

    def to_frame(self, raw_ids: bool = False) -> pd.DataFrame:
        cols: dict[str, Any] = {
            "user": self.user_ids[self.users] if raw_ids else self.users,
            "item": self.item_ids[self.items] if raw_ids else self.items,
            "rating": self.ratings,
        }
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        return pd.DataFrame(cols)

    def tag_counts(self) -> np.ndarray:
        """Number of tags each rating's user put on its item, aligned with the rows."""
        out = np.zeros(len(self), dtype=np.int64)
        if self.tags is None or len(self.tags) == 0 or len(self) == 0:
            return out
        key_t = self.tags.users.astype(np.int64) * self.n_items + self.tags.items
        uniq, counts = np.unique(key_t, return_counts=True)
        key_r = self.users.astype(np.int64) * self.n_items + self.items
        pos = np.searchsorted(uniq, key_r)
        pos_c = np.minimum(pos, len(uniq) - 1)
        hit = uniq[pos_c] == key_r
        out[hit] = counts[pos_c[hit]]
        return out

    def duplicate_pairs(self) -> np.ndarray:
        """Row indices of every (user, item) pair that occurs more than once."""
        key = self.users.astype(np.int64) * max(self.n_items, 1) + self.items
        order = np.argsort(key, kind="stable")
        sk = key[order]
        dup = np.zeros(len(sk), dtype=bool)
        same = sk[1:] == sk[:-1]
        dup[1:] |= same
        dup[:-1] |= same
        return np.sort(order[dup])

    def validate(self) -> Ratings:
        """Raise :class:`DataError` on codes out of range, bad values, duplicate pairs."""
        if len(self):
            for col, size in (("users", self.n_users), ("items", self.n_items)):
                arr = getattr(self, col)
                if arr.min() < 0 or arr.max() >= size:
                    raise DataError(f"{self.name}: {col} codes outside [0, {size})")
        bad = np.flatnonzero(self.scale.invalid_mask(self.ratings))
        if bad.size:
            i = int(bad[0])
            raise MalformedInput(
                f"{self.name}: rating {self.ratings[i]!r} at row {i} is not one of "
                f"{self.scale.minimum}..{self.scale.maximum} in steps of {self.scale.step}"
            )
        dups = self.duplicate_pairs()
        if dups.size:
            i = int(dups[0])
            raise MalformedInput(
                f"{self.name}: (user {self.user_ids[self.users[i]]!r}, item "
                f"{self.item_ids[self.items[i]]!r}) is rated more than once "
                f"(rows {dups[:2].tolist()}); expected one rating per pair"
            )
        return self

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "n_ratings": self.n_ratings,
            "n_users": self.n_rated_users,
            "n_items": self.n_rated_items,
            "n_users_vocab": self.n_users,
            "n_items_vocab": self.n_items,
            "rating_min": float(self.ratings.min()) if len(self) else None,
            "rating_max": float(self.ratings.max()) if len(self) else None,
            "rating_step": self.scale.step,
            "scale": self.scale.as_dict(),
            "n_genres": len(self.genre_names),
            "genres": list(self.genre_names),
            "n_tags": 0 if self.tags is None else len(self.tags),
            "has_timestamps": self.timestamps is not None,
            "nbytes": self.nbytes,
        }
        if self.source is not None:
            out["sha256"] = self.source.sha256
            out["source"] = self.source.path
            out["files"] = dict(self.source.files)
        out.update(self.meta)
        return out


def _lookup(vocab: np.ndarray, ids: Any, kind: str, name: str) -> np.ndarray:
    scalar = np.ndim(ids) == 0
    codes = pd.Index(vocab).get_indexer(np.atleast_1d(np.asarray(ids)))
    if (codes < 0).any():
        missing = np.atleast_1d(np.asarray(ids))[codes < 0][:5].tolist()
        raise KeyError(f"{name}: unknown {kind} id(s) {missing}")
    codes = codes.astype(np.int32)
    return codes[0] if scalar else codes


def from_arrays(
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray | None = None,
    *,
    scale: RatingScale,
    name: str = "ratings",
    item_vocab: np.ndarray | None = None,
    **kwargs: Any,
) -> Ratings:
    """Build a Ratings from raw id columns, encoding ids to contiguous codes.

    ``item_vocab`` (e.g. every movie of a movies table) fixes the item vocabulary and its
    order; rated items missing from it raise :class:`DataError`.
    """
    u_codes, u_vocab = pd.factorize(np.asarray(user_ids), sort=True)
    if item_vocab is None:
        i_codes, i_vocab = pd.factorize(np.asarray(item_ids), sort=True)
        i_vocab = np.asarray(i_vocab)
    else:
        i_vocab = np.asarray(item_vocab)
        i_codes = pd.Index(i_vocab).get_indexer(np.asarray(item_ids))
        if (i_codes < 0).any():
            bad = np.asarray(item_ids)[i_codes < 0][:5].tolist()
            raise DataError(f"{name}: rated item ids {bad} are not in the item table")
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.int64)
    return Ratings(
        users=u_codes.astype(np.int32),
        items=np.asarray(i_codes, dtype=np.int32),
        ratings=np.asarray(ratings, dtype=np.float32),
        timestamps=ts,
        user_ids=np.asarray(u_vocab),
        item_ids=i_vocab,
        scale=scale,
        name=name,
        **kwargs,
    )
