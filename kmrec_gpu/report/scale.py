"""Scale series: fit time and peak memory against the number of ratings, per model and
backend library, with the least-squares slope of log(y) on log(x).

A slope near 1 means the cost grows linearly with the ratings; it is the figure that
carries over between machines, where absolute times do not.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kmrec_gpu.report import fmt
from kmrec_gpu.report.load import harness


@dataclass(frozen=True)
class Series:
    name: str
    x_name: str
    time: tuple[tuple[float, float], ...]  # (x, median fit seconds)
    memory: tuple[tuple[float, float], ...]  # (x, peak bytes); empty when not recorded
    rows: tuple[dict, ...]

    @property
    def time_slope(self) -> float | None:
        return loglog_slope(self.time)

    @property
    def memory_slope(self) -> float | None:
        return loglog_slope(self.memory)


MIN_DECADES = 1.0


def loglog_slope(points: Iterable[tuple[float, float]]) -> float | None:
    """Least-squares slope of log10(y) on log10(x); None below two distinct positive x or
    when the sizes span less than a decade (ml-100k and ml-latest-small differ by 1%: their
    timing noise would read as a slope in the hundreds)."""
    pts = [(math.log10(x), math.log10(y)) for x, y in points if x > 0 and y > 0]
    xs = {x for x, _ in pts}
    if len(xs) < 2 or max(xs) - min(xs) < MIN_DECADES:
        return None
    mx = statistics.fmean(x for x, _ in pts)
    my = statistics.fmean(y for _, y in pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx


def _per_x(pairs: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    # several seeds or repeats of one size: their median is the point
    by_x: dict[float, list[float]] = defaultdict(list)
    for x, y in pairs:
        by_x[x].append(y)
    return tuple((x, statistics.median(ys)) for x, ys in sorted(by_x.items()))


def _series(rows: list[dict], name_of: Callable[[dict], str], x_of, time_of, mem_of,
            x_name: Callable[[dict], str]) -> list[Series]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        if x_of(r) and time_of(r):
            groups[(name_of(r), x_name(r))].append(r)
    out = []
    for (name, xn), rs in sorted(groups.items()):
        time = _per_x([(float(x_of(r)), float(time_of(r))) for r in rs])
        mem = _per_x([(float(x_of(r)), float(m)) for r in rs if (m := mem_of(r)) is not None])
        out.append(Series(name, xn, time, mem, tuple(rs)))
    return out


def _median_s(r: dict) -> float | None:
    return (r.get("wall_time") or {}).get("median_s")


def _n_ratings(r: dict) -> int | None:
    return r["dataset"].get("n_ratings")


def harness_fit_rows(rows: Iterable[dict]) -> list[dict]:
    return [r for r in rows if harness(r) and r["phase"] == "fit" and r["status"] == "ok"]


def harness_series(rows: Iterable[dict]) -> tuple[list[Series], str]:
    """Harness fit rows of the 'scale' sweep when there are any, else every harness fit."""
    fits = harness_fit_rows(rows)
    sweep = [r for r in fits if harness(r).get("sweep") == "scale"]
    chosen, what = (sweep, "harness fit rows of sweep 'scale'") if sweep else (
        fits, "all harness fit rows (no 'scale' sweep stored)")

    def mem(r: dict) -> float | None:
        pm = r.get("peak_memory") or {}
        return pm.get("host_delta_bytes", pm.get("host_bytes"))

    series = _series(chosen, lambda r: f"{harness(r)['model_config']} {_where(r)}",
                     _n_ratings, _median_s, mem, lambda r: "ratings")
    return series, what


def factor_bench_series(rows: Iterable[dict]) -> list[Series]:
    """bench/factor.jsonl's scaling part: scalable solvers fitted on every rating."""
    def mem(r: dict) -> float | None:
        pm = r.get("peak_memory") or {}
        if pm.get("host_bytes") is None:
            return None
        base = pm.get("host_baseline_bytes")
        return pm["host_bytes"] - base if base is not None else pm["host_bytes"]

    scaling = [r for r in rows if (r.get("extra") or {}).get("part") == "scaling"
               and r["status"] == "ok"]
    return _series(scaling, lambda r: f"{r['model']['name']} {_where(r)}",
                   _n_ratings, _median_s, mem, lambda r: "ratings")


def _where(r: dict) -> str:
    """Library and device: a slope is fitted within one machine, never across two."""
    b = r["backend"]
    return f"[{b.get('library')}] on {b.get('device_name') or 'an unnamed device'}"


def kmeans_bench_series(records: Iterable[dict]) -> list[Series]:
    """bench/kmeans.jsonl's scaling part; its x is ratings or users, as each curve says."""
    scaling = [r for r in records if r.get("part") == "scaling" and "fit" in r and "x" in r]
    return _series(scaling, lambda r: f"K-means {r['curve']} (k={r.get('k')})",
                   lambda r: r["x"], lambda r: r["fit"].get("median_s"), lambda r: None,
                   lambda r: r.get("x_name", "x"))


def slope_rows(series: Iterable[Series], source: str) -> list[list[Any]]:
    out = []
    for s in series:
        xs = [x for x, _ in s.time]
        out.append([s.name, source, s.x_name, len(s.time),
                    f"{fmt.num(min(xs))} to {fmt.num(max(xs))}" if xs else fmt.MISSING,
                    fmt.slope(s.time_slope), fmt.slope(s.memory_slope)])
    return out
