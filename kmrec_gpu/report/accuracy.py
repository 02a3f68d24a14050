"""Held-out accuracy per dataset x model from stored rows, beside the published anchors.

Rows of one (dataset, model, variant, split protocol) from several seeds or folds are one
line: the mean, the spread and how many splits it rests on. A variant is what a row's
``extra`` says about its protocol (as published / held out / clean, the target), so a
leaky as-published figure never averages with a held-out one.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from typing import Any

from kmrec_gpu.report import fmt
from kmrec_gpu.report.anchors import ANCHORS, anchor_datasets, same_protocol
from kmrec_gpu.report.labels import dataset_label, label
from kmrec_gpu.report.load import comparison, kernels_tag

PHASES = ("evaluate", "predict", "end-to-end")
RANKING = re.compile(r"^(precision|recall|ndcg|map|hit_rate)@\d+$")
_RANK_ORDER = ("precision", "recall", "ndcg", "map", "hit_rate")
_SEED_KEYS = ("seed", "fold", "random_state")


def is_accuracy_row(r: dict) -> bool:
    if r["status"] != "ok" or r["phase"] not in PHASES or comparison(r):
        return False
    return "rmse" in r["metrics"] or any(RANKING.match(k) for k in r["metrics"])


def protocol(split: dict[str, Any] | None) -> str:
    """The split without its seed: what stays the same across the rows of one line."""
    if not split:
        return "no split (all rows)"
    params = {k: v for k, v in sorted((split.get("params") or {}).items())
              if k not in _SEED_KEYS and v not in (None, False)}
    return " ".join([split.get("method", "?"), *(f"{k}={v}" for k, v in params.items())])


def variant(r: dict) -> str:
    e = r.get("extra") or {}
    parts = [str(e["protocol"])] if isinstance(e.get("protocol"), str) else []
    if isinstance(e.get("target"), str):
        parts.append(f"target {e['target']}")
    if kernels_tag(r):
        parts.append(kernels_tag(r))
    return ", ".join(parts)


def _groups(rows: list[dict]) -> dict[tuple[str, str, str, str, str], list[dict]]:
    # the library is part of a line: one model on two backends is two measurements
    g: dict[tuple[str, str, str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        g[(dataset_label(r["dataset"], r["seed"]), r["model"]["name"],
           str(r["backend"].get("library")), variant(r), protocol(r["split"]))].append(r)
    return g


def _seeds(rows: list[dict]) -> str:
    seeds = sorted({r["seed"] for r in rows})
    folds = sorted({f for r in rows if (f := ((r["split"] or {}).get("params") or {})
                                        .get("fold")) is not None})
    text = ", ".join(map(str, seeds))
    return f"{text}; folds {', '.join(map(str, folds))}" if folds else text


def _mean(rows: list[dict], metric: str) -> float | None:
    vals = [r["metrics"][metric] for r in rows if metric in r["metrics"]]
    return statistics.fmean(vals) if vals else None


def _vs_anchors(dataset: str, rows: list[dict]) -> str:
    anchors = [a for a in ANCHORS if a.dataset == dataset]
    if not anchors:
        return "no anchor for this dataset"
    same = sorted({a.source for a in anchors if any(same_protocol(a, r["split"]) for r in rows)})
    if same:
        return "same protocol as " + ", ".join(same)
    return "protocol differs from every anchor"


def rating_table(rows: list[dict]) -> str:
    acc = [r for r in rows if is_accuracy_row(r) and "rmse" in r["metrics"]]
    if not acc:
        return "No stored rows carry held-out rating metrics."
    lines = []
    for (ds, model, lib, var, proto), rs in _groups(acc).items():
        rmses = [r["metrics"]["rmse"] for r in rs]
        lines.append((ds, proto, statistics.fmean(rmses), model, lib, var, [
            ds, model, lib, var, proto, len(rs), _seeds(rs),
            fmt.metric(statistics.fmean(rmses)),
            f"{fmt.metric(min(rmses))} to {fmt.metric(max(rmses))}" if len(rs) > 1 else "",
            fmt.metric(_mean(rs, "mae")), _vs_anchors(rs[0]["dataset"]["name"], rs)]))
    lines.sort(key=lambda t: t[:6])
    return "\n\n".join([
        fmt.table(["dataset", "model", "library", "variant", "protocol (split without seed)",
                   "splits", "seeds", "RMSE mean", "RMSE range", "MAE mean", "vs anchors"],
                  [t[-1] for t in lines]),
        label(acc)])


def _rank_key(metric: str) -> tuple[int, str]:
    base = metric.split("@")[0]
    return (_RANK_ORDER.index(base) if base in _RANK_ORDER else len(_RANK_ORDER), metric)


def ranking_table(rows: list[dict]) -> str:
    acc = [r for r in rows if is_accuracy_row(r) and any(RANKING.match(k) for k in r["metrics"])]
    if not acc:
        return "No stored rows carry held-out ranking metrics."
    metrics = sorted({k for r in acc for k in r["metrics"] if RANKING.match(k)}, key=_rank_key)
    if any("catalog_coverage" in r["metrics"] for r in acc):
        metrics.append("catalog_coverage")
    out = []
    for (ds, model, lib, var, proto), rs in sorted(_groups(acc).items()):
        out.append([ds, model, lib, var, proto, len(rs), _seeds(rs),
                    *(fmt.metric(_mean(rs, m)) for m in metrics)])
    return "\n\n".join([
        fmt.table(["dataset", "model", "library", "variant", "protocol (split without seed)",
                   "splits", "seeds", *(f"{m} mean" for m in metrics)], out),
        label(acc)])


def anchors_section(rows: list[dict]) -> str:
    acc = [r for r in rows if is_accuracy_row(r) and "rmse" in r["metrics"]]
    table = fmt.table(["source", "dataset", "model", "published RMSE", "protocol"],
                      [[a.source, a.dataset, a.model, fmt.num(a.rmse), a.protocol]
                       for a in ANCHORS])
    notes = []
    for ds in sorted(anchor_datasets()):
        here = [r for r in acc if r["dataset"]["name"] == ds]
        anchors = [a for a in ANCHORS if a.dataset == ds]
        if not here:
            notes.append(f"- **{ds}**: no stored held-out rows; the anchors stand alone.")
            continue
        same = [r for r in here if any(same_protocol(a, r["split"]) for a in anchors)]
        other = sorted({protocol(r["split"]) for r in here if r not in same})
        text = f"- **{ds}**: "
        if same:
            per_model = _groups(same)
            text += ("same protocol as " + ", ".join(sorted(
                {a.source for a in anchors if any(same_protocol(a, r["split"]) for r in same)}))
                + ": " + ", ".join(
                    f"{m} {fmt.metric(statistics.fmean(r['metrics']['rmse'] for r in rs))} "
                    f"({len(rs)} splits)" for (_, m, _, _, _), rs in sorted(per_model.items()))
                + ". ")
        if other:
            text += ("The protocol differs from the anchors' ("
                     + "; ".join(sorted({a.protocol for a in anchors}))
                     + ") for the stored rows with " + "; ".join(other)
                     + ": compare those only loosely.")
        notes.append(text)
    cites = sorted({a.citation for a in ANCHORS})
    return "\n\n".join([table, "Citations: " + " ".join(f"({n + 1}) {c}."
                                                        for n, c in enumerate(cites)),
                        "\n".join(notes)])
