"""A ratings file of the user's own, described by a dataset config of kind ``csv``:
``kmrec-bench dataset=csv dataset.path=ratings.csv`` (column names, separator, header,
rating scale and encoding as options), read through :func:`load_csv`'s validation; a
``.parquet`` file through :func:`load_parquet`'s, with the same column and scale options.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import Any

from kmrec_gpu.errors import DataError, InvalidArgument
from kmrec_gpu.ratings import Ratings, RatingScale

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


PARQUET_SUFFIXES = (".parquet", ".pq")


def load_user_csv(d: dict[str, Any]) -> Ratings:
    """The ratings of a ``csv`` dataset config, named after the file: a CSV through
    :func:`load_csv`, or a Parquet file (by its suffix, ``.parquet`` / ``.pq``) through
    :func:`load_parquet` with the same column options and checks."""
    from kmrec_gpu.data.movielens import load_csv

    o = options(d)
    if o["path"].lower().endswith(PARQUET_SUFFIXES):
        return load_parquet(o["path"], user_col=o["user_col"], item_col=o["item_col"],
                            rating_col=o["rating_col"], timestamp_col=o["timestamp_col"],
                            scale=o["scale"])
    return load_csv(**o)


def load_parquet(path: str | os.PathLike, *, user_col: str = "user", item_col: str = "item",
                 rating_col: str = "rating", timestamp_col: str | None = None,
                 scale: RatingScale | None = None, name: str | None = None) -> Ratings:
    """A ratings table kept as Parquet (pyarrow), checked as :func:`load_csv` checks a
    CSV: integer ids, no missing values, ratings on the scale (declared, or inferred and
    printed), one rating per (user, item); errors name the file, the column and the row
    (0-based, the table's order)."""
    import numpy as np

    from kmrec_gpu.data.movielens import _infer_scale, announce_inferred_scale
    from kmrec_gpu.data.parse import Table
    from kmrec_gpu.errors import MalformedInput
    from kmrec_gpu.ratings import Source, from_arrays

    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install 'kmrec-gpu"
                        "[parquet]')") from None
    p = Path(path)
    want = {"user": user_col, "item": item_col, "rating": rating_col}
    if timestamp_col:
        want["timestamp"] = timestamp_col
    try:
        schema = pq.read_schema(p)
    except OSError as e:
        raise DataError(f"{p}: cannot read it as Parquet ({e})") from None
    missing = [c for c in want.values() if c not in schema.names]
    if missing:
        raise MalformedInput(f"{p}: columns {schema.names} lack {missing}; expected "
                             f"{list(want.values())} (set the column names to match)")
    df = pq.read_table(p, columns=list(want.values())).to_pandas()
    cols = {}
    for role, col in want.items():
        v = df[col]
        if v.isna().any():
            row = int(np.flatnonzero(v.isna().to_numpy())[0])
            raise MalformedInput(f"{p}, row {row}: {col} is missing; expected a value")
        arr = v.to_numpy()
        if role != "rating" and arr.dtype.kind not in "iu":
            raise MalformedInput(f"{p}: column {col} holds {arr.dtype}; expected integer "
                                 f"{role} ids (int64)")
        if role != "rating" and arr.dtype.kind == "u" and arr.size and arr.max() > 2**63 - 1:
            row = int(np.argmax(arr > 2**63 - 1))
            raise MalformedInput(f"{p}, row {row}: {col} {arr[row]} exceeds int64")
        cols[role] = arr
    values = np.asarray(cols["rating"], dtype=np.float64)
    where = str(p)
    if scale is None:
        scale = _infer_scale(values, Table(["rating"], ["float"], ","), where)
        announce_inferred_scale(p, scale, values)
    bad = np.flatnonzero(scale.invalid_mask(values))
    if bad.size:
        row = int(bad[0])
        raise MalformedInput(f"{p}, row {row}: rating {float(values[row])!r}; expected a "
                             f"value from {scale.minimum:g} to {scale.maximum:g} in steps "
                             f"of {scale.step:g}")
    sha = file_sha256(p)
    r = from_arrays(cols["user"].astype(np.int64), cols["item"].astype(np.int64),
                    values.astype(np.float32),
                    cols["timestamp"].astype(np.int64) if "timestamp" in cols else None,
                    scale=scale, name=name or p.stem, source=Source(str(p), sha, {p.name: sha}))
    dups = r.duplicate_pairs()
    if dups.size:
        key = r.users[dups].astype(np.int64) * r.n_items + r.items[dups]
        a, b = (int(i) for i in dups[key == key[0]][:2])
        raise MalformedInput(f"{p}, rows {a} and {b}: user {r.user_ids[r.users[a]]} rated item "
                             f"{r.item_ids[r.items[a]]} twice; expected one rating per "
                             "(user, item) pair")
    return r


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
