"""The claims as Markdown: one summary table (the README and the report show the same
bytes) and the details of each claim. Everything comes from ``claims.json``."""

from __future__ import annotations

import re
from pathlib import Path

from kmrec_gpu.report import fmt

BEGIN, END = "<!-- claims:begin (kmrec claims --readme) -->", "<!-- claims:end -->"


def figure(f: dict | None) -> str:
    if f is None:
        return fmt.MISSING
    seeds = f.get("seeds") or []
    where = f"{f['model']}, {f['dataset']}/{f['split']}, seed{'s' if len(seeds) > 1 else ''} " \
            f"{','.join(map(str, seeds))}"
    return f"{_interval(f)} ({where})"


def _n(x: float) -> str:
    """Counts as counts, figures to 4 decimals (as the report's accuracy tables)."""
    return fmt.num(x) if float(x).is_integer() or abs(x) >= 100 else f"{x:.4f}"


def _interval(f: dict) -> str:
    v, lo, hi = f["value"], f["ci_low"], f["ci_high"]
    if lo == hi == v:
        return _n(v)
    return f"{_n(v)} [{_n(lo)}, {_n(hi)}]"


def _claimed(c: dict) -> str:
    if c["claimed"] is None:
        return fmt.MISSING
    text = _n(c["claimed"])
    if c["margin"] is not None:
        text += f" ± {_n(c['margin'])}"
    if c["claimed_all"]:
        text += " (" + ", ".join(f"{k} {_n(v)}" for k, v in c["claimed_all"].items()) + ")"
    return text


def _holds(c: dict, key: str = "conclusion") -> str:
    holds, evidence = (("conclusion_holds", "conclusion_evidence") if key == "conclusion"
                       else ("tuned_holds", "tuned_evidence"))
    return {True: "holds", False: "fails", None: fmt.MISSING if not c[evidence]
            else "undecided"}[c[holds]]


def _evidence_table(evidence: list[dict]) -> str:
    return fmt.table(
        ["model", "versus", "metric", "dataset/split", "difference [paired interval]",
         "per seed", "side"],
        [[e["model"], e["versus"], e["metric"], f"{e['dataset']}/{e['split']}",
          f"{e['difference']:+.4f} [{e['ci_low']:+.4f}, {e['ci_high']:+.4f}]",
          ", ".join(f"{v:+.4f}" for v in e["per_seed"]), e["side"]] for e in evidence])


def summary_table(claims: list[dict]) -> str:
    rows = []
    for c in sorted(claims, key=lambda c: c["id"]):
        probe = next((f for f in c["figures"] if f["kind"] == "probe"), None)
        rows.append([c["id"], f"{c['metric']} ({c['unit']})", _claimed(c),
                     figure(c["as_published"]), figure(c["held_out"]), figure(probe),
                     f"**{c['verdict']}**", _holds(c), _holds(c, "tuned")])
    return fmt.table(["claim", "metric (unit)", "claimed ± margin", "as published",
                      "held out [95% user-bootstrap interval]",
                      "probe [range over seeds or releases]", "verdict", "conclusion",
                      "conclusion against tuned baselines"], rows)


def _figures_table(figs: list[dict]) -> str:
    return fmt.table(
        ["model", "kind", "metric", "dataset/split", "value [interval]", "per seed", "verdict",
         "note"],
        [[f["model"], f["kind"], f["metric"], f"{f['dataset']}/{f['split']}", _interval(f),
          ", ".join(_n(v) for v in f.get("per_seed") or []), f.get("verdict", ""),
          f.get("note") or ""] for f in figs])


def details(c: dict) -> str:
    parts = [f"**{c['id']}** — {c['verdict']}. {c['statement']}",
             f"Source: `{c['source']}`. Claimed: {_claimed(c)} ({c['unit']}).",
             f"Verdict: {c['verdict_note']}"]
    if c["margin_reason"]:
        parts.append(f"Margin: {c['margin_reason']}")
    parts.append(_figures_table(c["figures"]))
    if c["conclusion"]:
        parts.append(f"Conclusion: {c['conclusion']} — **{_holds(c)}**.")
    if c["conclusion_evidence"]:
        parts.append(_evidence_table(c["conclusion_evidence"]))
    if c["tuned_evidence"]:
        parts.append("Against tuned baselines (each searched on a validation split of train "
                     f"under its declared budget) — **{_holds(c, 'tuned')}**:\n\n"
                     + _evidence_table(c["tuned_evidence"]))
    if c["comparison"]:
        parts.append("Comparison models on the same splits:\n\n"
                     + _figures_table(c["comparison"]))
    if c["context"]:
        parts.append("Context (not the claim's figure):\n\n" + _figures_table(c["context"]))
    b = c["bootstrap"]
    parts.append(f"Protocol: {c['protocol']} Intervals: {b.get('n_resamples')} resamples of "
                 f"{b.get('unit')}s (seed {b.get('seed')}), every seed's test rows pooled.")
    parts.append("Evidence: " + ", ".join(fmt.code(e) for e in c["evidence"]))
    return "\n\n".join(parts)


def update_readme(path: str | Path, claims: list[dict]) -> bool:
    """Replace the README's claims block with the summary table; True when it changed.
    The block must exist (its markers), so the command never writes elsewhere."""
    from kmrec_gpu.errors import KmrecError
    from kmrec_gpu.results import write_atomic

    p = Path(path)
    text = p.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if len(pattern.findall(text)) != 1:
        raise KmrecError(f"{p}: expected one claims block between {BEGIN!r} and {END!r}")
    new = pattern.sub(lambda _: f"{BEGIN}\n{summary_table(claims)}\n{END}", text)
    if new == text:
        return False
    write_atomic(p, new)
    return True


def readme_block(path: str | Path) -> str:
    """The summary table as the README holds it (for the test that they agree)."""
    text = Path(path).read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip()
