"""A ratings file of the user's own, described by a dataset config of kind ``csv``:
``kmrec-bench dataset=csv dataset.path=ratings.csv`` (column names, separator, header,
rating scale and encoding as options), read through :func:`load_csv`'s validation.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from kmrec_gpu.errors import DataError, InvalidArgument
from kmrec_gpu.ratings import RatingScale, Ratings

COLUMN_ROLES = ("user", "item", "rating", "timestamp")


def options(d: dict[str, Any]) -> dict[str, Any]:
    """A csv dataset config's options, checked, with defaults; errors name the key."""
    path = d.get("path")
    if not path or path == "???":
        raise InvalidArgument(f"dataset {d.get('name', 'csv')}: dataset.path is required (the "
                          "ratings file), e.g. dataset.path=ratings.csv")
    cols = dict(d.get("columns") or {})
    unknown = sorted(set(cols) - set(COLUMN_ROLES))
    if unknown:
        raise InvalidArgument(f"dataset {d.get('name', 'csv')}: dataset.columns has {unknown}; "
                          f"expected keys among {list(COLUMN_ROLES)}")
    scale = d.get("scale")
    if scale is not None:
        if not (isinstance(scale, (list, tuple)) and len(scale) == 3
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale)):
            raise InvalidArgument(f"dataset {d.get('name', 'csv')}: dataset.scale={scale!r}; "
                              "expected [minimum, maximum, step], e.g. [0.5, 5, 0.5], or null "
                              "to infer it from the values")
        try:
            scale = RatingScale(*map(float, scale))
        except ValueError as e:
            raise InvalidArgument(f"dataset {d.get('name', 'csv')}: dataset.scale: {e}") from None
    return {"path": str(path), "user_col": cols.get("user", "user"),
            "item_col": cols.get("item", "item"), "rating_col": cols.get("rating", "rating"),
            "timestamp_col": cols.get("timestamp"), "sep": d.get("sep", ","),
            "header": bool(d.get("header", True)), "scale": scale,
            "encoding": d.get("encoding", "utf-8")}


def load_user_csv(d: dict[str, Any]) -> Ratings:
    """The ratings of a ``csv`` dataset config, named after the file."""
    from kmrec_gpu.data.movielens import load_csv

    return load_csv(**options(d))


def file_sha256(path: str | os.PathLike) -> str:
    """The file's sha256, taken once per (path, size, modification time) in a process: it
    is part of a csv cell's identity, so an edited file is a new cell, never 'done'."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise DataError(f"{p}: cannot read the ratings file ({e.strerror or e})") from None
    return _sha256(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
