"""Delimited-text parsing with errors that point at the offending line.

An all-numeric file in the plain case (integers and short decimals, a one-byte separator:
every MovieLens rating file but ml-1m's ``::``) is read by ``kernels.cpu_csv``; any other
file, or one with a line outside that case, by pandas' C parser. When that fails, or when
a parsed value is invalid, the file is scanned again line by line (only then, so good
files pay nothing) to name the first bad line and say what was expected there.

Line numbers are physical lines, as an editor shows them: blank lines (which the parser
skips, so they are not data rows) still count, and so does a header. :func:`row_lines`
maps data rows back to their lines.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from kmrec_gpu.errors import InvalidArgument, MalformedInput

_INT, _FLOAT, _STR = "int", "float", "str"
# Spellings of "missing" that must become NaN in numeric columns (so they are reported as
# bad values with their line), while titles and tags keep them as text.
_NA_TOKENS = ["", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None"]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# The C parser ends a record at \n, \r\n or a lone \r; a line (as reported) ends at \n.
_BREAK = re.compile(r"\r\n|\r|\n")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Table:
    """How one delimited file is laid out."""

    columns: Sequence[str]  # our names, in file order
    kinds: Sequence[str]  # "int" | "float" | "str" per column
    sep: str = ","
    header: Sequence[str] | None = None  # expected header line, None if headerless
    encoding: str = "utf-8"
    quoted: bool = False  # CSV quoting (titles, tags may contain the separator)

    @property
    def expected(self) -> str:
        return self.sep.join(f"{c}:{k}" for c, k in zip(self.columns, self.kinds))


def check_separator(sep: object, where: str) -> None:
    """Refuse a separator that cannot split a line (empty, not a string, a line break)."""
    if not isinstance(sep, str) or sep == "" or "\n" in sep or "\r" in sep:
        raise InvalidArgument(
            f"{where}: sep={sep!r} is not a usable field separator; expected a non-empty "
            "string without line breaks, such as ',' or '\\t'"
        )


def read_table(data: bytes, table: Table, where: str) -> pd.DataFrame:
    """Parse ``data`` (the bytes of file ``where``) into a DataFrame of ``table.columns``."""
    check_separator(table.sep, where)
    plain = _plain_numeric(data, table)
    if plain is not None:
        return plain
    try:
        text_data = data.decode(table.encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise MalformedInput(
            f"{where}, line {line}: bytes {data[e.start:e.end]!r} are not valid "
            f"{table.encoding}; expected a {table.encoding} text file"
        ) from None
    sep = table.sep
    if len(sep) > 1:
        # The C parser takes one-character separators only; a control character cannot
        # occur in MovieLens text, so swapping it in loses nothing.
        text_data = text_data.replace(sep, "\x1f")
        sep = "\x1f"
    first_row = 0
    if table.header is not None:
        first_line = text_data.split("\n", 1)[0].rstrip("\r")
        if not _header_matches(first_line, sep, table):
            raise MalformedInput(
                f"{where}, line 1: header {first_line!r}; expected "
                f"{table.sep.join(table.header)!r}"
            )
        first_row = 1
    dtypes = {c: ("float64" if k == _FLOAT else "str" if k == _STR else "int64")
              for c, k in zip(table.columns, table.kinds)}
    try:
        # a failed int cast warns before it raises; a first row with more fields than the
        # table has columns would be cut short with only a ParserWarning: make it an error
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # the bytes themselves when the parser would see the same ones (UTF-8 as
            # checked above, no BOM, no separator swapped): no re-encoding of the text
            direct = (sep == table.sep and table.encoding.lower().replace("-", "") == "utf8"
                      and not data.startswith(b"\xef\xbb\xbf"))
            buf = io.BytesIO(data) if direct else io.StringIO(text_data)
            # text columns inferred, not named: pandas reads a named "str" column at a
            # third of the speed (4.4 ms against 2.0 for ml-latest-small's movies.csv);
            # a text column that inference made numeric ("2001") is read again as named
            df = _read_csv(buf, sep, table, first_row,
                           {c: k for c, k in dtypes.items() if k != "str"})
            if not all(pd.api.types.is_string_dtype(df[c])
                       for c, k in dtypes.items() if k == "str"):
                buf.seek(0)
                df = _read_csv(buf, sep, table, first_row, dtypes)
    except (ValueError, OverflowError, pd.errors.ParserError, pd.errors.ParserWarning) as e:
        _raise_first_bad_line(text_data, sep, table, where, first_row, e)
        raise  # unreachable: the scan always finds the line pandas choked on
    for c, k in zip(table.columns, table.kinds):
        if k == _INT and df[c].dtype.kind == "u":
            # pandas 2 reads a column with a value above int64's range as uint64 instead
            # of failing the int64 it was asked for (pandas 3 fails): the same error here
            _raise_first_bad_line(text_data, sep, table, where, first_row,
                                  OverflowError(f"{c} exceeds int64"))
        if k == _INT and df[c].isna().any():
            bad_row = int(np.flatnonzero(df[c].isna().to_numpy())[0])
            _raise_at_row(text_data, bad_row, first_row, where, f"empty {c}", table)
    return df


def _header_matches(line: str, sep: str, table: Table) -> bool:
    """The file's first line names ``table.header`` (fields trimmed, quotes dropped)."""
    return [h.strip().strip('"') for h in line.split(sep)] == list(table.header or ())


def _plain_numeric(data: bytes, table: Table) -> pd.DataFrame | None:
    """An all-numeric file with a one-byte separator and a good header, read by
    ``kernels.cpu_csv`` when every line is the plain case; else None, and the general
    path reads the file (and names the line of any error)."""
    sep = table.sep
    if (_STR in table.kinds or len(sep) != 1 or not sep.isascii() or sep in '0123456789.-"\r\n'
            or data.startswith(b"\xef\xbb\xbf")
            or "0,-.9\n".encode(table.encoding, "replace") != b"0,-.9\n"):
        return None  # a BOM, or an encoding that does not spell ASCII as ASCII
    start = 0
    if table.header is not None:
        nl = data.find(b"\n")
        end = nl if nl >= 0 else len(data)
        try:
            line = data[:end].decode(table.encoding).rstrip("\r")
        except UnicodeDecodeError:
            return None
        if not _header_matches(line, sep, table):
            return None
        start = min(end + 1, len(data))
    from kernels.cpu_csv import parse_numeric

    is_float = np.array([k == _FLOAT for k in table.kinds])
    out = parse_numeric(data, start, ord(sep), is_float)
    if out is None:
        return None
    ints, floats = out
    it, ft = iter(ints), iter(floats)
    return pd.DataFrame({c: next(ft) if k == _FLOAT else next(it)
                         for c, k in zip(table.columns, table.kinds)}, copy=False)


def _read_csv(buf: io.BytesIO | io.StringIO, sep: str, table: Table, first_row: int,
              dtypes) -> pd.DataFrame:
    return pd.read_csv(
        buf,
        sep=sep,
        # the header line (checked by the caller: the first line, never blank) as the
        # parser's header row, replaced by ``names``: skiprows=1 costs a set lookup per line
        # (about 60% on top of the parse of ratings.csv)
        header=0 if first_row else None,
        names=list(table.columns),
        # never take a first column as the index when the first row has an extra field
        # (that would drop a column of every row without a word)
        index_col=False,
        dtype=dtypes,
        engine="c",
        quoting=0 if table.quoted else 3,  # QUOTE_MINIMAL / QUOTE_NONE
        keep_default_na=False,
        na_values={c: _NA_TOKENS if k == _FLOAT else [""]
                   for c, k in zip(table.columns, table.kinds) if k != _STR},
        skip_blank_lines=True,
    )


def line_number(row: int, first_row: int) -> int:
    """1-based line number of data row ``row`` of a file without blank lines (see
    :func:`row_lines` for any file)."""
    return row + first_row + 1


def row_lines(data: bytes | str, table: Table, rows: Sequence[int]) -> list[int]:
    """1-based physical line numbers of the data rows ``rows`` of ``data`` as
    :func:`read_table` returns them: blank lines are skipped by the parser but counted
    here. Reads the file only up to the last row asked for (an error path only)."""
    text = data.decode(table.encoding, "replace") if isinstance(data, bytes) else data
    first_row = 0 if table.header is None else 1
    want = sorted(set(int(r) for r in rows))
    found: dict[int, int] = {}
    row = -1
    for idx, (lineno, rec) in enumerate(_records(text, table.quoted)):
        if idx < first_row or _blank(rec, table.sep):
            continue
        row += 1
        if row == want[len(found)]:
            found[row] = lineno
            if len(found) == len(want):
                break
    # rows past the end (not expected) fall back to the blank-free count
    return [found.get(int(r), line_number(int(r), first_row)) for r in rows]


def row_line(data: bytes | str | None, table: Table, row: int) -> int:
    """:func:`row_lines` for one row; without ``data``, the blank-free count."""
    if data is None:
        return line_number(row, 0 if table.header is None else 1)
    return row_lines(data, table, [row])[0]


def _records(text: str, quoted: bool) -> Iterator[tuple[int, str]]:
    """``(line number, record)`` for every record the C parser sees, blank ones included.

    A record ends where the parser ends one (``\\n``, ``\\r\\n``, a lone ``\\r``); the line
    number counts ``\\n`` only, as editors do. In a quoted table a record goes on while a
    quote is open (a title with a line break)."""
    line, start, rec_line = 1, 0, 1
    for m in _BREAK.finditer(text):
        newline = "\n" in m.group()
        if quoted and text.count('"', start, m.start()) % 2:
            line += newline  # inside quotes: the break belongs to the field
            continue
        yield rec_line, text[start:m.start()]
        line += newline
        start, rec_line = m.end(), line
    yield rec_line, text[start:]


def _blank(record: str, sep: str) -> bool:
    """A line the C parser skips: only spaces and tabs (that are not the separator)."""
    return not record.strip("".join(c for c in " \t" if c != sep))


def _raise_at_row(text: str, row: int, first_row: int, where: str, why: str, table: Table):
    lineno = row_lines(text, table, [row])[0]
    line = text.split("\n", lineno)[lineno - 1].rstrip("\r") if lineno else ""
    raise MalformedInput(
        f"{where}, line {lineno}: {why} in {line.replace(chr(31), table.sep)!r}; "
        f"expected {table.expected}"
    )


def int_problem(val: str) -> str | None:
    """Why ``val`` is not an int64 as the C parser reads one (None when it is one)."""
    s = val.strip(" \t")
    if _INT_RE.fullmatch(s):
        v = int(s)
    elif _FLOAT_RE.fullmatch(s) and np.isfinite(f := float(s)) and f == int(f):
        v = int(f)  # the parser takes an integral float such as 5.0 or 1e3
    else:
        return "is not an integer"
    if not INT64_MIN <= v <= INT64_MAX:
        return f"is beyond the int64 range [{INT64_MIN}, {INT64_MAX}]"
    return None


def float_problem(val: str) -> str | None:
    """Why ``val`` is not a finite number (None when it is one)."""
    s = val.strip(" \t")
    if s and (s in _NA_TOKENS or s.lstrip("+-").lower() in ("inf", "infinity")):
        return "is not a finite number"
    if not _FLOAT_RE.fullmatch(s):
        return "is not a number"
    if not np.isfinite(float(s)):
        return "is not a finite number"
    return None


def _raise_first_bad_line(text, sep, table, where, first_row, cause) -> None:
    n = len(table.columns)
    for idx, (lineno, line) in enumerate(_records(text, table.quoted)):
        if idx < first_row or _blank(line, sep):
            continue
        fields = _split(line, sep, table.quoted)
        shown = line.replace("\x1f", table.sep)
        if len(fields) != n:
            raise MalformedInput(
                f"{where}, line {lineno}: {len(fields)} fields in {shown!r}; "
                f"expected {n} ({table.expected})"
            ) from None
        for (col, kind), val in zip(zip(table.columns, table.kinds), fields):
            if kind == _STR:
                continue
            # every float column is a rating, and a rating must be a finite number
            why = int_problem(val) if kind == _INT else float_problem(val)
            if why is not None:
                raise MalformedInput(
                    f"{where}, line {lineno}: {col} {val!r} {why} in {shown!r}; "
                    f"expected {table.expected}"
                ) from None
    raise MalformedInput(f"{where}: could not be parsed ({cause}); expected {table.expected}")


def _split(line: str, sep: str, quoted: bool) -> list[str]:
    if not quoted:
        return line.split(sep)
    import csv

    return next(csv.reader([line], delimiter=sep))
