"""Nothing lost, nothing silently wrong: the data layer, K-means and BiasedMF on bad input.

Each test here failed before its fix (see the issue "Nothing lost, nothing silently wrong").
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmrec_gpu.cli import main
from kmrec_gpu.cluster.kmeans import KMeans
from kmrec_gpu.data import load_csv, verify
from kmrec_gpu.data.movielens import load_movielens
from kmrec_gpu.data.registry import get_spec
from kmrec_gpu.data.synthetic import synthetic, synthetic_preset
from kmrec_gpu.errors import KmrecError, MalformedInput
from kmrec_gpu.models.mf import BiasedMF
from kmrec_gpu.ratings import RatingScale, from_arrays
from tests.conftest import load_real
from tests.fakedata import RATINGS_CSV, small_csv_files, write_zip

SMALL = get_spec("ml-latest-small")


def write(tmp_path: Path, text: str, name: str = "r.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


# ---- 1. the inferred scale: greatest common step; declared scales; the scale is shown ------
@pytest.mark.parametrize("values, scale", [
    ([1, 2.5, 4, 5], (1.0, 5.0, 0.5)),
    ([1, 3, 5], (1.0, 5.0, 2.0)),
    ([0.5, 2, 3.5, 5], (0.5, 5.0, 1.5)),
    ([1, 1.1, 2.3], (1.0, 2.3, 0.1)),
    ([0.5, 1.75, 5], (0.5, 5.0, 0.25)),
    ([3, 3], (3.0, 3.0, 1.0)),
])
def test_inferred_step_is_the_greatest_common_step(tmp_path, values, scale):
    text = "user,item,rating\n" + "".join(f"{u},1,{v}\n" for u, v in enumerate(values))
    r = load_csv(write(tmp_path, text))
    assert (r.scale.minimum, r.scale.maximum) == scale[:2]
    assert r.scale.step == pytest.approx(scale[2], abs=1e-12)
    np.testing.assert_array_equal(r.ratings, np.float32(values))


def test_inferred_scale_is_printed_so_a_typo_is_seen(tmp_path, capsys):
    p = write(tmp_path, "user,item,rating\n1,1,4\n1,2,7\n2,1,1\n2,2,3\n")  # a 7 in a 1-5 file
    r = load_csv(p)
    err = capsys.readouterr().err
    assert r.scale == RatingScale(1.0, 7.0, 1.0)
    assert str(p) in err and "1 to 7 in steps of 1" in err and "scale=" in err
    assert "1, 3, 4, 7" in err  # the distinct values, when few: the 7 stands out
    load_csv(p, scale=RatingScale(1, 7, 1))  # a declared scale is not announced
    assert capsys.readouterr().err == ""


def test_no_step_is_guessed_for_values_off_the_six_decimal_grid(tmp_path):
    p = write(tmp_path, "user,item,rating\n1,1,0.3333333\n\n1,2,0.6666667\n2,1,1\n")
    # the step is counted from the minimum (0.3333333): 0.6666667 is off any 1e-6 step
    with pytest.raises(MalformedInput, match=r"line 4: rating 0\.6666667 has more than six "
                       r"decimals.*scale=RatingScale"):
        load_csv(p)
    r = load_csv(p, scale=RatingScale(0.3333333, 1.0, 0.3333333))  # declared, it loads
    np.testing.assert_array_equal(r.ratings, np.float32([0.3333333, 0.6666667, 1.0]))


def test_value_outside_a_declared_scale_names_line_and_value(tmp_path):
    p = write(tmp_path, "user,item,rating\n1,1,4\n\n1,2,7\n2,1,1\n")
    with pytest.raises(MalformedInput, match=r"r\.csv, line 4: rating 7\.0 .*from 1 to 5"):
        load_csv(p, scale=RatingScale(1, 5, 1))


# ---- 2. blank lines do not shift line numbers ---------------------------------------------
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize("body, kwargs, match", [
    ("1,1,4\n\n2,1,nan\n", {}, "line 4: rating nan"),
    ("1,1,4\n\n2,1,9\n", {"scale": RatingScale(1, 5, 1)}, "line 4: rating 9.0"),
    ("\n1,1,4\n \n\t\n2,1,3\n1,1,2\n", {}, "lines 3 and 7: user 1 rated item 1 twice"),
    ("1,1,4\n\n\n2,1,x\n", {}, "line 5: rating 'x' is not a number"),
])
def test_blank_lines_do_not_shift_line_numbers(tmp_path, eol, body, kwargs, match):
    p = write(tmp_path, ("user,item,rating\n" + body).replace("\n", eol))
    with pytest.raises(MalformedInput, match=re.escape(match)):
        load_csv(p, **kwargs)


def test_blank_lines_in_a_release_file(tmp_path):
    ratings = RATINGS_CSV.replace("2,1,2.5", "\n2,1,2.5") + "\n3,1,5.5,964982931\n"
    z = write_zip(tmp_path / "ml-latest-small.zip", "ml-latest-small",
                  small_csv_files(ratings=ratings))
    with pytest.raises(MalformedInput, match=r"ratings\.csv, line 9: rating 5\.5"):
        load_movielens(SMALL, z, verify=False, download=False)
    movies = "movieId,title,genres\n1,A (1995),Drama\n\n1,B (1995),Drama\n"
    z = write_zip(tmp_path / "ml-latest-small.zip", "ml-latest-small",
                  small_csv_files(movies=movies))
    with pytest.raises(MalformedInput, match=r"movies\.csv, line 4: movie id 1 appears twice"):
        load_movielens(SMALL, z, verify=False, download=False)


def test_headerless_blank_lines_and_carriage_returns(tmp_path):
    p = write(tmp_path, "1,1,4\r\n\r\n2,1,3\r\n2,1,nan\r\n")
    with pytest.raises(MalformedInput, match="line 4: rating nan"):
        load_csv(p, header=False)


# ---- 3. ids beyond int64, an empty separator, a negative synthetic seed --------------------
@pytest.mark.parametrize("token", ["9223372036854775808", "-9223372036854775809",
                                   "99999999999999999999", "18446744073709551616"])
def test_user_id_beyond_int64_names_line_and_value(tmp_path, token):
    p = write(tmp_path, f"user,item,rating\n1,1,4\n\n{token},2,3\n")
    with pytest.raises(MalformedInput) as e:
        load_csv(p)
    msg = str(e.value)
    assert f"{p}, line 4: user {token!r}" in msg and "int64" in msg


def test_int64_limits_themselves_load(tmp_path):
    lo, hi = -(2**63), 2**63 - 1
    r = load_csv(write(tmp_path, f"user,item,rating\n{lo},1,4\n{hi},2,3\n"))
    assert r.user_ids.tolist() == [lo, hi]


def test_empty_separator_is_a_project_error(tmp_path):
    p = write(tmp_path, "user,item,rating\n1,1,4\n")
    with pytest.raises(KmrecError, match=rf"{re.escape(str(p))}: sep='' .*separator"):
        load_csv(p, sep="")
    with pytest.raises(ValueError):  # still a ValueError for callers that catch those
        load_csv(p, sep="")


def test_negative_synthetic_seed_is_a_project_error(capsys):
    with pytest.raises(KmrecError, match=r"synthetic-small: seed must be a non-negative int, "
                       r"got -1"):
        synthetic_preset("synthetic-small", seed=-1)
    with pytest.raises(KmrecError, match="seed"):
        synthetic(10, 30, 250, seed=-3)
    code = main(["datasets", "info", "synthetic-small", "--seed", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and "seed must be a non-negative int" in err and "Traceback" not in err


# ---- 4. `kmrec datasets verify` on a modified zip: the table, exit 1 ----------------------
def _modified(src: Path, dst: Path, old: bytes, new: bytes) -> Path:
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zo:
        for info in zi.infolist():
            data = zi.read(info)
            if info.filename.endswith("/ratings.csv"):
                assert old in data
                data = data.replace(old, new, 1)
            zo.writestr(info, data)
    return dst


def _verify_cli(capsys, path: Path) -> tuple[int, str, str]:
    code = main(["datasets", "verify", "ml-latest-small", "--path", str(path), "--no-download"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_verify_of_an_unparsable_copy_prints_the_table_and_exits_1(tmp_path, capsys):
    good = write_zip(tmp_path / "good.zip", "ml-latest-small", small_csv_files())
    (tmp_path / "bad").mkdir()
    bad = _modified(good, tmp_path / "bad" / "ml-latest-small.zip", b"\n2,1,2.5,", b"\n2,1,2x5,")
    code, out, err = _verify_cli(capsys, bad)
    assert code == 1, err
    assert "FAILED  sha256" in out and "verification FAILED" in out
    assert re.search(r"FAILED +load .*ratings\.csv, line 4: rating '2x5' is not a number", out)
    rep = verify("ml-latest-small", bad)
    assert rep["ok"] is False and any(c["algorithm"] == "load" for c in rep["checks"])


def test_verify_of_an_unreadable_zip_prints_the_table_and_exits_1(tmp_path, capsys):
    z = write_zip(tmp_path / "ml-latest-small.zip", "ml-latest-small", small_csv_files())
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    code, out, _ = _verify_cli(capsys, z)
    assert code == 1 and "FAILED  sha256" in out and "not a readable zip" in out


@pytest.mark.data
def test_verify_of_a_modified_real_zip_prints_the_table_and_exits_1(tmp_path, capsys):
    real = Path(load_real("ml-latest-small").source.path)
    (tmp_path / "copy").mkdir()
    bad = _modified(real, tmp_path / "copy" / "ml-latest-small.zip", b"\n1,1,4.0,", b"\n1,1,4.0x,")
    code, out, err = _verify_cli(capsys, bad)
    assert code == 1, err
    assert "ratings.csv, line 2: rating '4.0x' is not a number" in out
    assert "ok  sha256" in out and "movies.csv" in out  # the untouched members still checked
    assert "verification FAILED" in out


# ---- 5. K-means: complex input; fewer distinct points than clusters -----------------------
@pytest.mark.parametrize("X", [np.array([[1 + 2j, 0], [0, 1], [3, 1j]]),
                               [[1 + 2j, 0], [0, 1], [3, 1j]]])
def test_kmeans_refuses_complex_data(X):
    with pytest.raises(ValueError, match="[Cc]omplex data not supported"):
        KMeans(2).fit(X)


def test_kmeans_predict_refuses_complex_data():
    m = KMeans(2).fit(np.random.default_rng(0).random((10, 2)))
    with pytest.raises(ValueError, match="[Cc]omplex data not supported"):
        m.predict(np.ones((3, 2), dtype=np.complex64))


def test_kmeans_warns_when_it_finds_fewer_distinct_clusters():
    from sklearn.exceptions import ConvergenceWarning

    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 0.0]]), 4, axis=0)
    with pytest.warns(ConvergenceWarning,
                      match=r"Number of distinct clusters \(3\) found smaller than "
                      r"n_clusters \(5\)"):
        m = KMeans(5).fit(X)
    assert np.unique(m.labels_).size == 3


# ---- 6. BiasedMF: no more factors than the smaller side -----------------------------------
def _ratings(n_users: int, n_items: int, seed: int = 0):
    g = np.random.default_rng(seed)
    u, i = np.nonzero(g.random((n_users, n_items)) < 0.3)
    return from_arrays(u, i, g.integers(1, 6, len(u)).astype(float),
                       scale=RatingScale(1, 5, 1))


def test_biased_mf_refuses_more_factors_than_users_or_items():
    r = _ratings(20, 15)
    assert (r.n_users, r.n_items) == (20, 15)
    with pytest.raises(ValueError, match=r"n_factors=16 must be in \[1, 15\] .*20x15"):
        BiasedMF(n_factors=16, n_epochs=1).fit(r)
    BiasedMF(n_factors=15, n_epochs=1).fit(r)  # the limit itself is fine


def test_biased_mf_with_ten_thousand_factors_fails_fast():
    import time

    r = _ratings(100, 200)
    t = time.perf_counter()
    with pytest.raises(ValueError, match=r"n_factors=10000 must be in \[1, 100\]"):
        BiasedMF(n_factors=10000).fit(r)
    assert time.perf_counter() - t < 5


# ---- 7. property: every file is loaded exactly or rejected at the right line --------------
_BAD_INT = ["abc", "", "1.5", "1_000", "0x1F", "nan", "9223372036854775808",
            "-9223372036854775809", "1e", "--1", "one"]
_BAD_RATING = ["abc", "", "nan", "NaN", "N/A", "inf", "-inf", "4..0", "four", "1e"]
_GRIDS = [(0.0, 0.5), (1.0, 1.0), (0.5, 0.25), (-1.0, 0.1), (0.0, 2.0)]


@st.composite
def rating_files(draw):
    n = draw(st.integers(1, 10))
    sep = draw(st.sampled_from([",", "\t", ";", "|"]))
    header = draw(st.booleans())
    with_ts = draw(st.booleans())
    base, step = draw(st.sampled_from(_GRIDS))
    users = draw(st.lists(st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(0, 50)),
                          min_size=n, max_size=n, unique=True))
    items = draw(st.lists(st.integers(-5, 10**6), min_size=n, max_size=n))
    ks = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(0, 2**40), min_size=n, max_size=n))
    rows = []
    for j in range(n):
        cells = [str(users[j]), str(items[j]), repr(round(base + ks[j] * step, 6))]
        rows.append(cells + ([str(ts[j])] if with_ts else []))
    n_bad = draw(st.integers(0, 3))
    bad_rows = set()
    for _ in range(n_bad):
        j = draw(st.integers(0, n - 1))
        c = draw(st.integers(0, len(rows[j]) - 1))
        pool = _BAD_RATING if c == 2 else _BAD_INT
        tok = draw(st.sampled_from(pool + ["1" + sep + "2"]))
        rows[j][c] = tok
        bad_rows.add(j)
    # physical lines: optional header, blank lines anywhere after it, LF or CRLF
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    lines, line_of_row = [], []
    if header:
        lines.append(sep.join(["user", "item", "rating"] + (["t"] if with_ts else [])))
    for j, cells in enumerate(rows):
        lines += [draw(st.sampled_from(["", " ", "\t" if sep != "\t" else ""]))
                  for _ in range(draw(st.integers(0, 2)))]
        lines.append(sep.join(cells))
        line_of_row.append(len(lines))
    text = eol.join(lines) + draw(st.sampled_from([eol, ""]))
    first_bad = min((line_of_row[j] for j in bad_rows), default=None)
    good = None if bad_rows else dict(users=users, items=items, ts=ts,
                                      ratings=[float(c[2]) for c in rows])
    return text, sep, header, with_ts, first_bad, good


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(f=rating_files())
def test_property_loaded_exactly_or_rejected_at_the_right_line(tmp_path, f):
    text, sep, header, with_ts, first_bad, good = f
    p = tmp_path / "prop.csv"
    p.write_bytes(text.encode())
    kw = dict(sep=sep, header=header, timestamp_col="t" if with_ts else None)
    if first_bad is not None:
        with pytest.raises(MalformedInput) as e:
            load_csv(p, **kw)
        assert re.search(rf"prop\.csv, line {first_bad}:", str(e.value)), (str(e.value), text)
        return
    r = load_csv(p, **kw)
    assert r.user_ids[r.users].tolist() == good["users"]
    assert r.item_ids[r.items].tolist() == good["items"]
    np.testing.assert_array_equal(r.ratings, np.float32(good["ratings"]))
    if with_ts:
        assert r.timestamps.tolist() == good["ts"]
    assert not r.scale.invalid_mask(np.asarray(good["ratings"])).any()


def test_tuned_biased_mf_keeps_the_grid_points_a_small_matrix_can_fit():
    from kmrec_gpu.models.tuning import TunedBiasedMF
    from kmrec_gpu.ratings import RatingScale, from_arrays

    rng = np.random.default_rng(0)
    users, items = np.meshgrid(np.arange(20), np.arange(12))
    keep = rng.random(users.size) < 0.7
    r = from_arrays(users.ravel()[keep], items.ravel()[keep],
                    rng.integers(1, 6, keep.sum()).astype(np.float32),
                    scale=RatingScale(1.0, 5.0, 1.0), name="small")
    m = TunedBiasedMF(param_grid={"n_factors": (5, 50), "reg": (0.1,)}, max_epochs=3,
                      random_state=0).fit(r)
    assert m.best_params_["n_factors"] == 5
    m = TunedBiasedMF(param_grid={"n_factors": (50, 100), "reg": (0.1,)}, max_epochs=3,
                      random_state=0).fit(r)
    assert m.best_params_["n_factors"] == 12  # the largest rank the 20 x 12 matrix takes


@pytest.mark.parametrize("case", ["file", "file-parent", "read-only"])
def test_an_unusable_cache_folder_is_a_clear_error(tmp_path, monkeypatch, case):
    from kmrec_gpu.data import locate
    from kmrec_gpu.errors import DataError

    blocker = tmp_path / "cachefile"
    blocker.write_text("not a folder")
    if case == "file":
        target, says = blocker, "a file stands in its way"
    elif case == "file-parent":  # XDG_CACHE_HOME pointing at a file
        monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
        target, says = locate.cache_dir(), "XDG_CACHE_HOME="
    else:  # root ignores permission bits (CI runs as root): ask as a plain user would
        target, says = tmp_path / "ro", "is not writable"
        target.mkdir()
        monkeypatch.setattr(locate.os, "access", lambda *a: False)
    with pytest.raises(DataError, match=re.escape(says)):
        locate.writable_folder(target, "the download cache")
