"""Elbow curves (within-cluster sum of squares against k) kept in stored rows' ``extra``.

Runs store them under a few spellings; all are recognised so a curve is redrawn from
the numbers rather than copied as a picture:

- ``<prefix>_ks`` beside ``<prefix>_wcss`` / ``_inertia`` / ``_sse`` (lists of one length);
- ``wcss_k<lo>_<hi>`` (or inertia/sse): one value for each k from lo to hi;
- a list of objects each holding ``k`` and ``wcss`` / ``inertia`` / ``sse`` (a k scan).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

_MEASURES = ("wcss", "inertia", "sse")
_RANGE_KEY = re.compile(r"^(?P<m>wcss|inertia|sse)_k(?P<lo>\d+)_(?P<hi>\d+)$")


@dataclass(frozen=True)
class Curve:
    model: str
    dataset: str
    seed: int
    measure: str
    ks: tuple[float, ...]
    values: tuple[float, ...]
    chosen_k: int | None
    row: dict


def _numbers(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)


def _found(extra: dict[str, Any]) -> list[tuple[str, list, list]]:
    found = []
    for key, val in sorted(extra.items()):
        if key.endswith("_ks") and _numbers(val):
            prefix = key[: -len("_ks")]
            for m in _MEASURES:
                ys = extra.get(f"{prefix}_{m}")
                if _numbers(ys) and len(ys) == len(val):
                    found.append((m, val, ys))
        elif (rng := _RANGE_KEY.match(key)) and _numbers(val):
            ks = list(range(int(rng["lo"]), int(rng["hi"]) + 1))
            if len(ks) == len(val):
                found.append((rng["m"], ks, val))
        elif isinstance(val, list) and val and all(isinstance(x, dict) and "k" in x
                                                   for x in val):
            for m in _MEASURES:
                if all(isinstance(x.get(m), (int, float)) for x in val):
                    found.append((m, [x["k"] for x in val], [x[m] for x in val]))
                    break
    return found


def curves(rows: list[dict]) -> list[Curve]:
    out = []
    for r in rows:
        if r["status"] != "ok":
            continue
        extra = r.get("extra") or {}
        chosen = extra.get("elbow_k", r["model"].get("params", {}).get("n_clusters"))
        chosen = chosen if isinstance(chosen, int) and not isinstance(chosen, bool) else None
        for measure, ks, ys in _found(extra):
            out.append(Curve(r["model"]["name"], r["dataset"]["name"], r["seed"], measure,
                             tuple(float(k) for k in ks), tuple(float(y) for y in ys),
                             chosen, r))
    return sorted(out, key=lambda c: (c.model, c.dataset, c.seed, c.measure))


def family(model: str) -> str:
    """``002-liked-clusters[sklearn]`` and ``[kmrec]`` share one figure."""
    return model.split("[")[0]


def grouped(cs: list[Curve]) -> dict[tuple[str, str, str], list[Curve]]:
    groups: dict[tuple[str, str, str], list[Curve]] = defaultdict(list)
    for c in cs:
        groups[(family(c.model), c.dataset, c.measure)].append(c)
    return dict(sorted(groups.items()))
