"""Seed 000's training target: the rating "adjusted" by the user's own tags on the movie.

The rule of the seed's ``ratingsadjust.py`` (CLAIMS.md, section 000), with ``tag_count``
the number of tags that user put on that movie:

* no tags: the rating;
* ``rating >= 3`` and ``tag_count >= 2``: ``rating + 0.5 * tag_count``;
* tagged and ``rating <= 1``: ``0``;
* otherwise the rating.

On ml-latest-small this gives values up to 91.5 (317 above 5, 28 zeros). The rule reads
only the row's own rating and tags, so building it before a split leaks nothing across
rows; ml-100k has no tags, so there the target is the rating itself.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kmrec_gpu.ratings import Ratings, RatingScale


def adjusted_values(ratings: np.ndarray, tag_counts: np.ndarray) -> np.ndarray:
    """The adjusted rating of each row (float64), from its rating and its tag count."""
    y = np.asarray(ratings, dtype=np.float64)
    t = np.asarray(tag_counts)
    if y.shape != t.shape:
        raise ValueError(f"ratings has shape {y.shape} but tag_counts has {t.shape}")
    if t.size and (t.min() < 0 or not np.issubdtype(t.dtype, np.integer)):
        raise ValueError("tag_counts must be non-negative integers")
    bonus = (y >= 3) & (t >= 2)
    zero = (t > 0) & ~bonus & (y <= 1)
    return np.where(bonus, y + 0.5 * t, np.where(zero, 0.0, y))


def adjusted_target(r: Ratings) -> Ratings:
    """``r`` with every rating replaced by its adjusted value, on a scale that holds them.

    The scale keeps the source's step unless a tag bonus falls off its grid (then 0.5),
    and stretches to 0 and to the largest value; ``meta["target"]`` says "adjusted".
    """
    values = adjusted_values(r.ratings, r.tag_counts())
    step = r.scale.step
    off_grid = np.abs(values / step - np.round(values / step)) > 1e-9
    if off_grid.any():
        step = 0.5
    lo = min(r.scale.minimum, float(values.min())) if len(r) else r.scale.minimum
    hi = max(r.scale.maximum, float(values.max())) if len(r) else r.scale.maximum
    if lo < r.scale.minimum:  # 0 must lie on the grid that starts at the new minimum
        lo = 0.0
    scale = RatingScale(lo, hi, step)
    return dataclasses.replace(
        r, ratings=values.astype(np.float32), scale=scale,
        name=f"{r.name}+adjusted", meta={**r.meta, "target": "adjusted"},
    )
