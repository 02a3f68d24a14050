"""The composed ``kmrec-bench`` configuration checked once, before any cell runs.

An override with a bad value (``seed=abc``, ``threads=0``, ``split.params.test_fraction=1.5``)
would otherwise surface as a failed cell row, or a traceback, in the middle of a grid.
:func:`problems` lists every bad value, one line each, naming the key, the value and what
was expected; ``kmrec-bench`` prints them and exits 2.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

_FRACTIONS = ("test_fraction", "fraction", "test_size")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _get(c: dict, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(c, dict) or part not in c:
            return _MISSING
        c = c[part]
    return c


_MISSING = object()

# key -> (test, what is expected); a missing key is left to the config schema
_RULES: dict[str, tuple[Any, str]] = {
    "seed": (lambda v: _int(v) and v >= 0, "a non-negative integer (0 is a seed)"),
    "threads": (lambda v: v is None or (_int(v) and v >= 1), "null or an integer >= 1"),
    "force": (lambda v: isinstance(v, bool), "true or false"),
    "with_peers": (lambda v: isinstance(v, bool), "true or false"),
    "progress": (lambda v: isinstance(v, bool), "true or false"),
    "timing.warmup": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "timing.repeats": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "timing.budget_s": (lambda v: v is None or (_num(v) and v > 0), "null or a number > 0"),
    "eval.n_boot": (lambda v: _int(v) and v >= 0, "an integer >= 0"),
    "eval.k": (lambda v: _int(v) and v >= 1, "an integer >= 1"),
    "eval.threshold": (_num, "a number (ratings at or above it are relevant)"),
}


def problems(cfg: Any) -> list[str]:
    """Every bad value of the composed configuration, as ``key=value: expected ...``."""
    from omegaconf import OmegaConf

    try:
        c = OmegaConf.to_container(cfg, resolve=True)
    except Exception as e:  # an interpolation that cannot resolve
        return [f"the configuration does not resolve: {e}"]
    out = []
    for key, (ok, expected) in _RULES.items():
        v = _get(c, key)
        if v is not _MISSING and not ok(v):
            out.append(f"{key}={v!r}: expected {expected}")
    params = _get(c, "split.params")
    if isinstance(params, dict):
        for k, v in params.items():
            if k in _FRACTIONS and v is not None and not (_num(v) and 0 < v < 1):
                out.append(f"split.params.{k}={v!r}: expected a number in (0, 1)")
            least = 2 if k == "n_folds" else 1
            if k in ("k", "n_folds", "min_train") and not (_int(v) and v >= least):
                out.append(f"split.params.{k}={v!r}: expected an integer >= "
                           f"{2 if k == 'n_folds' else 1}")
        n, f = params.get("n_folds"), params.get("fold")
        if _get(c, "split.method") == "ml100k_fold":
            if not (_int(f) and 1 <= f <= 5):
                out.append(f"split.params.fold={f!r}: expected one of ml-100k's folds 1-5")
        elif f is not None and not (_int(f) and _int(n) and 0 <= f < n):
            out.append(f"split.params.fold={f!r}: expected an integer in [0, n_folds)")
    out += _results_problems(c.get("results"))
    out += _dataset_problems(c.get("dataset") or {})
    return out


def _dataset_problems(d: dict) -> list[str]:
    """A user's own ratings file (``dataset=csv``): its options, and that the file exists."""
    if d.get("kind") != "csv":
        return []
    from kmrec_gpu.data.user_file import options
    from kmrec_gpu.errors import InvalidArgument

    try:
        path = options(d)["path"]
    except InvalidArgument as e:
        return [str(e)]
    if not Path(path).is_file():
        return [f"dataset.path={path}: no such file; expected the ratings file"]
    return []


def _results_problems(results: Any) -> list[str]:
    if not isinstance(results, str) or not results.strip():
        return [f"results={results!r}: expected a folder path"]
    p = Path(results)
    # the nearest existing ancestor decides whether the folder can be made and written
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return [f"results={results}: {probe} is a file, not a folder"]
    runs = p / "runs"
    if runs.exists() and not runs.is_dir():
        return [f"results={results}: {runs} is a file, not a folder"]
    target = runs if runs.is_dir() else probe
    if not os.access(target, os.W_OK | os.X_OK):
        return [f"results={results}: {target} is not writable"]
    return []
