"""The claims record, ``results/claims.json``: one object per published claim.

Later issues fill it; the report renders it. :func:`update_claim` changes one entry and
leaves every other byte of the others alone; :func:`validate_claims` is the schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kmrec_gpu.errors import SchemaError
from kmrec_gpu.results import write_atomic

VERDICTS = ("reproduced", "not reproduced", "unsupported", "no claim")
KEYS = ("id", "source", "statement", "metric", "claimed", "as_published", "held_out",
        "protocol", "verdict", "evidence")
HELD_OUT_KEYS = ("value", "ci_low", "ci_high", "n_seeds", "dataset", "split")

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "results" / "claims.json"


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def validate_claim(c: Any, where: str = "claim") -> dict:
    if not isinstance(c, dict):
        raise SchemaError(f"{where}: expected an object, got {type(c).__name__}")
    missing, extra = set(KEYS) - set(c), set(c) - set(KEYS)
    if missing or extra:
        raise SchemaError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(extra)}")
    where = f"{where} {c['id']!r}"
    for k in ("id", "source", "statement", "metric", "protocol"):
        if not isinstance(c[k], str) or not c[k].strip():
            raise SchemaError(f"{where}: {k!r} must be a non-empty string")
    for k in ("claimed", "as_published"):
        if c[k] is not None and not _is_num(c[k]):
            raise SchemaError(f"{where}: {k!r} must be a number or null, got {c[k]!r}")
    h = c["held_out"]
    if h is not None:
        if not isinstance(h, dict) or set(h) != set(HELD_OUT_KEYS):
            raise SchemaError(f"{where}: held_out must have exactly the keys {HELD_OUT_KEYS}")
        for k in ("value", "ci_low", "ci_high"):
            if not _is_num(h[k]):
                raise SchemaError(f"{where}: held_out.{k} must be a number")
        if not h["ci_low"] <= h["value"] <= h["ci_high"]:
            raise SchemaError(f"{where}: held_out needs ci_low <= value <= ci_high")
        if not isinstance(h["n_seeds"], int) or h["n_seeds"] < 1:
            raise SchemaError(f"{where}: held_out.n_seeds must be a positive int")
        for k in ("dataset", "split"):
            if not isinstance(h[k], str):
                raise SchemaError(f"{where}: held_out.{k} must be a string")
    if c["verdict"] not in VERDICTS:
        raise SchemaError(f"{where}: verdict {c['verdict']!r}; expected one of {VERDICTS}")
    ev = c["evidence"]
    if not isinstance(ev, list) or not all(isinstance(e, str) for e in ev):
        raise SchemaError(f"{where}: evidence must be a list of strings (files, commands)")
    if c["verdict"] in ("reproduced", "not reproduced") and not ev:
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
    try:
        return validate_claims(json.loads(p.read_text(encoding="utf-8")))
    except json.JSONDecodeError as e:
        raise SchemaError(f"{p}: not valid JSON ({e})") from None


def update_claim(claim_id: str, path: str | Path = DEFAULT_PATH, **fields: Any) -> dict:
    """Create or update the entry ``claim_id``; other entries are left as they are."""
    claims = load_claims(path)
    idx = next((i for i, c in enumerate(claims) if c["id"] == claim_id), None)
    entry = dict(claims[idx]) if idx is not None else {k: None for k in KEYS}
    if idx is None:
        entry["evidence"] = []
    entry.update(fields, id=claim_id)
    validate_claim(entry)
    if idx is None:
        claims.append(entry)
    else:
        claims[idx] = entry
    write_atomic(Path(path), json.dumps(claims, indent=2, ensure_ascii=False) + "\n")
    return entry
