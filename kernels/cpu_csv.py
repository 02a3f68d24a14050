"""A parser for the plain case of an all-numeric delimited file (numba, CPU).

MovieLens rating files are lines of integers and short decimals: ``1,31,2.5,1260759144``.
pandas' C parser spends as long on them as zlib spends inflating them, most of it on the
generality they do not use. :func:`parse_numeric` reads the plain case in one pass and
refuses everything else (a sign other than a leading ``-``, an exponent, a quote, a
space, a lone ``\\r``, an empty or over-long field, a wrong field count, a byte that is not
ASCII), returning -1 so that the caller's general parser reads the file and reports any
error with its line. What it accepts it reads to the bit as the C parser does: an integer
exactly; a decimal with at most 15 digits as ``digits / 10**fraction_digits``, a single
correctly rounded division of two exact doubles, which is the correctly rounded value
``strtod`` returns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MAX_INT_DIGITS = 18  # below 2**63: no overflow check needed
_MAX_FLOAT_DIGITS = 15  # exact in a double, so one division rounds correctly
_POW10 = np.array([10.0 ** k for k in range(_MAX_FLOAT_DIGITS + 1)])  # each exact


@njit(cache=True, nogil=True)
def _scan(buf, start, sep, is_float, slot, ints, floats, pow10):  # pragma: no cover - jit
    n = buf.size
    n_cols = is_float.size
    row = 0
    pos = start
    while pos < n:
        c = buf[pos]
        if c == 10:  # a blank line: the C parser skips it, and so do we
            pos += 1
            continue
        if c == 13:
            if pos + 1 < n and buf[pos + 1] == 10:
                pos += 2
                continue
            return -1
        if row >= ints.shape[1] or row >= floats.shape[1]:
            return -1
        for col in range(n_cols):
            neg = False
            if pos < n and buf[pos] == 45:  # '-'
                neg = True
                pos += 1
            mant = 0
            digits = 0
            frac = 0
            dot = False
            while pos < n:
                c = buf[pos]
                if 48 <= c <= 57:
                    mant = mant * 10 + (c - 48)
                    digits += 1
                    if dot:
                        frac += 1
                elif c == 46 and is_float[col] and not dot:
                    dot = True
                else:
                    break
                pos += 1
            if digits == 0 or (dot and frac == 0):
                return -1
            if is_float[col]:
                if digits > _MAX_FLOAT_DIGITS:
                    return -1
                v = mant / pow10[frac]
                floats[slot[col], row] = -v if neg else v
            else:
                if digits > _MAX_INT_DIGITS:
                    return -1
                ints[slot[col], row] = -mant if neg else mant
            if col < n_cols - 1:
                if pos >= n or buf[pos] != sep:
                    return -1
                pos += 1
            elif pos < n:
                if buf[pos] == 10:
                    pos += 1
                elif buf[pos] == 13 and pos + 1 < n and buf[pos + 1] == 10:
                    pos += 2
                else:
                    return -1
        row += 1
    return row


def parse_numeric(data: bytes, start: int, sep: int, is_float: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(ints, floats)`` of the lines of ``data`` from byte ``start``: the integer
    columns' values as an (integer columns, rows) int64 array, the others' as a (float
    columns, rows) float64 one, each in file order. None when the file is not the plain
    case (the caller's general parser then reads it)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    is_float = np.asarray(is_float, dtype=np.bool_)
    # every row ends at a newline but perhaps the last: an upper bound on the rows
    rows = int(np.count_nonzero(buf[start:] == 10)) + 1 if buf.size > start else 0
    slot = np.where(is_float, np.cumsum(is_float) - 1, np.cumsum(~is_float) - 1)
    ints = np.empty((int((~is_float).sum()), rows), dtype=np.int64)
    floats = np.empty((int(is_float.sum()), rows), dtype=np.float64)
    got = _scan(buf, start, np.uint8(sep), is_float, slot.astype(np.int64), ints, floats,
                _POW10)
    if got < 0:
        return None
    return ints[:, :got], floats[:, :got]


def warm() -> None:
    """Load the compiled scan (and numba's one-time set-up, ~0.3 s here, shared by every
    numba kernel of the process) outside a timed load."""
    parse_numeric(b"0,0.5\n", 0, ord(","), np.array([False, True]))
