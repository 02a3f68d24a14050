"""The MovieLens data layer: registry, lookup, parsing, and every bad input."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from kmrec_gpu.data import available, get_spec, load, load_csv, verify
from kmrec_gpu.data.locate import cache_dir, fetch, locate
from kmrec_gpu.data.movielens import load_movielens
from kmrec_gpu.data.registry import MOVIELENS
from kmrec_gpu.errors import (
    ChecksumMismatch,
    CorruptArchive,
    DataError,
    DatasetNotFound,
    MalformedInput,
    UnknownDataset,
)
from kmrec_gpu.ratings import RatingScale
from tests.fakedata import (
    MOVIES_CSV,
    RATINGS_CSV,
    U_DATA,
    U_ITEM,
    small_csv_files,
    write_dir,
    write_zip,
)

SMALL = get_spec("ml-latest-small")


def fake_small_zip(tmp_path: Path, **kw) -> Path:
    return write_zip(tmp_path / "ml-latest-small.zip", "ml-latest-small", small_csv_files(**kw))


def load_fake(path: Path):
    return load_movielens(SMALL, path, verify=False, download=False)


# ---- registry ----------------------------------------------------------------------------
def test_registry_covers_every_release():
    assert set(MOVIELENS) == {"ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m",
                              "ml-latest-small"}
    assert get_spec("ml-100k").files["ratings"] == "u.data"
    assert get_spec("ml-100k").layout["ratings"].sep == "\t"
    assert get_spec("ml-100k").layout["movies"].encoding == "latin-1"
    assert get_spec("ml-1m").layout["ratings"].sep == "::"
    assert get_spec("ml-1m").layout["movies"].encoding == "latin-1"
    assert get_spec("ml-10m").folder == "ml-10M100K"
    assert get_spec("ml-25m").layout["ratings"].header == ("userId", "movieId", "rating",
                                                           "timestamp")
    assert get_spec("ml-100k").genre_encoding == "flags"
    assert {get_spec(n).genre_encoding for n in MOVIELENS if n != "ml-100k"} == {"pipe"}
    # every release can be checked: a digest is known, or GroupLens's .md5 is fetched
    assert get_spec("ml-100k").zip_sha256.startswith("50d2a982")
    assert get_spec("ml-latest-small").zip_sha256.startswith("696d65a3")
    assert get_spec("ml-1m").zip_sha256.startswith("a6898adb")
    assert get_spec("ml-25m").zip_md5 == "6b51fb2759a8657d3bfcbfc42b592ada"
    assert get_spec("ml-32m").expected.n_ratings == 32_000_204


def test_unknown_dataset_name():
    with pytest.raises(UnknownDataset, match="unknown dataset 'ml-7m'.*ml-100k"):
        load("ml-7m")


def test_available_lists_releases_seed_and_presets():
    names = {r["name"] for r in available()}
    assert {"ml-100k", "ml-latest-small", "seed-002", "synthetic-ml-25m"} <= names


# ---- lookup order ------------------------------------------------------------------------
def test_explicit_path_zip_and_folder_give_the_same_ratings(tmp_path):
    z = fake_small_zip(tmp_path)
    d = write_dir(tmp_path / "extracted" / "ml-latest-small", small_csv_files())
    a, b = load_fake(z), load_fake(d.parent)
    assert a.source.path.endswith(".zip") and b.source.path.endswith("ml-latest-small")
    for col in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))


def test_lookup_order_data_dir_path_list_then_cache(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    fake_small_zip(second)
    monkeypatch.setenv("KMREC_DATA_DIR", f"{first}:{second}")
    assert locate(SMALL, download=False).path == second / "ml-latest-small.zip"
    monkeypatch.setenv("KMREC_DATA_DIR", str(first))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "kmrec").mkdir(parents=True)
    fake_small_zip(tmp_path / "xdg" / "kmrec")
    assert locate(SMALL, download=False).path == tmp_path / "xdg" / "kmrec" / "ml-latest-small.zip"


def test_offline_error_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KMREC_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(DatasetNotFound) as e:
        load("ml-latest-small")
    msg = str(e.value)
    assert "'ml-latest-small' not found" in msg
    assert str(tmp_path / "ml-latest-small.zip") in msg
    assert "KMREC_OFFLINE" in msg  # why it was not downloaded
    assert "ml-latest-small.zip" in msg and "KMREC_DATA_DIR" in msg  # where to put it
    assert "synthetic-ml-latest-small" in msg  # how to run without it


# ---- bad input ---------------------------------------------------------------------------
def test_truncated_zip(tmp_path):
    z = fake_small_zip(tmp_path)
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    with pytest.raises(CorruptArchive, match=f"{z}.*not a readable zip"):
        load_fake(z)


def test_corrupt_zip_member_fails_its_crc(tmp_path):
    big = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{i},3.0,1\n" for u in range(1, 40) for i in (1, 2, 3))
    z = write_zip(tmp_path / "ml-latest-small.zip", "ml-latest-small",
                  small_csv_files(ratings=big))
    raw = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("ml-latest-small/ratings.csv")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(start + 5, start + 25):
        raw[k] ^= 0xFF
    z.write_bytes(bytes(raw))
    with pytest.raises(CorruptArchive, match="ratings.csv.*corrupt"):
        load_fake(z)


def test_missing_member(tmp_path):
    z = write_zip(tmp_path / "ml-latest-small.zip", "ml-latest-small",
                  {"ratings.csv": RATINGS_CSV})
    with pytest.raises(CorruptArchive, match="missing member ml-latest-small/movies.csv"):
        load_fake(z)


def test_checksum_mismatch_of_a_zip_names_both_digests(tmp_path):
    z = fake_small_zip(tmp_path)
    got = hashlib.sha256(z.read_bytes()).hexdigest()
    with pytest.raises(ChecksumMismatch) as e:
        load_movielens(SMALL, z, download=False)
    assert got in str(e.value) and SMALL.zip_sha256 in str(e.value) and str(z) in str(e.value)


def test_checksum_mismatch_of_a_folder_file(tmp_path):
    d = write_dir(tmp_path / "ml-100k", {"u.data": U_DATA, "u.item": U_ITEM})
    with pytest.raises(ChecksumMismatch, match=r"u\.data: sha256 .* expected 06416e59"):
        load("ml-100k", d)
    r = load("ml-100k", d, verify=False)  # an edited copy is readable on request
    assert len(r) == 3 and r.genres.shape == (3, 19)


@pytest.mark.parametrize("line, why", [
    ("1,2,4.0", "3 fields"),
    ("1,2,4.0,5,6", "5 fields"),
    ("one,2,4.0,5", "user 'one' is not an integer"),
    ("1,2,good,5", "rating 'good' is not a number"),
    ("1,2,4.0,", "timestamp '' is not an integer"),
])
def test_malformed_line_names_file_and_line(tmp_path, line, why):
    ratings = RATINGS_CSV + line + "\n" + "3,1,3.0,964982931\n"
    z = fake_small_zip(tmp_path, ratings=ratings)
    with pytest.raises(MalformedInput) as e:
        load_fake(z)
    assert "ratings.csv, line 7" in str(e.value) and why in str(e.value)


@pytest.mark.parametrize("value", ["nan", "NaN", "", "inf"])
def test_nan_or_missing_rating(tmp_path, value):
    z = fake_small_zip(tmp_path, ratings=RATINGS_CSV + f"3,1,{value},964982931\n")
    with pytest.raises(MalformedInput, match="line 7: rating .*expected a value from 0.5 to 5"):
        load_fake(z)


@pytest.mark.parametrize("value", ["5.5", "0", "-1", "3.25"])
def test_out_of_range_or_off_grid_rating(tmp_path, value):
    z = fake_small_zip(tmp_path, ratings=RATINGS_CSV + f"3,1,{value},964982931\n")
    with pytest.raises(MalformedInput, match=rf"line 7: rating {float(value)!r}.*steps of 0.5"):
        load_fake(z)


def test_duplicate_pair_names_both_lines(tmp_path):
    z = fake_small_zip(tmp_path, ratings=RATINGS_CSV + "2,2,1.0,964983999\n")
    with pytest.raises(MalformedInput, match=r"lines 5 and 7: user 2 rated item 2 twice"):
        load_fake(z)


def test_wrong_header(tmp_path):
    z = fake_small_zip(tmp_path, ratings=RATINGS_CSV.replace("userId", "user_id"))
    with pytest.raises(MalformedInput, match="ratings.csv, line 1: header 'user_id,movieId"):
        load_fake(z)


def test_rating_of_a_movie_outside_the_movie_table(tmp_path):
    z = fake_small_zip(tmp_path, ratings=RATINGS_CSV + "3,99,3.0,1\n")
    with pytest.raises(DataError, match=r"rated item ids \[99\] are not in the item table"):
        load_fake(z)


def test_bad_encoding_names_the_line(tmp_path):
    movies = MOVIES_CSV.encode() + b"5,Caf\xe9 (1990),Drama\n"
    z = fake_small_zip(tmp_path, movies=movies)
    with pytest.raises(MalformedInput, match="movies.csv, line 6: .*not valid utf-8"):
        load_fake(z)


def test_tab_separated_u_data_malformed(tmp_path):
    d = write_dir(tmp_path / "ml-100k", {"u.data": U_DATA + "4\t1\n", "u.item": U_ITEM})
    with pytest.raises(MalformedInput, match=r"u\.data, line 4: 2 fields"):
        load("ml-100k", d, verify=False)


# ---- what a good file gives -------------------------------------------------------------
def test_fake_small_contents(tmp_path):
    r = load_fake(fake_small_zip(tmp_path))
    assert (len(r), r.n_users, r.n_items, r.n_rated_items) == (5, 3, 4, 3)
    assert r.users.dtype == np.int32 and r.ratings.dtype == np.float32
    assert r.timestamps.dtype == np.int64
    assert r.genre_names == ("(no genres listed)", "Action", "Adventure", "Animation",
                             "Children", "Comedy", "Crime", "Fantasy", "Thriller")
    assert r.titles[1] == "Jumanji, The (1995)"
    assert r.genres[r.item_codes(4)].tolist() == [True] + [False] * 8
    # tags: 3 kept (one quoted with a comma), one by a user with no rating dropped, counted
    assert len(r.tags) == 3 and r.meta["n_tags_dropped"] == 1
    assert "pixar, animation" in set(r.tags.tags)
    np.testing.assert_array_equal(r.tag_counts(), [2, 0, 0, 1, 0])
    csr = r.to_csr()
    assert csr.shape == (3, 4) and csr[r.user_codes(2), r.item_codes(2)] == 5.0


def test_user_csv_with_own_columns_and_separator(tmp_path):
    p = tmp_path / "mine.tsv"
    p.write_text("who\twhat\tstars\twhen\textra\n7\t100\t2\t5\tx\n7\t200\t4\t6\ty\n"
                 "8\t100\t5\t7\tz\n")
    r = load_csv(p, user_col="who", item_col="what", rating_col="stars", timestamp_col="when",
                 sep="\t")
    assert r.scale == RatingScale(2.0, 5.0, 1.0)
    assert r.user_ids.tolist() == [7, 8] and r.timestamps.tolist() == [5, 6, 7]
    with pytest.raises(MalformedInput, match=r"line 1: header .* lacks column\(s\) \['rating'\]"):
        load_csv(p, sep="\t", user_col="who", item_col="what")
    p.write_text("1,1,4\n1,1,3\n")
    with pytest.raises(MalformedInput, match="lines 1 and 2"):
        load_csv(p, header=False)
    p.write_text("1,1,4\n2,1,9\n")
    with pytest.raises(MalformedInput, match="line 2: rating 9.0"):
        load_csv(p, header=False, scale=RatingScale(1, 5, 1))


# ---- download ----------------------------------------------------------------------------
@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_verified_and_renamed_into_place(tmp_path, http_root):
    root, url = http_root
    z = fake_small_zip(root)
    spec = dataclasses.replace(SMALL, zip_sha256=hashlib.sha256(z.read_bytes()).hexdigest(),
                               zip_md5=None)
    dest = tmp_path / "cache"
    got = fetch(spec, dest, url=f"{url}/ml-latest-small.zip")
    assert got == dest / "ml-latest-small.zip" and got.read_bytes() == z.read_bytes()
    assert [p.name for p in dest.iterdir()] == ["ml-latest-small.zip"]


def test_download_with_wrong_digest_leaves_nothing(tmp_path, http_root):
    root, url = http_root
    fake_small_zip(root)
    dest = tmp_path / "cache"
    with pytest.raises(ChecksumMismatch, match="sha256 .* expected 696d65a3.*discarded"):
        fetch(SMALL, dest, url=f"{url}/ml-latest-small.zip")
    assert list(dest.iterdir()) == []


def test_download_checked_against_published_md5_when_no_digest_is_known(tmp_path, http_root):
    root, url = http_root
    z = fake_small_zip(root)
    (root / "ml-latest-small.zip.md5").write_text(hashlib.md5(z.read_bytes()).hexdigest()
                                                  + "  ml-latest-small.zip\n")
    spec = dataclasses.replace(SMALL, zip_sha256=None, zip_md5=None)
    assert fetch(spec, tmp_path / "c", url=f"{url}/ml-latest-small.zip").is_file()
    (root / "ml-latest-small.zip.md5").write_text("0" * 32)
    with pytest.raises(ChecksumMismatch):
        fetch(spec, tmp_path / "d", url=f"{url}/ml-latest-small.zip")
    assert list((tmp_path / "d").iterdir()) == []


def test_failed_download_is_reported(tmp_path, http_root, monkeypatch):
    _, url = http_root
    monkeypatch.delenv("KMREC_OFFLINE")
    monkeypatch.setenv("KMREC_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("KMREC_MOVIELENS_URL", url)  # serves no zip: 404
    with pytest.raises(DatasetNotFound, match=r"download of .*/ml-1m.zip failed: HTTP Error 404"):
        load("ml-1m")
    assert not any(cache_dir().glob("*ml-1m*"))


# ---- the real copies (KMREC_DATA_DIR) ---------------------------------------------------
@pytest.mark.data
def test_ml100k_counts(ml100k):
    s = ml100k.summary()
    assert (s["n_ratings"], s["n_users"], s["n_items"]) == (100_000, 943, 1_682)
    assert (s["rating_min"], s["rating_max"], s["rating_step"]) == (1.0, 5.0, 1.0)
    assert s["n_genres"] == 19 and s["genres"][0] == "unknown"
    assert s["sha256"] == get_spec("ml-100k").member_sha256["u.data"]
    np.testing.assert_array_equal(np.bincount(ml100k.ratings.astype(int))[1:],
                                  [6_110, 11_370, 27_145, 34_174, 21_201])
    assert np.bincount(ml100k.users).min() >= 20
    assert ml100k.titles[ml100k.item_codes(1)] == "Toy Story (1995)"


@pytest.mark.data
def test_ml_latest_small_counts(ml_small):
    s = ml_small.summary()
    assert (s["n_ratings"], s["n_users"], s["n_items"], s["n_movies"]) == (
        100_836, 610, 9_724, 9_742)
    assert (s["rating_min"], s["rating_max"], s["rating_step"]) == (0.5, 5.0, 0.5)
    assert s["n_genres"] == 20 and "IMAX" in s["genres"] and "(no genres listed)" in s["genres"]
    assert s["n_tags"] == 3_683 and s["n_tags_dropped"] == 0
    assert s["sha256"] == get_spec("ml-latest-small").zip_sha256
    # seed 000's adjusted target reaches 91.5 = 5.0 + 0.5 * 173 tags on one movie
    assert ml_small.tag_counts().max() == 173
    csr = ml_small.to_csr()
    assert csr.shape == (610, 9_742) and csr.nnz == 100_836
    assert np.isclose(csr.sum(), ml_small.ratings.sum(dtype=np.float64))


@pytest.mark.data
def test_seed002_file(seed002):
    assert (len(seed002), seed002.n_rated_users, seed002.n_rated_items) == (447, 100, 83)
    assert set(np.unique(seed002.ratings)) == {4.0, 4.5, 5.0}


@pytest.mark.data
@pytest.mark.parametrize("name", ["ml-100k", "ml-latest-small", "seed-002"])
def test_verify_real_copies(name):
    from tests.conftest import load_real

    load_real(name)  # skips or fails as configured when the copy is absent
    rep = verify(name)
    assert rep["ok"], rep
    assert any(c["algorithm"] == "count" and c["ok"] for c in rep["checks"])


def test_ratings_memory_per_row_supports_32m_under_1gb():
    from kmrec_gpu.ratings import from_arrays

    n = 1000
    r = from_arrays(np.arange(n) % 7, np.arange(n), np.full(n, 3.0), np.zeros(n, np.int64),
                    scale=RatingScale(0.5, 5, 0.5))
    assert r.nbytes == 20 * n and 20 * 32_000_204 < 0.7 * 2**30
