"""The report's tables other than accuracy: claims, CPU vs GPU, failed cells, harness
timings. Each returns Markdown ending in the provenance label of the rows it shows."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from kmrec_gpu.report import fmt
from kmrec_gpu.report.labels import label
from kmrec_gpu.report.load import (
    SOURCE,
    comparison,
    fallback_reasons,
    gpu_found,
    harness,
    kernels_tag,
)

NO_GPU = "No GPU was found; the comparison is between the CPU array namespaces."


def _file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _evidence_rows(claim: dict, rows: list[dict]) -> list[dict]:
    cited = {_file_name(e) for e in claim["evidence"] if e.endswith((".jsonl", ".jsonl.gz"))}
    return [r for r in rows if _file_name(r[SOURCE]) in cited]


def claims_section(claims: list[dict], rows: list[dict]) -> str:
    from kmrec_gpu.claims import render

    if not claims:
        return "No claims are recorded (`claims.json` is missing or empty)."
    claims = sorted(claims, key=lambda c: c["id"])
    verdicts = Counter(c["verdict"] for c in claims)
    summary = ("Built by `kmrec claims` from stored rows (the protocols are "
               "`bench/conf/claim/<id>.yaml`). Verdicts: "
               + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())) + ".")
    cited = {id(r): r for c in claims for r in _evidence_rows(c, rows)}
    details = [render.details(c) + "\n\n" + label(_evidence_rows(c, rows)) for c in claims]
    return "\n\n".join([summary, render.summary_table(claims),
                        "Rows in the run files the claims cite: " + label(cited.values()),
                        "### Claim details", *details])


def _backend(b: dict[str, Any]) -> str:
    return f"{b.get('library')} on {b.get('device_name')}"


def _no_gpu_note(rows: list[dict]) -> str:
    if gpu_found(rows):
        return ""
    reasons = fallback_reasons(rows)
    why = (" The rows record why: " + "; ".join(f'"{r}"' for r in reasons) + ".") if reasons else ""
    return "No stored row ran on a GPU." + why


def comparison_section(rows: list[dict]) -> str:
    """Comparison rows of the current runs; ``rows`` may hold every stored row, for the
    record of why no backend reached a GPU."""
    comps = [r for r in rows if "schema_version" in r and r["status"] == "ok"
             and comparison(r)]
    if not comps:
        return "\n\n".join(filter(None, ["No CPU-vs-GPU comparison rows are stored yet.",
                                           _no_gpu_note(rows)]))
    out = []
    for r in comps:
        c = comparison(r)
        h = harness(r) or {}
        sp, par = c.get("speedup") or {}, c.get("parity") or {}
        deltas = par.get("metric_deltas") or {}
        out.append([h.get("model_config", r["model"]["name"]),
                    h.get("dataset_config", r["dataset"]["name"]),
                    _backend(c.get("a") or {}), _backend(c.get("b") or {}),
                    fmt.num(bool(c.get("gpu_found"))), fmt.num(sp.get("fit")),
                    fmt.num(sp.get("predict")),
                    ", ".join(f"{k} {fmt.num(v)}" for k, v in sorted(deltas.items())),
                    fmt.metric(par.get("ari")), fmt.num(par.get("inertia_rel")),
                    fmt.num(par.get("singular_values_max_rel")), c.get("note") or ""])
    out.sort(key=lambda x: [str(v) for v in x])
    text = [fmt.table(["model", "dataset", "a", "b", "GPU found", "speedup fit (a/b)",
                       "speedup predict", "metric deltas (b - a)", "ARI", "inertia rel",
                       "sv max rel", "note"], out), label(comps)]
    if not any(comparison(r).get("gpu_found") for r in comps):
        text.insert(0, f"**{NO_GPU}**")
        text.append(_no_gpu_note(rows))
    return "\n\n".join(filter(None, text))


def failed_section(rows: list[dict]) -> str:
    bad = [r for r in rows if "schema_version" in r and r["status"] in ("failed", "skipped")]
    if not bad:
        return "No failed or skipped cells are stored."
    groups: dict[tuple[str, ...], list[dict]] = defaultdict(list)
    for r in bad:
        h = harness(r) or {}
        be = r["backend"]
        groups[(h.get("model_config", r["model"]["name"]),
                h.get("dataset_config", r["dataset"].get("name") or ""),
                h.get("backend_config", "/".join(str(v) for v in (be.get("name"),
                                                                  be.get("library")) if v)),
                r["phase"], r["status"], r.get("reason") or "")].append(r)
    out = [[*k, len(rs), ", ".join(sorted({_file_name(r[SOURCE]) for r in rs}))]
           for k, rs in sorted(groups.items())]
    return "\n\n".join([fmt.table(["model", "dataset", "backend", "phase", "status", "reason",
                                   "rows", "files"], out), label(bad)])


def harness_timing_section(rows: list[dict]) -> str:
    timed = [r for r in rows if harness(r) and r["status"] == "ok"
             and r["phase"] in ("fit", "predict", "recommend") and r.get("wall_time")]
    if not timed:
        return "No harness timing rows are stored yet."
    def order(r: dict) -> tuple:
        h = harness(r)
        return (str(h.get("model_config")), str(h.get("role")), str(h.get("dataset_config")),
                r["dataset"].get("n_ratings") or 0, str(r["backend"].get("library")),
                kernels_tag(r), r["phase"], r["seed"], h.get("cell_key") or "")

    out = []
    for r in sorted(timed, key=order):
        h, wt = harness(r), r["wall_time"]
        tp = r.get("throughput") or {}
        pm = r.get("peak_memory") or {}
        lib = " ".join(filter(None, [str(r["backend"].get("library")), kernels_tag(r)]))
        out.append([h.get("model_config"), h.get("role"), h.get("dataset_config"),
                    fmt.num(r["dataset"].get("n_ratings")), lib,
                    r["backend"].get("device_name"), r["phase"], r["seed"],
                    fmt.seconds(wt.get("median_s")),
                    f"{fmt.seconds(wt.get('min_s'))} to {fmt.seconds(wt.get('max_s'))}",
                    fmt.num(wt.get("repeats")),
                    f"{fmt.num(tp['value'])} {tp.get('unit', '')}".strip()
                    if tp.get("value") is not None else fmt.MISSING,
                    fmt.bytes_(pm.get("host_delta_bytes", pm.get("host_bytes"))),
                    fmt.bytes_(pm.get("device_bytes"))])
    return "\n\n".join([fmt.table(
        ["model", "role", "dataset", "ratings", "library", "device", "phase", "seed",
         "median s", "min to max s", "repeats", "throughput", "host peak (rise)",
         "device peak"], out), label(timed)])


def interrupted_section(cells: list[dict]) -> str:
    """Harness cells a run began and never ended (:func:`load.interrupted_cells`): a process
    killed or crashed mid-cell leaves its load, split or fit rows and no end row."""
    if not cells:
        return "No interrupted cells: every harness cell a run began has its end row."
    out = []
    for c in cells:
        h, r = c["harness"] or {}, c["row"]
        out.append([h.get("model_config", r["model"]["name"]),
                    h.get("dataset_config", r["dataset"].get("name") or ""),
                    h.get("backend_config", r["backend"].get("name")), r["seed"],
                    c["cell_key"], c["run_id"], ", ".join(c["phases"]), r["created_utc"],
                    "yes" if c["completed_elsewhere"] else "no",
                    _file_name(r[SOURCE])])
    return "\n\n".join([
        f"{len(cells)} (run, cell) pair(s) began and have no end row (no `evaluate` row, no "
        "failed or skipped `end-to-end` row): the process stopped mid-cell (killed, out of "
        "memory, a crash), or its run was still going when this report was built. Their "
        "partial rows are in no result; run the cell again.",
        fmt.table(["model", "dataset", "backend", "seed", "cell key", "run", "rows left",
                   "last row at", "completed in a run", "file"], out),
        label([c["row"] for c in cells])])
