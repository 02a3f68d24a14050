"""``results/claims.json`` rebuilt from stored rows only, the way the report is built.

For each protocol: the cells it names are looked up by their harness key (so a row counts
only when its model, dataset, split, seed and settings are the protocol's, whatever
revision made it; the newest such row wins); each figure is pooled over its seeds with the
user bootstrap (:mod:`kmrec_gpu.metrics.users`), probe figures give the range of their
metric over seeds; the one rule (:mod:`kmrec_gpu.claims.verdict`) gives the verdict, and
paired user-bootstrap differences against the comparison models answer the conclusion.
The same rows give the same bytes.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmrec_gpu.claims.protocol import Cell, ConclusionTest, Entry, Protocol, load_protocols
from kmrec_gpu.claims.record import validate_claims, write_claims
from kmrec_gpu.claims.run import cell_keys
from kmrec_gpu.claims.verdict import conclusion_holds, difference_side, figure_verdict
from kmrec_gpu.errors import KmrecError
from kmrec_gpu.metrics import users as user_stats
from kmrec_gpu.results import read_rows, rows_files

N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # stored with every claim; one seed for every resampling stream
DIGITS = 6


class MissingRows(KmrecError):
    """A protocol names cells that have no stored ok row."""


@dataclass(frozen=True)
class Stored:
    row: dict
    file: str  # relative to the results folder


def stored_rows(results_dir: str | Path) -> dict[str, Stored]:
    """The newest ok ``evaluate`` row of each harness cell key under ``<results>/runs``."""
    root = Path(results_dir)
    out: dict[str, Stored] = {}
    runs = root / "runs"
    for f in rows_files(runs) if runs.is_dir() else []:
        # a bad line is reported (file and line) and skipped: it is no cell's result
        for row in read_rows(f, on_error="warn"):
            h = (row.get("extra") or {}).get("harness")
            if (not isinstance(h, dict) or not isinstance(h.get("cell_key"), str)
                    or row["phase"] != "evaluate" or row["status"] != "ok"):
                continue
            old = out.get(h["cell_key"])
            if old is None or row["created_utc"] >= old.row["created_utc"]:
                out[h["cell_key"]] = Stored(row, f.relative_to(root).as_posix())
    return out


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), DIGITS)


class _Rows:
    def __init__(self, p: Protocol, stored: dict[str, Stored]) -> None:
        self.keys = cell_keys(p.cells())
        self.stored = stored
        missing = [c for c in p.cells() if self.keys[c] not in stored]
        if missing:
            shown = ", ".join(f"{c.model}@{c.dataset}/{c.split}/seed{c.seed}" for c in missing[:6])
            more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
            raise MissingRows(f"claim {p.id}: {len(missing)} cells have no stored row "
                              f"({shown}{more}); run `kmrec claims run --only {p.id}`")
        self.used: set[str] = set()

    def get(self, cell: Cell) -> Stored:
        s = self.stored[self.keys[cell]]
        self.used.add(s.file)
        return s

    def per_user(self, e: Entry) -> list[dict]:
        parts = []
        for c in e.cells():
            pu = self.get(c).row.get("extra", {}).get("per_user")
            if not pu:
                raise MissingRows(f"{c.model}@{c.dataset}/seed{c.seed}: its row keeps no "
                                  "per-user statistics (run it again with this version)")
            parts.append(pu)
        return parts


def _figure(e: Entry, rows: _Rows, p: Protocol, judge: bool = False) -> dict[str, Any]:
    """One entry's pooled figure; ``judge``: a figure of the claim (not a comparison or
    context), held out or a probe, gets its own verdict by the rule."""
    out: dict[str, Any] = {**e.as_dict(), "cell_keys": [rows.keys[c] for c in e.cells()]}
    if e.kind == "probe":
        ms = [rows.get(c).row["metrics"] for c in e.cells()]
        for m in ms:
            for k in filter(None, (e.metric, e.low, e.high)):
                if k not in m:
                    raise KmrecError(f"claim {p.id}: probe {e.model} row has no metric {k!r}")
        vals = [m[e.metric] for m in ms]
        lo = min(m[e.low or e.metric] for m in ms)
        hi = max(m[e.high or e.metric] for m in ms)
        out.update(value=_r(statistics.median(vals)), ci_low=_r(lo), ci_high=_r(hi),
                   per_seed=[_r(v) for v in vals],
                   interval="range over " + ("the row's releases" if e.low else "seeds"))
        details = [rows.get(c).row.get("extra", {}).get("details") for c in e.cells()]
        if any(details):
            out["details"] = details if len(details) > 1 else details[0]
    else:
        ci = user_stats.user_bootstrap(rows.per_user(e), e.metric, n_resamples=N_RESAMPLES,
                                       seed=BOOTSTRAP_SEED)
        d = ci.as_dict()
        out.update(value=_r(d["value"]), ci_low=_r(d["ci_low"]), ci_high=_r(d["ci_high"]),
                   per_seed=[_r(v) for v in d["per_seed"]], per_seed_sd=_r(d["per_seed_sd"]),
                   n_users=d["n_users"], interval="95% user bootstrap, seeds pooled")
    out["note"] = e.note
    if judge and p.declared is None and e.kind in ("held-out", "probe"):
        out["verdict"] = figure_verdict(out["ci_low"], out["ci_high"], p.claimed, p.margin)
    return out


def _conclusion(p: Protocol, rows: _Rows, t: ConclusionTest | None
                ) -> tuple[bool | None, list[dict]]:
    if t is None:
        return None, []
    evidence, sides = [], []
    for m in t.models:
        for v in t.versus:
            d = user_stats.paired_difference(
                rows.per_user(p.entry(m, t.dataset, t.split)),
                rows.per_user(p.entry(v, t.dataset, t.split)), t.metric,
                n_resamples=N_RESAMPLES, seed=BOOTSTRAP_SEED)
            side = difference_side(d.ci_low, d.ci_high, t.better)
            sides.append(side)
            evidence.append({"model": m, "versus": v, "metric": t.metric,
                             "dataset": t.dataset, "split": t.split,
                             "difference": _r(d.value), "ci_low": _r(d.ci_low),
                             "ci_high": _r(d.ci_high),
                             "per_seed": [_r(x) for x in d.per_seed], "better": t.better,
                             "side": side})
    return conclusion_holds(sides), evidence


def _show(x: float) -> str:
    """Counts as counts, figures to 4 decimals."""
    return f"{x:,.0f}" if float(x).is_integer() or abs(x) >= 100 else f"{x:.4f}"


def _verdict_note(p: Protocol, figures: list[dict]) -> str:
    if p.declared:
        return p.declared[1].strip()
    parts = []
    for f in figures:
        if "verdict" in f:
            parts.append(f"{f['model']} ({f['kind']}, {f['metric']}, {f['dataset']}): "
                         f"{_show(f['value'])} [{_show(f['ci_low'])}, {_show(f['ci_high'])}] "
                         f"against {_show(p.claimed)} ± {_show(p.margin)}: {f['verdict']}")
    return "; ".join(parts) + "."


def build_claim(p: Protocol, stored: dict[str, Stored]) -> dict[str, Any]:
    rows = _Rows(p, stored)
    figures = [_figure(e, rows, p, judge=True) for e in p.figures]
    judged = [f for f in figures if "verdict" in f]
    verdict = p.declared[0] if p.declared else judged[0]["verdict"]
    held = next((f for f in figures if f["kind"] == "held-out" and f["metric"] == p.metric),
                None)
    published = next((f for f in figures if f["kind"] == "as-published"), None)
    holds, evidence = _conclusion(p, rows, p.conclusion_test)
    tuned_holds, tuned_evidence = _conclusion(p, rows, p.tuned_test)
    comparison = [_figure(e, rows, p) for e in p.comparison]
    context = [_figure(e, rows, p) for e in p.context]
    return {
        "id": p.id, "source": p.document, "statement": p.statement, "metric": p.metric,
        "unit": p.unit, "claimed": p.claimed, "claimed_all": p.claimed_all,
        "margin": p.margin, "margin_reason": p.margin_reason,
        "held_out": held, "as_published": published, "figures": figures,
        "comparison": comparison, "verdict": verdict, "verdict_note": _verdict_note(p, figures),
        "conclusion": p.conclusion, "conclusion_holds": holds,
        "conclusion_evidence": evidence, "tuned_holds": tuned_holds,
        "tuned_evidence": tuned_evidence, "context": context, "protocol": p.protocol,
        "bootstrap": {"unit": "user", "n_resamples": N_RESAMPLES, "seed": BOOTSTRAP_SEED,
                      "confidence": 0.95},
        "evidence": sorted(rows.used) + [f"kmrec claims run --only {p.id}",
                                         f"kmrec claims --only {p.id}"],
    }


def build_claims(results_dir: str | Path = "results", out: str | Path | None = None, *,
                 only: str | None = None, protocols: Sequence[Protocol] | None = None
                 ) -> tuple[Path, list[dict]]:
    """Rebuild ``claims.json`` from the rows under ``results_dir``. With ``only``, the
    other claims already in the file are kept as they are."""
    from kmrec_gpu.claims.record import load_claims

    root = Path(results_dir)
    path = Path(out) if out is not None else root / "claims.json"
    ps = list(protocols) if protocols is not None else load_protocols(only)
    stored = stored_rows(root)
    new = {c["id"]: c for c in (build_claim(p, stored) for p in ps)}
    if only:
        kept = {c["id"]: c for c in load_claims(path) if c["id"] not in new}
        new = {**kept, **new}
    claims = validate_claims([new[k] for k in sorted(new)])
    write_claims(path, claims)
    return path, claims
