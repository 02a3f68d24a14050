"""Reading MovieLens releases (and files laid out like them) into :class:`Ratings`."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from kmrec_gpu.data.locate import Source as FileSource
from kmrec_gpu.data.locate import locate
from kmrec_gpu.data.parse import Table, line_number, read_table
from kmrec_gpu.data.registry import ML100K_GENRES, DatasetSpec
from kmrec_gpu.errors import ChecksumMismatch, DataError, MalformedInput
from kmrec_gpu.ratings import RatingScale, Ratings, Source, Tags, from_arrays


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
    archive_sha = None
    if src.kind == "zip":
        checks = src.verify_archive()
        archive_sha = checks[0]["actual"]
        if verify:
            _raise_on_mismatch(checks)
    blobs: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    for role, member in spec.files.items():
        data = src.read(member)
        digests[member] = hashlib.sha256(data).hexdigest()
        want = spec.member_sha256.get(member)
        if verify and want is not None and digests[member] != want:
            raise ChecksumMismatch(
                f"{src.where(member)}: sha256 {digests[member]}, expected {want} "
                f"(the official {spec.name} file); use verify=False / --no-verify to read "
                "a modified copy anyway"
            )
        blobs[role] = data

    ratings_where = src.where(spec.files["ratings"])
    rdf = read_table(blobs["ratings"], spec.layout["ratings"], ratings_where)
    check_ratings(rdf, spec.scale, spec.layout["ratings"], ratings_where)

    item_vocab = titles = genres = None
    genre_names: tuple[str, ...] = ()
    if "movies" in blobs:
        movies_where = src.where(spec.files["movies"])
        mdf = read_table(blobs["movies"], spec.layout["movies"], movies_where)
        _check_unique_ids(mdf, spec.layout["movies"], movies_where)
        mdf = mdf.sort_values("item", kind="stable").reset_index(drop=True)
        item_vocab = mdf["item"].to_numpy(np.int64)
        titles = mdf["title"].to_numpy(object)
        genres, genre_names = _genres(mdf, spec.genre_encoding)

    sha = archive_sha or digests[spec.files["ratings"]]
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
    _raise_on_duplicates(ratings, ratings_where, spec.layout["ratings"])
    if "tags" in blobs:
        ratings = _attach_tags(ratings, blobs["tags"], spec.layout["tags"],
                               src.where(spec.files["tags"]))
    return ratings


def _raise_on_mismatch(checks: list[dict]) -> None:
    for c in checks:
        if c["ok"] is False:
            raise ChecksumMismatch(
                f"{c['file']}: {c['algorithm']} {c['actual']}, expected {c['expected']} "
                "(the official release); the file is damaged or not the official one. "
                "Fetch it again, or use verify=False / --no-verify to read it anyway"
            )


def check_ratings(df: pd.DataFrame, scale: RatingScale, table: Table, where: str) -> None:
    """Reject NaN, out-of-range and off-grid ratings, naming the line."""
    first_row = 1 if table.header is not None else 0
    bad = np.flatnonzero(scale.invalid_mask(df["rating"].to_numpy()))
    if bad.size:
        row = int(bad[0])
        value = float(df["rating"].iloc[row])
        raise MalformedInput(
            f"{where}, line {line_number(row, first_row)}: rating {value!r} "
            f"(user {df['user'].iloc[row]}, item {df['item'].iloc[row]}); expected a value "
            f"from {scale.minimum:g} to {scale.maximum:g} in steps of {scale.step:g}"
        )


def _raise_on_duplicates(r: Ratings, where: str, table: Table) -> None:
    dups = r.duplicate_pairs()
    if dups.size:
        first_row = 1 if table.header is not None else 0
        # the pair of lines that share the first duplicated key
        key = r.users[dups].astype(np.int64) * r.n_items + r.items[dups]
        rows = dups[key == key[0]][:2]
        lines = [line_number(int(i), first_row) for i in rows]
        raise MalformedInput(
            f"{where}, lines {lines[0]} and {lines[1]}: user {r.user_ids[r.users[rows[0]]]} "
            f"rated item {r.item_ids[r.items[rows[0]]]} twice; expected one rating per "
            "(user, item) pair"
        )


def _check_unique_ids(df: pd.DataFrame, table: Table, where: str) -> None:
    dup = df["item"].duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise MalformedInput(
            f"{where}, line {line_number(row, 1 if table.header else 0)}: movie id "
            f"{df['item'].iloc[row]} appears twice; expected one row per movie"
        )


def _genres(mdf: pd.DataFrame, encoding: str) -> tuple[np.ndarray, tuple[str, ...]]:
    if encoding == "flags":
        flags = mdf[[f"g{i}" for i in range(len(ML100K_GENRES))]].to_numpy()
        if not np.isin(flags, (0, 1)).all():
            raise MalformedInput("u.item: genre flags must be 0 or 1")
        return flags.astype(bool), ML100K_GENRES
    lists = mdf["genres"].fillna("").str.split("|")
    exploded = lists.explode()
    exploded = exploded[exploded != ""]
    names = tuple(sorted(exploded.unique()))
    codes = pd.Index(names).get_indexer(exploded.to_numpy())
    out = np.zeros((len(mdf), len(names)), dtype=bool)
    out[exploded.index.to_numpy(), codes] = True
    return out, names


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


def load_seed002(spec: DatasetSpec, path: str | Path | None = None, *, verify: bool = True) -> Ratings:
    """Seed 002's 447-row file (an unnamed index column, then userId, movieId, rating)."""
    src = locate(spec, path, download=False)
    try:
        member = spec.files["ratings"]
        data = src.read(member)
        sha = hashlib.sha256(data).hexdigest()
        want = spec.member_sha256[member]
        if verify and sha != want:
            raise ChecksumMismatch(
                f"{src.where(member)}: sha256 {sha}, expected {want} (the file seed 002 "
                "published); use verify=False to read a modified copy"
            )
        where = src.where(member)
        table = spec.layout["ratings"]
        df = read_table(data, table, where)
        check_ratings(df, spec.scale, table, where)
        r = from_arrays(
            df["user"].to_numpy(np.int64),
            df["item"].to_numpy(np.int64),
            df["rating"].to_numpy(np.float32),
            scale=spec.scale,
            name=spec.name,
            source=Source(str(src.path), sha, {member: sha}),
        )
        _raise_on_duplicates(r, where, table)
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
    integers. ``scale`` defaults to the one the values imply (min, max, finest step).
    """
    p = Path(path)
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
        scale = _infer_scale(values, table, str(p))
    check_ratings(df, scale, table, str(p))
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
    _raise_on_duplicates(r, str(p), table)
    return r


def _infer_scale(values: np.ndarray, table: Table, where: str) -> RatingScale:
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise MalformedInput(
            f"{where}, line {line_number(row, 1 if table.header else 0)}: rating "
            f"{values[row]!r}; expected a finite number"
        )
    if values.size == 0:
        raise MalformedInput(f"{where}: no ratings; expected at least one data line")
    u = np.unique(values)
    diffs = np.diff(u)
    step = float(diffs.min()) if diffs.size else 1.0
    return RatingScale(float(u[0]), float(u[-1]), step)
