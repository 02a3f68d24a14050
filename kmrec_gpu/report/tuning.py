"""Tuned models beside their untuned peers, with what the tuning cost (Rendle et al. 2019:
say how much each compared model was tuned).

One line per held-out line of a search option (``ValidatedSearch``: ``tuned_*``) in the
rating or top-k table: its declared budget, the trials run and seconds spent per split
(from the fit rows' facts), the values it chose (range over splits), how many searches
ended at an edge of their range, and its held-out figure beside the untuned model's (the
option's first peer) on the same splits.
"""

from __future__ import annotations

import statistics

from kmrec_gpu.report import fmt


def _fit_facts(runs: list[dict]) -> dict[str, dict]:
    """Per cell key, the newest ok fit row that carries a search's facts."""
    out: dict[str, dict] = {}
    for r in sorted(runs, key=lambda r: r.get("created_utc") or ""):
        facts = (r.get("extra") or {}).get("facts") or {}
        key = ((r.get("extra") or {}).get("harness") or {}).get("cell_key")
        if (r.get("phase") in ("fit", "end-to-end") and r.get("status") == "ok" and key
                and "tune_s" in facts):
            out[key] = r
    return out


def _g(v: float) -> str:
    """A chosen value to three significant digits (an int as it is)."""
    return str(v) if isinstance(v, int) else f"{v:.3g}"


def _chosen(fits: list[dict]) -> str:
    values: dict[str, list] = {}
    for r in fits:
        for k, v in r["extra"]["facts"]["best_params"].items():
            values.setdefault(k, []).append(v)
    parts = []
    for k in sorted(values):
        vs = values[k]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs):
            lo, hi = _g(min(vs)), _g(max(vs))
            parts.append(f"{k} {lo}" if lo == hi else f"{k} {lo}-{hi}")
        else:
            parts.append(f"{k} {', '.join(sorted({str(v) for v in vs}))}")
    return "; ".join(parts)


def _peer(model: str) -> str | None:
    from kmrec_gpu.harness.spec import ConfigError, load_option

    try:
        peers = list(load_option("model", model).get("peers") or [])
    except ConfigError:
        return None
    return peers[0] if peers else None


def section(runs: list[dict], *figure_sets: tuple[str, dict]) -> str:
    """``figure_sets``: (metric name, figures) pairs, as ``accuracy.rating_figures`` and
    ``accuracy.ranking_figures`` give them."""
    facts = _fit_facts(runs)
    lines = []
    for metric, figures in figure_sets:
        for (ds, model, lib, var, proto), (rs, _pool, value) in sorted(figures.items()):
            keys = [((r.get("extra") or {}).get("harness") or {}).get("cell_key") for r in rs]
            fits = [facts[k] for k in keys if k in facts]
            if var or not fits:
                continue
            params = fits[0]["model"].get("params") or {}
            budget = f"{params.get('n_trials')} trials" + (
                f", {fmt.num(params['timeout_s'])} s" if params.get("timeout_s") else "")
            trials = sorted({r["extra"]["facts"]["n_trials"] for r in fits})
            tune = statistics.median(r["extra"]["facts"]["tune_s"] for r in fits)
            edges = sum(1 for r in fits if r["extra"]["facts"].get("at_edge"))
            peer = _peer(model)
            base = figures.get((ds, peer, lib, "", proto)) if peer else None
            lines.append([
                ds, model, proto, len(fits), budget,
                str(trials[0]) if len(trials) == 1 else f"{trials[0]}-{trials[-1]}",
                f"{tune:.1f}", _chosen(fits), f"{edges} of {len(fits)}",
                f"{metric} {fmt.metric(value)}" if value is not None else fmt.MISSING,
                peer or fmt.MISSING,
                fmt.metric(base[2]) if base and base[2] is not None else fmt.MISSING])
    if not lines:
        return ("No stored rows of a tuned model (a `tuned_*` search option) yet: "
                "`kmrec-bench -m dataset=ml-100k model=tuned_biased_mf,tuned_ease seed=0,1,2,3,4`.")
    return ("Each search ran on a validation split carved from its training part only; its "
            "seconds are part of the fit time. The untuned model is the option's peer on the "
            "same splits.\n\n" + fmt.table(
                ["dataset", "tuned model", "protocol", "splits", "budget", "trials run",
                 "tuning s (median)", "chosen (range over splits)", "ended at an edge",
                 "held-out (pooled)", "untuned model", "its figure"], lines))
