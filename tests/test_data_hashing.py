"""Digests are taken only to verify, and each file at most once.

``load(verify=False)`` hashes nothing (its source carries no digest); ``verify=True``
hashes a zip once (sha256 and md5 in one pass) and a member only when the zip's digest
does not already vouch for it; a modified zip or member is still refused. Also: the
vectorised genre table equals the per-movie explode it replaced, and the header-as-header
parse equals the skip-the-first-line parse.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io

import numpy as np
import pandas as pd
import pytest

from kmrec_gpu.data import load, movielens, verify
from kmrec_gpu.data import locate as locate_mod
from kmrec_gpu.data.movielens import load_movielens
from kmrec_gpu.data.parse import read_table
from kmrec_gpu.data.registry import CSV_LAYOUT, get_spec
from kmrec_gpu.errors import ChecksumMismatch
from tests.fakedata import MOVIES_CSV, RATINGS_CSV, TAGS_CSV, small_csv_files, write_zip

SMALL = get_spec("ml-latest-small")


class _Counts:
    def __init__(self, monkeypatch):
        self.zip, self.member = 0, 0
        real_file, real_sha = locate_mod.file_digests, movielens._sha256

        def file_digests(path):
            self.zip += 1
            return real_file(path)

        def sha(data):
            self.member += 1
            return real_sha(data)

        monkeypatch.setattr(locate_mod, "file_digests", file_digests)
        monkeypatch.setattr(movielens, "_sha256", sha)


@pytest.fixture
def no_hashing(monkeypatch):
    """Any digest taken fails the test."""
    def refuse(*a, **k):
        raise AssertionError("hashed although verify=False")

    monkeypatch.setattr(locate_mod, "file_digests", refuse)
    monkeypatch.setattr(movielens, "_sha256", refuse)
    monkeypatch.setattr(movielens.hashlib, "sha256", refuse)


def _fake_zip(tmp_path):
    return write_zip(tmp_path / "ml-latest-small.zip", "ml-latest-small", small_csv_files())


def _official_spec(z):
    """SMALL with the fake zip's digests as the official ones."""
    members = {"ratings.csv": RATINGS_CSV, "movies.csv": MOVIES_CSV, "tags.csv": TAGS_CSV}
    return dataclasses.replace(
        SMALL, zip_sha256=hashlib.sha256(z.read_bytes()).hexdigest(),
        zip_md5=hashlib.md5(z.read_bytes()).hexdigest(),
        member_sha256={m: hashlib.sha256(t.encode()).hexdigest() for m, t in members.items()})


def test_verify_false_hashes_nothing(tmp_path, no_hashing):
    r = load_movielens(SMALL, _fake_zip(tmp_path), verify=False, download=False)
    assert len(r) == 5 and r.source.sha256 is None and r.source.files == {}


@pytest.mark.data
def test_verify_false_hashes_nothing_on_the_real_copy(ml_small, no_hashing):
    r = load("ml-latest-small", download=False, verify=False)
    assert len(r) == len(ml_small) and r.source.sha256 is None
    np.testing.assert_array_equal(r.genres, ml_small.genres)


def test_an_official_zip_is_hashed_once_and_its_members_not_at_all(tmp_path, monkeypatch):
    z = _fake_zip(tmp_path)
    spec = _official_spec(z)
    counts = _Counts(monkeypatch)
    r = load_movielens(spec, z, download=False)
    assert (counts.zip, counts.member) == (1, 0)
    # the same record as hashing every member would give
    assert r.source.sha256 == spec.zip_sha256
    assert r.source.files == {m: spec.member_sha256[m] for m in spec.files.values()}


def test_members_are_hashed_once_when_no_zip_digest_vouches(tmp_path, monkeypatch):
    z = _fake_zip(tmp_path)
    spec = dataclasses.replace(_official_spec(z), zip_sha256=None, zip_md5=None)
    counts = _Counts(monkeypatch)
    r = load_movielens(spec, z, download=False)
    assert (counts.zip, counts.member) == (1, 3)
    assert r.source.files == {m: spec.member_sha256[m] for m in spec.files.values()}
    assert r.source.sha256 == hashlib.sha256(z.read_bytes()).hexdigest()


def test_a_modified_member_is_refused_without_a_zip_digest(tmp_path):
    z = _fake_zip(tmp_path)
    spec = dataclasses.replace(_official_spec(z), zip_sha256=None, zip_md5=None)
    (tmp_path / "e").mkdir()
    edited = write_zip(tmp_path / "e" / "ml-latest-small.zip", "ml-latest-small",
                       small_csv_files(ratings=RATINGS_CSV.replace("4.5", "3.5")))
    with pytest.raises(ChecksumMismatch, match=r"ratings\.csv: sha256 .* expected"):
        load_movielens(spec, edited, download=False)
    assert len(load_movielens(spec, edited, verify=False, download=False)) == 5


def test_a_modified_zip_is_refused(tmp_path):
    z = _fake_zip(tmp_path)
    spec = _official_spec(z)
    raw = bytearray(z.read_bytes())
    raw[-30] ^= 0xFF  # in the central directory's tail: still a zip, another digest
    z.write_bytes(bytes(raw))
    with pytest.raises(ChecksumMismatch, match="sha256 .* expected"):
        load_movielens(spec, z, download=False)


@pytest.mark.data
def test_registry_member_digests_match_the_real_zip(ml_small):
    """An official zip vouches for its members through these digests: they must be right."""
    src = locate_mod.locate(SMALL, download=False)
    try:
        for member, want in SMALL.member_sha256.items():
            assert hashlib.sha256(src.read(member)).hexdigest() == want, member
    finally:
        src.close()
    assert ml_small.source.files == {m: SMALL.member_sha256[m] for m in SMALL.files.values()}


@pytest.mark.data
def test_verify_report_still_lists_member_digests(ml_small):
    rep = verify("ml-latest-small")
    got = {c["file"].rsplit(":", 1)[-1]: c for c in rep["checks"] if c["algorithm"] == "sha256"}
    assert rep["ok"] and all(got[m]["ok"] for m in SMALL.files.values())


# -- the genre table ------------------------------------------------------------------------

def _explode_genres(mdf):
    """The per-movie split and explode that _genres replaced."""
    exploded = mdf["genres"].fillna("").str.split("|").explode()
    exploded = exploded[exploded != ""]
    names = tuple(sorted(exploded.unique()))
    out = np.zeros((len(mdf), len(names)), dtype=bool)
    out[exploded.index.to_numpy(), pd.Index(names).get_indexer(exploded.to_numpy())] = True
    return out, names


@pytest.mark.parametrize("values", [
    ["Action|Comedy", "", None, "Comedy", "a||b", "|x|", "(no genres listed)", "Zed|A|Zed"],
    [None, None], ["", ""], ["Drama"], [],
])
@pytest.mark.parametrize("dtype", ["str", object])
def test_genre_table_equals_the_explode(values, dtype):
    mdf = pd.DataFrame({"genres": pd.Series(values, dtype=dtype)})
    want, want_names = _explode_genres(mdf)
    got, names = movielens._genres(mdf, "pipe")
    assert names == want_names and got.dtype == bool
    np.testing.assert_array_equal(got, want)


# -- header-as-header parse -----------------------------------------------------------------

@pytest.mark.parametrize("text", [
    RATINGS_CSV,
    RATINGS_CSV.replace("\n", "\r\n"),
    RATINGS_CSV.replace("\n", "\n\n", 2),  # blank lines right after the header and later
    RATINGS_CSV.rstrip("\n"),
    "userId,movieId,rating,timestamp\n",  # a header only
])
def test_ratings_parse_equals_skipping_the_first_line(text):
    table = CSV_LAYOUT["ratings"]
    got = read_table(text.encode(), table, "r.csv")
    want = pd.read_csv(io.StringIO(text), header=None, skiprows=1, names=list(table.columns),
                       dtype={"user": "int64", "item": "int64", "rating": "float64",
                              "timestamp": "int64"}, quoting=3, skip_blank_lines=True)
    pd.testing.assert_frame_equal(got, want)


def test_quoted_movies_parse_equals_skipping_the_first_line():
    text = MOVIES_CSV + '5,"Two\nlines (2001)",Drama\n6,"",\n'
    table = CSV_LAYOUT["movies"]
    got = read_table(text.encode(), table, "m.csv")
    want = pd.read_csv(io.StringIO(text), header=None, skiprows=1, names=list(table.columns),
                       dtype={"item": "int64", "title": "str", "genres": "str"},
                       keep_default_na=False, na_values={"item": [""]})
    pd.testing.assert_frame_equal(got, want)
