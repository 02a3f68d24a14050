"""Reading MovieLens releases (and files laid out like them) into :class:`Ratings`."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from kmrec_gpu.data.locate import Source as FileSource
from kmrec_gpu.data.locate import locate
from kmrec_gpu.data.parse import Table, check_separator, read_table, row_line, row_lines
from kmrec_gpu.data.registry import ML100K_GENRES, DatasetSpec
from kmrec_gpu.errors import ChecksumMismatch, DataError, MalformedInput
from kmrec_gpu.log import get as _get_logger
from kmrec_gpu.ratings import Ratings, RatingScale, Source, Tags, from_arrays

_LOG = _get_logger(__name__)


def load_movielens(
    spec: DatasetSpec,
    path: str | Path | None = None,
    *,
    verify: bool = True,
    download: bool = True,
) -> Ratings:
    """Load a registry dataset from ``path`` or wherever :func:`locate` finds it."""
    src = locate(spec, path, download=download)
    try:
        return _read(spec, src, verify)
    finally:
        src.close()


def _read(spec: DatasetSpec, src: FileSource, verify: bool) -> Ratings:
    """The ratings of ``src``. Digests are taken only to verify, each file at most once:
    the zip (sha256 and md5 in one pass), then each member only where the zip's digest
    does not already vouch for it (no official digest known for the zip) — a zip equal to
    the official one holds the official members, whose digests the registry lists. Without
    ``verify`` nothing is hashed and the source carries no digest."""
    archive_sha = None
    vouched = False  # the zip is the official one: its members are the official ones
    if verify and src.kind == "zip":
        checks = src.verify_archive()
        archive_sha = checks[0]["actual"]
        _raise_on_mismatch(checks)
        vouched = checks[0]["ok"] is True
    blobs: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    for role, member in spec.files.items():
        data = src.read(member)
        want = spec.member_sha256.get(member)
        if verify:
            digests[member] = want if vouched and want is not None else _sha256(data)
            if want is not None and digests[member] != want:
                raise ChecksumMismatch(
                    f"{src.where(member)}: sha256 {digests[member]}, expected {want} "
                    f"(the official {spec.name} file); use verify=False / --no-verify to "
                    "read a modified copy anyway"
                )
        blobs[role] = data

    ratings_where = src.where(spec.files["ratings"])
    rdf = read_table(blobs["ratings"], spec.layout["ratings"], ratings_where)
    check_ratings(rdf, spec.scale, spec.layout["ratings"], ratings_where, blobs["ratings"])

    item_vocab = titles = genres = None
    genre_names: tuple[str, ...] = ()
    if "movies" in blobs:
        movies_where = src.where(spec.files["movies"])
        mdf = read_table(blobs["movies"], spec.layout["movies"], movies_where)
        _check_unique_ids(mdf, spec.layout["movies"], movies_where, blobs["movies"])
        mdf = mdf.sort_values("item", kind="stable").reset_index(drop=True)
        item_vocab = mdf["item"].to_numpy(np.int64)
        titles = mdf["title"].to_numpy(object)
        genres, genre_names = _genres(mdf, spec.genre_encoding)

    sha = archive_sha or digests.get(spec.files["ratings"])
    ratings = from_arrays(
        rdf["user"].to_numpy(np.int64),
        rdf["item"].to_numpy(np.int64),
        rdf["rating"].to_numpy(np.float32),
        rdf["timestamp"].to_numpy(np.int64) if "timestamp" in rdf else None,
        scale=spec.scale,
        name=spec.name,
        item_vocab=item_vocab,
        genres=genres,
        genre_names=genre_names,
        titles=titles,
        source=Source(str(src.path), sha, digests),
        meta={"n_movies": None if item_vocab is None else int(len(item_vocab))},
    )
    _raise_on_duplicates(ratings, ratings_where, spec.layout["ratings"], blobs["ratings"])
    if "tags" in blobs:
        ratings = _attach_tags(ratings, blobs["tags"], spec.layout["tags"],
                               src.where(spec.files["tags"]))
    return ratings


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _raise_on_mismatch(checks: list[dict]) -> None:
    for c in checks:
        if c["ok"] is False:
            raise ChecksumMismatch(
                f"{c['file']}: {c['algorithm']} {c['actual']}, expected {c['expected']} "
                "(the official release); the file is damaged or not the official one. "
                "Fetch it again, or use verify=False / --no-verify to read it anyway"
            )


def check_ratings(df: pd.DataFrame, scale: RatingScale, table: Table, where: str,
                  data: bytes | None = None) -> None:
    """Reject NaN, out-of-range and off-grid ratings, naming the line (counted in
    ``data``, the file's bytes, when given: blank lines then count too)."""
    bad = np.flatnonzero(scale.invalid_mask(df["rating"].to_numpy()))
    if bad.size:
        row = int(bad[0])
        value = float(df["rating"].iloc[row])
        raise MalformedInput(
            f"{where}, line {row_line(data, table, row)}: rating {value!r} "
            f"(user {df['user'].iloc[row]}, item {df['item'].iloc[row]}); expected a value "
            f"from {scale.minimum:g} to {scale.maximum:g} in steps of {scale.step:g}"
        )


def _raise_on_duplicates(r: Ratings, where: str, table: Table, data: bytes | None = None) -> None:
    dups = r.duplicate_pairs()
    if dups.size:
        # the pair of lines that share the first duplicated key
        key = r.users[dups].astype(np.int64) * r.n_items + r.items[dups]
        rows = dups[key == key[0]][:2]
        lines = ([row_line(None, table, int(i)) for i in rows] if data is None
                 else row_lines(data, table, [int(i) for i in rows]))
        raise MalformedInput(
            f"{where}, lines {lines[0]} and {lines[1]}: user {r.user_ids[r.users[rows[0]]]} "
            f"rated item {r.item_ids[r.items[rows[0]]]} twice; expected one rating per "
            "(user, item) pair"
        )


def _check_unique_ids(df: pd.DataFrame, table: Table, where: str,
                      data: bytes | None = None) -> None:
    dup = df["item"].duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise MalformedInput(
            f"{where}, line {row_line(data, table, row)}: movie id "
            f"{df['item'].iloc[row]} appears twice; expected one row per movie"
        )


def _genres(mdf: pd.DataFrame, encoding: str) -> tuple[np.ndarray, tuple[str, ...]]:
    if encoding == "flags":
        flags = mdf[[f"g{i}" for i in range(len(ML100K_GENRES))]].to_numpy()
        if not np.isin(flags, (0, 1)).all():
            raise MalformedInput("u.item: genre flags must be 0 or 1")
        return flags.astype(bool), ML100K_GENRES
    # Split each distinct genre string once (ml-latest-small: 951 of them for 9,742
    # movies) and index the rows by their string's code: no per-movie Python split and no
    # explode. Empty parts ("a||b", "") name no genre; a missing field has none.
    codes, uniques = pd.factorize(mdf["genres"], use_na_sentinel=True)  # no object copy
    parts = [[g for g in str(u).split("|") if g != ""] for u in uniques]
    names = tuple(sorted({g for p in parts for g in p}))
    col = {g: j for j, g in enumerate(names)}
    table = np.zeros((len(uniques) + 1, len(names)), dtype=bool)  # last row: missing
    table[[i for i, p in enumerate(parts) for _ in p], [col[g] for p in parts for g in p]] = True
    return table[codes], names


def _attach_tags(r: Ratings, data: bytes, table: Table, where: str) -> Ratings:
    tdf = read_table(data, table, where)
    u = pd.Index(r.user_ids).get_indexer(tdf["user"].to_numpy())
    i = pd.Index(r.item_ids).get_indexer(tdf["item"].to_numpy())
    # Tags by users who never rated (or on movies outside the table) have no code to
    # attach to; they are dropped and counted rather than silently lost.
    keep = (u >= 0) & (i >= 0)
    tags = Tags(
        users=u[keep].astype(np.int32),
        items=i[keep].astype(np.int32),
        tags=tdf["tag"].to_numpy(object)[keep],
        timestamps=tdf["timestamp"].to_numpy(np.int64)[keep],
    )
    meta = dict(r.meta, n_tags_dropped=int((~keep).sum()))
    return dataclasses.replace(r, tags=tags, meta=meta)


def load_seed002(spec: DatasetSpec, path: str | Path | None = None, *,
                 verify: bool = True) -> Ratings:
    """Seed 002's 447-row file (an unnamed index column, then userId, movieId, rating)."""
    src = locate(spec, path, download=False)
    try:
        member = spec.files["ratings"]
        data = src.read(member)
        want = spec.member_sha256[member]
        sha = _sha256(data) if verify else None  # hashed only to verify, as in _read
        if verify and sha != want:
            raise ChecksumMismatch(
                f"{src.where(member)}: sha256 {sha}, expected {want} (the file seed 002 "
                "published); use verify=False to read a modified copy"
            )
        where = src.where(member)
        table = spec.layout["ratings"]
        df = read_table(data, table, where)
        check_ratings(df, spec.scale, table, where, data)
        r = from_arrays(
            df["user"].to_numpy(np.int64),
            df["item"].to_numpy(np.int64),
            df["rating"].to_numpy(np.float32),
            scale=spec.scale,
            name=spec.name,
            source=Source(str(src.path), sha, {member: sha} if sha is not None else {}),
        )
        _raise_on_duplicates(r, where, table, data)
        return r
    finally:
        src.close()


def load_csv(
    path: str | Path,
    *,
    user_col: str = "user",
    item_col: str = "item",
    rating_col: str = "rating",
    timestamp_col: str | None = None,
    sep: str = ",",
    header: bool = True,
    scale: RatingScale | None = None,
    encoding: str = "utf-8",
    name: str | None = None,
) -> Ratings:
    """A user's own ratings file: ``user,item,rating[,timestamp]``.

    With ``header=True`` the columns are found by name (extra columns are ignored);
    without one they are taken in the order user, item, rating[, timestamp]. Ids must be
    integers (int64). Line numbers in errors are the file's own lines (blank lines count).

    ``scale`` (a :class:`RatingScale`) is checked: a value outside it, or off its step, is
    an error naming the line. Without one, the scale is inferred from the values (their
    minimum, maximum and greatest common step on a 1e-6 grid, so {1, 2.5, 4, 5} is 1 to 5
    in steps of 0.5) and printed on stderr, so that a typo (a 7 in a 1-5 file) is seen.
    """
    p = Path(path)
    check_separator(sep, f"{p}")
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    data = p.read_bytes()
    cols = ["user", "item", "rating"] + (["timestamp"] if timestamp_col else [])
    kinds = ["int", "int", "float"] + (["int"] if timestamp_col else [])
    if header:
        first = data.split(b"\n", 1)[0].decode(encoding, "replace").rstrip("\r").split(sep)
        first = [h.strip().strip('"') for h in first]
        want = [user_col, item_col, rating_col] + ([timestamp_col] if timestamp_col else [])
        missing = [c for c in want if c not in first]
        if missing:
            raise MalformedInput(
                f"{p}, line 1: header {sep.join(first)!r} lacks column(s) {missing}; "
                f"expected {sep.join(want)!r} (set the column names to match)"
            )
        order = {first.index(c): ours for c, ours in zip(want, cols)}
        all_cols = [order.get(j, f"_extra{j}") for j in range(len(first))]
        all_kinds = [kinds[cols.index(c)] if c in cols else "str" for c in all_cols]
        table = Table(all_cols, all_kinds, sep, header=first, encoding=encoding)
    else:
        table = Table(cols, kinds, sep, header=None, encoding=encoding)
    df = read_table(data, table, str(p))
    values = df["rating"].to_numpy(np.float64)
    if scale is None:
        scale = _infer_scale(values, table, str(p), data)
        announce_inferred_scale(p, scale, values)
    check_ratings(df, scale, table, str(p), data)
    sha = hashlib.sha256(data).hexdigest()
    r = from_arrays(
        df["user"].to_numpy(np.int64),
        df["item"].to_numpy(np.int64),
        values.astype(np.float32),
        df["timestamp"].to_numpy(np.int64) if timestamp_col else None,
        scale=scale,
        name=name or p.stem,
        source=Source(str(p), sha, {p.name: sha}),
    )
    _raise_on_duplicates(r, str(p), table, data)
    return r


# ratings are taken to be multiples of a step on this grid (six decimals)
_GRID = 1e6


def _infer_scale(values: np.ndarray, table: Table, where: str,
                 data: bytes | None = None) -> RatingScale:
    """The smallest scale holding ``values``: min, max, and the greatest common step of the
    values on a 1e-6 grid (the GCD of their differences), so {1, 2.5, 4, 5} has step 0.5."""
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise MalformedInput(
            f"{where}, line {row_line(data, table, row)}: rating {float(values[row])!r}; "
            "expected a finite number"
        )
    if values.size == 0:
        raise MalformedInput(f"{where}: no ratings; expected at least one data line")
    u = np.unique(values)
    lo, hi = float(u[0]), float(u[-1])
    if u.size == 1:
        return RatingScale(lo, hi, 1.0)
    if (hi - lo) * _GRID >= 2.0**62:  # beyond the integer grid: the finest difference
        return RatingScale(lo, hi, float(np.diff(u).min()))
    ticks = (u - lo) * _GRID
    q = np.round(ticks)
    # off the grid by more than float rounding of the values themselves could explain
    off = np.abs(ticks - q) > max(1e-2, float(np.abs(u).max()) * _GRID * 1e-13)
    if off.any():
        value = float(u[np.flatnonzero(off)[0]])
        row = int(np.flatnonzero(values == value)[0])
        raise MalformedInput(
            f"{where}, line {row_line(data, table, row)}: rating {value!r} has more than six "
            "decimals, so no rating step can be inferred; expected ratings on a grid such as "
            "0.5 or 1 steps, or pass scale=RatingScale(min, max, step) to declare the scale"
        )
    step = math.gcd(*(int(d) for d in np.diff(q.astype(np.int64)))) / _GRID
    return RatingScale(lo, hi, step)


def announce_inferred_scale(where: str | Path, scale: RatingScale, values: np.ndarray) -> None:
    """Say which scale was inferred, so that a typo (a 7 in a 1-5 file) is seen."""
    _LOG.warning(f"{where}: no rating scale given; inferred {_describe(scale, values)} from "
                 "the values. Pass scale=RatingScale(min, max, step) (dataset.scale="
                 "[min, max, step] in kmrec-bench) to have values outside the scale you "
                 "expect reported")


def _describe(scale: RatingScale, values: np.ndarray) -> str:
    u = np.unique(values)
    shown = (", ".join(f"{v:g}" for v in u) if u.size <= 12
             else f"{u.size} distinct values")
    return (f"{scale.minimum:g} to {scale.maximum:g} in steps of {scale.step:g} "
            f"({len(values)} ratings; {shown})")
