"""The report's first screen: each claim's verdict and conclusion, the best held-out RMSE
per dataset beside the published anchors, and the fastest backend per model, each with a
link to the section that holds the detail. Every figure here is one the sections below
show; nothing is computed that they do not."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from kmrec_gpu.claims import render
from kmrec_gpu.report import accuracy, fmt
from kmrec_gpu.report.anchors import ANCHORS, same_protocol
from kmrec_gpu.report.load import harness, when
from kmrec_gpu.report.scale import harness_fit_rows


def claims_lines(claims: list[dict]) -> str:
    if not claims:
        return "No claims are recorded yet (`kmrec claims run`)."
    rows = []
    for c in sorted(claims, key=lambda c: c["id"]):
        probe = next((f for f in c["figures"] if f["kind"] == "probe"), None)
        shown = c["held_out"] or probe
        rows.append([c["id"], render._claimed(c),
                     (render._interval(shown) + (" (probe)" if shown is probe else ""))
                     if shown else fmt.MISSING, f"**{c['verdict']}**", render._holds(c)])
    return fmt.table(["claim", "claimed", "held out [95% interval]", "verdict",
                      "the document's conclusion"], rows)


def best_per_dataset(rows: list[dict], figures: dict | None = None) -> str:
    """Per dataset, the held-out line of the rating table with the lowest RMSE (as
    published variants are no held-out figures), and the anchors for that dataset;
    ``figures``: :func:`accuracy.rating_figures` of ``rows``, when already computed."""
    figures = accuracy.rating_figures(rows) if figures is None else figures
    best: dict[str, tuple[float, str, str, list[dict]]] = {}
    for (ds, model, lib, var, proto), (rs, _, value) in figures.items():
        if var:
            continue
        if value is None or not math.isfinite(value):
            continue
        if ds not in best or value < best[ds][0]:
            best[ds] = (value, f"{model} ({lib})", proto, rs)
    if not best:
        return "No stored rows carry held-out rating metrics."
    out = []
    for ds, (value, model, proto, rs) in sorted(best.items()):
        anchors = [a for a in ANCHORS if a.dataset == rs[0]["dataset"]["name"]]
        text = "; ".join(f"{a.model} {a.rmse:.3f} ({a.source}"
                         + (", same protocol)" if any(same_protocol(a, r["split"]) for r in rs)
                            else ")") for a in anchors) or "none"
        out.append([ds, model, proto, fmt.metric(value), text])
    return fmt.table(["dataset", "lowest held-out RMSE: model (library)", "protocol", "RMSE",
                      "published anchors (protocols differ unless said)"], out)


def fastest_backend(rows: list[dict]) -> str:
    """Per model and dataset: among the libraries timed on one device at one code revision
    (the newest such set with two or more), the fastest median fit and how much slower the
    slowest was. Two machines, or two revisions, are never ranked against each other."""
    fits = [r for r in harness_fit_rows(rows) if harness(r).get("role") != "peer"]
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in fits:
        w = r.get("wall_time") or {}
        if isinstance(w.get("median_s"), (int, float)):
            b = r["backend"]
            groups[(harness(r)["model_config"], r["dataset"]["name"], b.get("device_name"),
                    r["git_revision"])][str(b.get("library"))].append(r)
    newest: dict[tuple[str, str], tuple] = {}
    for key, sides in groups.items():
        if len(sides) < 2:
            continue
        t = max(when(r) for rs in sides.values() for r in rs)
        if key[:2] not in newest or t > newest[key[:2]][0]:
            newest[key[:2]] = (t, key)
    out = []
    for (model, ds), (_, key) in sorted(newest.items()):
        med = {lib: statistics.median(r["wall_time"]["median_s"] for r in rs)
               for lib, rs in groups[key].items()}
        fast = min(med, key=med.get)
        out.append([model, ds, f"{fast} on {key[2]}", fmt.num(med[fast]),
                    f"{max(med.values()) / med[fast]:.2f}×", ", ".join(sorted(med)),
                    f"`{key[3][:10]}`"])
    if not out:
        return ("No model has been timed on two libraries on one device at one revision yet "
                "(no GPU has been lent to this project): nothing to rank.")
    return fmt.table(["model", "dataset", "fastest: library on device", "its median fit s",
                      "slowest / fastest", "libraries compared", "code"], out)


def section(claims: list[dict], rows: list[dict], figures: dict | None = None) -> str:
    return "\n\n".join([
        f"**Claims** ([details](#claims)): {_verdicts(claims)}",
        claims_lines(claims),
        "**Best held-out RMSE per dataset** beside the published anchors "
        "([details](#rating-prediction), [anchors](#published-anchors)):",
        best_per_dataset(rows, figures),
        "**Fastest backend per model** (harness fit medians; "
        "[details](#harness-timings), [CPU vs GPU](#cpu-vs-gpu)):",
        fastest_backend(rows),
        "Below: [claims](#claims) · [held-out accuracy](#held-out-accuracy) · "
        "[scale](#scale) · [CPU vs GPU](#cpu-vs-gpu) · "
        "[failed and skipped cells](#failed-and-skipped-cells) · [coverage](#coverage) · "
        "[files read](#files-read)",
    ])


def _verdicts(claims: list[dict]) -> str:
    n: dict[str, int] = defaultdict(int)
    for c in claims:
        n[c["verdict"]] += 1
    return ", ".join(f"{v} {k}" for k, v in sorted(n.items())) or "none recorded"
