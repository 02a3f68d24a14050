"""Markdown pieces and number formats shared by the report's sections.

Every format here is a pure function of its input, so the same rows always render to the
same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MISSING = "n/a"


def esc(value: Any) -> str:
    """A table cell: pipes escaped, newlines folded, so one value never breaks a row."""
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(esc(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def num(x: Any) -> str:
    """Metrics and claimed figures: whole numbers with separators, else 4 decimals at most."""
    if x is None:
        return MISSING
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if not isinstance(x, float) or not math.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 100:
        return f"{x:,.1f}"
    if abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.4f}".rstrip("0").rstrip(".")


def metric(x: Any) -> str:
    """Accuracy figures: always 4 decimals, so a column lines up and 0.9 reads as 0.9000."""
    if x is None:
        return MISSING
    if isinstance(x, int) and not isinstance(x, bool) or abs(x) >= 100:
        return num(x)
    return f"{x:.4f}"


def seconds(x: float | None) -> str:
    if x is None:
        return MISSING
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def bytes_(x: float | None) -> str:
    if x is None:
        return MISSING
    return f"{x / 2**30:.2f} GiB" if abs(x) >= 2**30 else f"{x / 2**20:.1f} MiB"


def slope(x: float | None) -> str:
    return MISSING if x is None else f"{x:.2f}"


def interval(value: float, lo: float, hi: float) -> str:
    return f"{metric(value)} [{metric(lo)}, {metric(hi)}]"


def code(s: str) -> str:
    return f"`{s}`"
