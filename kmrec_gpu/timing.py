"""Timing with warm-up and repeats; the device is synchronised before every clock read."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    times_s: tuple[float, ...]
    warmup: int
    warmup_s: float = 0.0  # the warm-up runs' own seconds (first-call imports and JIT included)

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def min_s(self) -> float:
        return min(self.times_s)

    @property
    def max_s(self) -> float:
        return max(self.times_s)

    def as_dict(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "min_s": self.min_s, "max_s": self.max_s,
                "repeats": len(self.times_s), "warmup": self.warmup,
                "warmup_s": self.warmup_s, "times_s": list(self.times_s)}


def timed(fn: Callable[[], Any], *, repeats: int = 3, warmup: int = 1,
          sync: Callable[[], None] = lambda: None) -> tuple[Any, Timing]:
    """Run ``fn`` ``warmup`` + ``repeats`` times; return the last result and the timings."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    out = None
    t_warm = time.perf_counter()
    for _ in range(warmup):
        out = fn()
    sync()
    warmup_s = time.perf_counter() - t_warm
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return out, Timing(tuple(times), warmup, warmup_s)


def timed_budget(fn: Callable[[], Any], *, warmup: int, repeats: int, budget_s: float | None,
                 sync: Callable[[], None]) -> tuple[Any, Timing]:
    """Warm-up and repeats, device synchronised around every clock read; a first run
    longer than ``budget_s`` becomes the only, timed, run (large cells run once)."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")

    def one() -> tuple[Any, float]:
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        return out, time.perf_counter() - t0

    out, first = one()
    if budget_s is not None and first > budget_s:
        return out, Timing((first,), 0)
    times = [] if warmup else [first]
    warmup_s = first if warmup else 0.0
    for _ in range(max(warmup - 1, 0)):
        out = None  # drop the previous result: the peak is one fit's, not two
        out, t = one()
        warmup_s += t
    while len(times) < repeats:
        out = None
        out, t = one()
        times.append(t)
    return out, Timing(tuple(times), warmup, warmup_s)
