"""The claims record, ``results/claims.json``: one object per published claim, built from
stored rows by :mod:`kmrec_gpu.claims.build` and checked here (the schema)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from kmrec_gpu.claims.verdict import VERDICTS
from kmrec_gpu.errors import SchemaError
from kmrec_gpu.results import write_atomic

KEYS = ("id", "source", "statement", "metric", "unit", "claimed", "claimed_all", "margin",
        "margin_reason", "held_out", "as_published", "figures", "comparison", "verdict",
        "verdict_note", "conclusion", "conclusion_holds", "conclusion_evidence", "tuned_holds",
        "tuned_evidence", "context",
        "protocol", "bootstrap", "evidence")
FIGURE_KEYS = ("metric", "value", "ci_low", "ci_high", "model", "dataset", "note")

# relative to where the command runs, as every results folder is: an installed package
# never writes beside its own files
DEFAULT_PATH = Path("results") / "claims.json"


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _figure(f: Any, where: str) -> None:
    if not isinstance(f, dict):
        raise SchemaError(f"{where}: expected an object")
    missing = set(FIGURE_KEYS) - set(f)
    if missing:
        raise SchemaError(f"{where}: missing keys {sorted(missing)}")
    for k in ("value", "ci_low", "ci_high"):
        if not _is_num(f[k]):
            raise SchemaError(f"{where}: {k} must be a finite number, got {f[k]!r}")
    if not f["ci_low"] <= f["value"] <= f["ci_high"]:
        raise SchemaError(f"{where}: needs ci_low <= value <= ci_high")
    if "verdict" in f and f["verdict"] not in VERDICTS:
        raise SchemaError(f"{where}: verdict {f['verdict']!r}")


def validate_claim(c: Any, where: str = "claim") -> dict:
    if not isinstance(c, dict):
        raise SchemaError(f"{where}: expected an object, got {type(c).__name__}")
    missing, extra = set(KEYS) - set(c), set(c) - set(KEYS)
    if missing or extra:
        raise SchemaError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(extra)}")
    where = f"{where} {c['id']!r}"
    for k in ("id", "source", "statement", "metric", "unit", "protocol", "verdict_note"):
        if not isinstance(c[k], str) or not c[k].strip():
            raise SchemaError(f"{where}: {k!r} must be a non-empty string")
    for k in ("claimed", "margin"):
        if c[k] is not None and not _is_num(c[k]):
            raise SchemaError(f"{where}: {k!r} must be a number or null, got {c[k]!r}")
    if c["verdict"] not in VERDICTS:
        raise SchemaError(f"{where}: verdict {c['verdict']!r}; expected one of {VERDICTS}")
    if c["verdict"] in ("reproduced", "not reproduced", "inconclusive"):
        if c["claimed"] is None or c["margin"] is None:
            raise SchemaError(f"{where}: a {c['verdict']!r} verdict needs claimed and margin")
    for k in ("held_out", "as_published"):
        if c[k] is not None:
            _figure(c[k], f"{where} {k}")
    if c["held_out"] is not None and c["held_out"]["metric"] != c["metric"]:
        raise SchemaError(f"{where}: held_out measures {c['held_out']['metric']!r}, not the "
                          f"claim's metric {c['metric']!r}: such a figure belongs in context")
    for k in ("figures", "comparison", "context"):
        if not isinstance(c[k], list):
            raise SchemaError(f"{where}: {k} must be a list")
        for i, f in enumerate(c[k]):
            _figure(f, f"{where} {k}[{i}]")
    for holds, evidence in (("conclusion_holds", "conclusion_evidence"),
                            ("tuned_holds", "tuned_evidence")):
        if c[holds] not in (True, False, None):
            raise SchemaError(f"{where}: {holds} must be true, false or null")
        if not isinstance(c[evidence], list):
            raise SchemaError(f"{where}: {evidence} must be a list")
        if c[holds] is not None and not c[evidence]:
            raise SchemaError(f"{where}: {holds} needs {evidence}")
    ev = c["evidence"]
    if not isinstance(ev, list) or not all(isinstance(e, str) for e in ev):
        raise SchemaError(f"{where}: evidence must be a list of strings (files, commands)")
    if c["verdict"] != "no claim" and not ev:
        raise SchemaError(f"{where}: a {c['verdict']!r} verdict needs evidence")
    return c


def validate_claims(claims: Any) -> list[dict]:
    if not isinstance(claims, list):
        raise SchemaError("claims.json must hold a JSON list")
    seen: set[str] = set()
    for n, c in enumerate(claims):
        validate_claim(c, f"claims[{n}]")
        if c["id"] in seen:
            raise SchemaError(f"claims[{n}]: duplicate id {c['id']!r}")
        seen.add(c["id"])
    return claims


def load_claims(path: str | Path = DEFAULT_PATH) -> list[dict]:
    p = Path(path)
    if not p.exists():
        return []
    if not p.is_file():
        raise SchemaError(f"{p}: expected a claims file, found a directory or special file")
    try:
        return validate_claims(json.loads(p.read_text(encoding="utf-8")))
    except json.JSONDecodeError as e:
        raise SchemaError(f"{p}: not valid JSON ({e})") from None
    except UnicodeDecodeError as e:
        raise SchemaError(f"{p}: not UTF-8 text ({e})") from None


def write_claims(path: str | Path, claims: list[dict]) -> Path:
    validate_claims(claims)
    p = Path(path)
    write_atomic(p, json.dumps(claims, indent=2, ensure_ascii=False, sort_keys=False) + "\n")
    return p
