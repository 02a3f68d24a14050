"""Delimited-text parsing with errors that point at the offending line.

The fast path is pandas' C parser. When it fails, or when a parsed value is invalid,
the file is scanned again line by line (only then, so good files pay nothing) to name
the first bad line and say what was expected there.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from kmrec_gpu.errors import MalformedInput

_INT, _FLOAT, _STR = "int", "float", "str"
# Spellings of "missing" that must become NaN in numeric columns (so they are reported as
# bad values with their line), while titles and tags keep them as text.
_NA_TOKENS = ["", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL", "None"]


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


def read_table(data: bytes, table: Table, where: str) -> pd.DataFrame:
    """Parse ``data`` (the bytes of file ``where``) into a DataFrame of ``table.columns``."""
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
        got = [h.strip().strip('"') for h in first_line.split(sep)]
        if got != list(table.header):
            raise MalformedInput(
                f"{where}, line 1: header {first_line!r}; expected "
                f"{table.sep.join(table.header)!r}"
            )
        first_row = 1
    dtypes = {c: ("float64" if k == _FLOAT else "str" if k == _STR else "int64")
              for c, k in zip(table.columns, table.kinds)}
    try:
        df = pd.read_csv(
            io.StringIO(text_data),
            sep=sep,
            header=None,
            skiprows=first_row,
            names=list(table.columns),
            dtype=dtypes,
            engine="c",
            quoting=0 if table.quoted else 3,  # QUOTE_MINIMAL / QUOTE_NONE
            keep_default_na=False,
            na_values={c: _NA_TOKENS if k == _FLOAT else [""]
                       for c, k in zip(table.columns, table.kinds) if k != _STR},
            skip_blank_lines=True,
        )
    except (ValueError, pd.errors.ParserError) as e:
        _raise_first_bad_line(text_data, sep, table, where, first_row, e)
        raise  # unreachable: the scan always finds the line pandas choked on
    for c, k in zip(table.columns, table.kinds):
        if k == _INT and df[c].isna().any():
            bad_row = int(np.flatnonzero(df[c].isna().to_numpy())[0])
            _raise_at_row(text_data, bad_row, first_row, where, f"empty {c}", table)
    return df


def line_number(row: int, first_row: int) -> int:
    """1-based line number of data row ``row`` (blank lines are not expected)."""
    return row + first_row + 1


def _raise_at_row(text: str, row: int, first_row: int, where: str, why: str, table: Table):
    lineno = line_number(row, first_row)
    line = text.split("\n", lineno)[lineno - 1] if lineno else ""
    raise MalformedInput(
        f"{where}, line {lineno}: {why} in {line!r}; expected {table.expected}"
    )


def _raise_first_bad_line(text, sep, table, where, first_row, cause) -> None:
    n = len(table.columns)
    for lineno, line in enumerate(text.split("\n"), start=1):
        if lineno <= first_row or not line.strip():
            continue
        line = line.rstrip("\r")
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
            try:
                int(val) if kind == _INT else float(val)
            except ValueError:
                raise MalformedInput(
                    f"{where}, line {lineno}: {col} {val!r} is not "
                    f"{'an integer' if kind == _INT else 'a number'} in {shown!r}; "
                    f"expected {table.expected}"
                ) from None
    raise MalformedInput(f"{where}: could not be parsed ({cause}); expected {table.expected}")


def _split(line: str, sep: str, quoted: bool) -> list[str]:
    if not quoted:
        return line.split(sep)
    import csv

    return next(csv.reader([line], delimiter=sep))
