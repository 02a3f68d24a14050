"""The one verdict rule, declared before any run and used by every claim.

The figure: with the measured interval ``[lo, hi]`` and the claim's margin ``m`` around
the claimed value ``c``, *reproduced* if ``[lo, hi]`` lies inside ``[c - m, c + m]``, *not
reproduced* if the two do not meet, *inconclusive* otherwise. *Unsupported* where no code
or definition can produce the figure, *no claim* where the document states none (both
declared in the claim's protocol with the reason).

The conclusion: the document's model against each comparison model on the same splits,
as a paired difference with an interval: it *holds* when every difference lies wholly on
the better side of zero, it *fails* when any lies wholly on the worse side, and it is
undecided (null) otherwise.
"""

from __future__ import annotations

import math

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "unsupported", "no claim")


def figure_verdict(lo: float, hi: float, claimed: float, margin: float) -> str:
    """The verdict of one measured interval against the claimed value and its margin."""
    for name, v in (("lo", lo), ("hi", hi), ("claimed", claimed), ("margin", margin)):
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if lo > hi:
        raise ValueError(f"the interval [{lo}, {hi}] is empty (lo > hi)")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    a, b = claimed - margin, claimed + margin
    if a <= lo and hi <= b:
        return "reproduced"
    if hi < a or lo > b:
        return "not reproduced"
    return "inconclusive"


def difference_side(lo: float, hi: float, better: str) -> str:
    """Where a difference ``model - comparison`` lies: ``better``, ``worse`` or ``either``
    (its interval holds 0). ``better`` is ``lower`` (RMSE) or ``higher`` (nDCG)."""
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    if lo > hi:
        raise ValueError(f"the interval [{lo}, {hi}] is empty (lo > hi)")
    if better == "lower":
        return "better" if hi < 0 else "worse" if lo > 0 else "either"
    return "better" if lo > 0 else "worse" if hi < 0 else "either"


def conclusion_holds(sides: list[str]) -> bool | None:
    """True when every comparison is ``better``, False when any is ``worse``, else None."""
    if not sides:
        return None
    if any(s == "worse" for s in sides):
        return False
    return True if all(s == "better" for s in sides) else None
