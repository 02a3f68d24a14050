"""The plain-case numeric parser (kernels/cpu_csv.py) reads exactly what pandas' C parser
reads, and hands every other file back to it, errors and all."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from kernels.cpu_csv import parse_numeric
from kmrec_gpu.data import parse
from kmrec_gpu.data.parse import Table, read_table
from kmrec_gpu.errors import MalformedInput

RATINGS = Table(columns=["user", "item", "rating", "timestamp"],
                kinds=["int", "int", "float", "int"],
                header=["userId", "movieId", "rating", "timestamp"])


def general(data: bytes, table: Table) -> pd.DataFrame:
    """What the C parser path returns for ``data``."""
    dtypes = {c: "float64" if k == "float" else "int64" for c, k in zip(table.columns, table.kinds)}
    return parse._read_csv(io.BytesIO(data), table.sep, table, int(table.header is not None),
                           dtypes)


def random_file(seed: int, sep: str, header: bool, crlf: bool, trailing_newline: bool) -> bytes:
    g = np.random.default_rng(seed)
    n = 200
    ints = g.integers(-10**18 + 1, 10**18, size=(n, 3))
    ints[: n // 2] //= 10 ** g.integers(0, 18, size=(n // 2, 3))  # short ones too
    lines = []
    for i in range(n):
        frac = int(g.integers(0, 8))
        whole = int(g.integers(0, 10**7))
        rating = f"{whole}.{int(g.integers(0, 10**frac)):0{frac}d}" if frac else str(whole)
        if g.random() < 0.2:
            rating = "-" + rating
        if g.random() < 0.1:
            rating = "." + str(int(g.integers(0, 10**5)))
        lines.append(sep.join([str(ints[i, 0]), str(ints[i, 1]), rating, str(ints[i, 2])]))
        if g.random() < 0.05:
            lines.append("")  # a blank line
    if header:
        lines.insert(0, sep.join(RATINGS.header))
    nl = "\r\n" if crlf else "\n"
    return (nl.join(lines) + (nl if trailing_newline else "")).encode()


@pytest.mark.parametrize("seed", range(6))
def test_plain_files_read_to_the_bit_as_pandas_reads_them(seed):
    g = np.random.default_rng(100 + seed)
    sep = "\t" if seed % 2 else ","
    header = seed % 3 != 0
    table = Table(RATINGS.columns, RATINGS.kinds, sep=sep,
                  header=RATINGS.header if header else None)
    data = random_file(seed, sep, header, crlf=bool(g.integers(2)),
                       trailing_newline=bool(g.integers(2)))
    fast = parse._plain_numeric(data, table)
    assert fast is not None, "a plain file must take the fast path"
    pd.testing.assert_frame_equal(fast, general(data, table), check_exact=True)
    pd.testing.assert_frame_equal(read_table(data, table, "r.csv"), fast, check_exact=True)


def outcome(data: bytes, table: Table):
    """read_table's frame, or its error's type and text."""
    try:
        return read_table(data, table, "r.csv")
    except Exception as e:  # the error is the outcome compared
        return type(e), str(e)


@pytest.mark.parametrize("tail", [
    "1,2,1e3,4\n",            # an exponent
    "+1,2,3.5,4\n",           # a plus sign
    "1, 2,3.5,4\n",           # a space
    '1,"2",3.5,4\n',          # a quote
    "1,2,nan,4\n",            # a spelled NaN
    "1,2,,4\n",               # an empty field
    "1,2,3.5\n",              # a field short
    "1,2,3.5,4,5\n",          # a field over
    "1,2,3.,4\n",             # a dot with no digit after it
    "1,2,3.5,4\r",            # a lone carriage return ends the file
    "1,2,3.5,4\r5,6,4.0,7\n",  # a lone carriage return between records
    "1234567890123456789,2,3.5,4\n",  # 19 digits: past the exact integer range kept
    "1,2,3.141592653589793,4\n",      # 16 digits: past the exact decimal range kept
    "1,2,3.5,4\xe9\n",              # not ASCII
])
def test_anything_else_goes_to_the_general_parser(tail, monkeypatch):
    data = ("userId,movieId,rating,timestamp\n" + tail).encode("latin-1")
    assert parse._plain_numeric(data, RATINGS) is None
    now = outcome(data, RATINGS)
    monkeypatch.setattr(parse, "_plain_numeric", lambda *a: None)  # the parser before
    before = outcome(data, RATINGS)
    if isinstance(before, tuple):
        assert now == before
    else:
        pd.testing.assert_frame_equal(now, before, check_exact=True)


def test_errors_still_name_the_line():
    data = b"userId,movieId,rating,timestamp\n1,2,3.5,4\n\n5,x,4.0,6\n"
    with pytest.raises(MalformedInput, match=r"r.csv, line 4"):
        read_table(data, RATINGS, "r.csv")


def test_a_bad_header_is_refused_as_before():
    with pytest.raises(MalformedInput, match="line 1: header"):
        read_table(b"user,movie,rating,ts\n1,2,3.5,4\n", RATINGS, "r.csv")


def test_a_header_only_file_is_empty_and_typed():
    got = read_table(b"userId,movieId,rating,timestamp\n", RATINGS, "r.csv")
    assert len(got) == 0 and got.dtypes.tolist() == [np.int64, np.int64, np.float64, np.int64]


def test_the_kernel_splits_columns_by_kind():
    ints, floats = parse_numeric(b"7,-0.25,8\n-9,1.5,10", 0, ord(","),
                                 np.array([False, True, False]))
    np.testing.assert_array_equal(ints, [[7, -9], [8, 10]])
    np.testing.assert_array_equal(floats, [[-0.25, 1.5]])


def test_text_columns_of_digits_stay_text():
    t = Table(columns=["item", "tag"], kinds=["int", "str"], header=["a", "b"])
    df = read_table(b"a,b\n1,007\n2,2001\n", t, "tags.csv")
    assert df["tag"].tolist() == ["007", "2001"]


def test_movielens_rating_files_take_the_fast_path(ml_small, ml100k):
    for r in (ml_small, ml100k):
        from kmrec_gpu.data.locate import locate
        from kmrec_gpu.data.registry import get_spec

        spec = get_spec(r.name)
        src = locate(spec, download=False)
        try:
            data = src.read(spec.files["ratings"])
        finally:
            src.close()
        fast = parse._plain_numeric(data, spec.layout["ratings"])
        assert fast is not None and len(fast) == len(r)
        pd.testing.assert_frame_equal(fast, general(data, spec.layout["ratings"]),
                                      check_exact=True)
