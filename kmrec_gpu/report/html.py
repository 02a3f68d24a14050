"""``kmrec report --html``: one self-contained page (plotly's JavaScript embedded, no
network needed to open it) drawn from the stored rows only, as ``REPORT.md`` is.

- every stored row in one table, filtered by the words typed in the box (all must match;
  ``report.html#filter=svd%20ml-100k`` opens it filtered);
- held-out RMSE against fit time per dataset, one point per model, library and device
  (its newest evaluation), the Pareto front of the points no other beats on both, and the
  published anchors as dashed lines, in the style of ann-benchmarks;
- fit time and peak memory against ratings, log-log, one line per model, library and
  device (the scale section's series);
- the CPU-vs-GPU comparison rows, and the claims with their evidence.

Hovering a point shows its parameters and provenance (device, seed, split, revision, file).
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from kmrec_gpu.report import accuracy
from kmrec_gpu.report.anchors import ANCHORS
from kmrec_gpu.report.load import Inputs, comparison, harness, load_inputs
from kmrec_gpu.report.scale import harness_series
from kmrec_gpu.results import write_atomic

MARKER = "<!-- kmrec report --html -->"
PHASES = ("fit", "predict", "recommend", "evaluate", "end-to-end", "load", "split")


def _ours(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(MARKER) + 32).startswith(f"<!DOCTYPE html>\n{MARKER}".encode())
    except OSError:
        return False


def _headline(metrics: dict[str, Any]) -> str:
    for key in ("rmse", "ndcg@10", "precision@10"):
        if isinstance(metrics.get(key), (int, float)):
            return f"{key} {metrics[key]:.4f}"
    shown = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float))
             and not isinstance(v, bool)][:2]
    return ", ".join(f"{k} {v:.4g}" for k, v in shown)


def row_cells(r: dict) -> list[str]:
    """The table's columns for one stored row."""
    h = harness(r) or {}
    w = r.get("wall_time") or {}
    pm = r.get("peak_memory") or {}
    host = pm.get("host_delta_bytes", pm.get("host_bytes"))
    b = r["backend"]
    split = r.get("split") or {}
    return [str(r.get("created_utc", ""))[:19], str(r["dataset"].get("name")),
            str(r["model"]["name"]), str(h.get("role", "")), str(b.get("library")),
            str(b.get("device_name")), str(r.get("seed")), str(split.get("method", "")),
            r["phase"], r["status"], _headline(r.get("metrics") or {}),
            "" if w.get("median_s") is None else f"{w['median_s']:.4g}",
            "" if host is None else f"{host / 2**20:.1f}", str(r["git_revision"])[:10],
            str(r.get("_source", ""))]


TABLE_HEADER = ["when (UTC)", "dataset", "model", "role", "library", "device", "seed", "split",
                "phase", "status", "metric", "median s", "peak MiB", "revision", "file"]


def _short(device: str | None) -> str:
    """A device name short enough for a legend: 'Intel(R) Xeon(R) Processor' -> 'Intel Xeon'."""
    text = str(device).replace("(R)", "").replace("(TM)", "").replace(" Processor", "")
    return " ".join(text.split()[:3])


def _hover(r: dict, fit: dict | None) -> str:
    params = json.dumps((r.get("model") or {}).get("params") or {}, sort_keys=True,
                        default=str)
    split = r.get("split") or {}
    lines = [f"<b>{r['model']['name']}</b> [{r['backend'].get('library')}]",
             f"device: {r['backend'].get('device_name')}", f"seed {r.get('seed')}, split "
             f"{split.get('method')}", f"revision {str(r['git_revision'])[:10]}",
             f"file {r.get('_source', '')}", f"params {params[:300]}"]
    if fit is not None:
        lines.append(f"fit median {fit['wall_time']['median_s']:.4g} s")
    return "<br>".join(html.escape(x) if not x.startswith("<b>") else x for x in lines)


def pareto_points(rows: list[dict]) -> dict[str, list[dict]]:
    """Per dataset: the held-out RMSE rows (no 'as published' variant) that have a fit time
    from the same cell and run, newest per model, library and device."""
    fits = {(harness(r).get("cell_key"), r.get("run_id")): r for r in rows
            if harness(r) and r["phase"] == "fit" and r["status"] == "ok"
            and (r.get("wall_time") or {}).get("median_s")}
    best: dict[tuple, dict] = {}
    for r in rows:
        if not (accuracy.is_accuracy_row(r) and "rmse" in r["metrics"]) or accuracy.variant(r):
            continue
        fit = fits.get((harness(r).get("cell_key"), r.get("run_id"))) if harness(r) else None
        if fit is None or not math.isfinite(r["metrics"]["rmse"]):
            continue
        key = (r["dataset"]["name"], r["model"]["name"], r["backend"].get("library"),
               r["backend"].get("device_name"))
        if key not in best or str(r.get("created_utc")) > str(best[key][0].get("created_utc")):
            best[key] = (r, fit)
    out: dict[str, list[dict]] = {}
    for (ds, *_), (r, fit) in sorted(best.items()):
        out.setdefault(ds, []).append({
            "model": f"{r['model']['name']} [{r['backend'].get('library')}, "
                     f"{_short(r['backend'].get('device_name'))}]",
            "rmse": float(r["metrics"]["rmse"]), "fit_s": float(fit["wall_time"]["median_s"]),
            "hover": _hover(r, fit)})
    return out


def pareto_front(points: list[dict]) -> list[dict]:
    """The points no other beats on both fit time and RMSE, by increasing time."""
    front, best = [], math.inf
    for p in sorted(points, key=lambda p: (p["fit_s"], p["rmse"])):
        if p["rmse"] < best:
            front.append(p)
            best = p["rmse"]
    return front


def _figures(inp: Inputs) -> list[tuple[str, Any]]:
    import plotly.graph_objects as go

    figs: list[tuple[str, Any]] = []
    for ds, pts in pareto_points(inp.runs).items():
        fig = go.Figure()
        for p in pts:
            fig.add_trace(go.Scatter(x=[p["fit_s"]], y=[p["rmse"]], mode="markers",
                                     name=p["model"], hovertext=[p["hover"]],
                                     hoverinfo="text", marker={"size": 10}))
        front = pareto_front(pts)
        fig.add_trace(go.Scatter(x=[p["fit_s"] for p in front], y=[p["rmse"] for p in front],
                                 mode="lines", name="Pareto front", hoverinfo="skip",
                                 line={"shape": "hv", "dash": "dot", "color": "black"}))
        for a in (a for a in ANCHORS if a.dataset == ds):
            fig.add_hline(y=a.rmse, line_dash="dash", line_color="grey",
                          annotation_text=f"{a.model} {a.rmse:.3f} ({a.source})",
                          annotation_position="top left")
        fig.update_layout(title=f"{ds}: held-out RMSE against fit time", height=420,
                          xaxis={"title": "median fit time, s (log)", "type": "log"},
                          yaxis={"title": "held-out RMSE"})
        figs.append((f"pareto-{ds}", fig))
    series, what = harness_series(inp.runs)
    for kind in ("time", "memory"):
        fig = go.Figure()
        for s in series:
            pts = s.time if kind == "time" else s.memory
            if len(pts) < 2:
                continue
            fig.add_trace(go.Scatter(x=[x for x, _ in pts], y=[y for _, y in pts],
                                     mode="lines+markers", name=s.name,
                                     hovertemplate=f"{html.escape(s.name)}<br>%{{x:,}} ratings"
                                     f"<br>%{{y:.4g}}<extra></extra>"))
        if fig.data:
            fig.update_layout(title=f"{'fit time' if kind == 'time' else 'peak host memory'} "
                              f"against ratings ({what})", height=480,
                              xaxis={"title": "ratings (log)", "type": "log"},
                              yaxis={"title": "median fit s (log)" if kind == "time"
                                     else "peak host memory rise, bytes (log)", "type": "log"})
            figs.append((f"scale-{kind}", fig))
    return figs


def _table(header: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                     for r in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _claims_table(claims: list[dict]) -> str:
    from kmrec_gpu.claims import render

    rows = [[c["id"], render._claimed(c), render.figure(c["held_out"]),
             render.figure(c["as_published"]), c["verdict"], render._holds(c),
             ", ".join(c.get("evidence") or [])] for c in sorted(claims, key=lambda c: c["id"])]
    return _table(["claim", "claimed", "held out", "as published", "verdict", "conclusion",
                   "evidence"], rows, "claims") if rows else "<p>No claims are recorded.</p>"


def _comparison_table(rows: list[dict]) -> str:
    comps = [r for r in rows if r["status"] == "ok" and comparison(r)]
    if not comps:
        return ("<p>No CPU-vs-GPU comparison rows are stored yet (no GPU has been lent to "
                "this project).</p>")
    out = []
    for r in comps:
        c = comparison(r)
        par, sp = c.get("parity") or {}, c.get("speedup") or {}
        out.append([(harness(r) or {}).get("model_config", r["model"]["name"]),
                    r["dataset"]["name"], f"{(c.get('a') or {}).get('library')}",
                    f"{(c.get('b') or {}).get('library')} on "
                    f"{(c.get('b') or {}).get('device_name')}",
                    str(bool(c.get("gpu_found"))), str(sp.get("fit")), str(par.get("ari")),
                    json.dumps(par.get("metric_deltas") or {}), c.get("note") or ""])
    return _table(["model", "dataset", "a", "b", "GPU found", "speedup fit (a/b)", "ARI",
                   "metric deltas", "note"], out, "comparison")


_SCRIPT = """
function applyFilter() {
  const words = document.getElementById('filter').value.toLowerCase().split(/\\s+/)
    .filter(w => w.length > 0);
  let shown = 0;
  for (const tr of document.querySelectorAll('#rows tbody tr')) {
    const text = tr.textContent.toLowerCase();
    const keep = words.every(w => text.includes(w));
    tr.style.display = keep ? '' : 'none';
    if (keep) shown++;
  }
  document.getElementById('shown').textContent = shown;
}
window.addEventListener('DOMContentLoaded', () => {
  const m = location.hash.match(/filter=([^&]*)/);
  if (m) document.getElementById('filter').value = decodeURIComponent(m[1]);
  document.getElementById('filter').addEventListener('input', applyFilter);
  applyFilter();
});
"""

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; font-size: 12px; }
td, th { border: 1px solid #ccc; padding: 2px 5px; }
th { background: #eee; position: sticky; top: 0; }
#filter { width: 30em; font-size: 14px; }
.rows { max-height: 40em; overflow: auto; }
"""


def build_html(results_dir: str | Path = "results", out: str | Path | None = None,
               force: bool = False) -> Path:
    """Write the page (default ``<results>/report.html``) and return its path. A file there
    that this command did not write (it lacks the page's marker) is left alone unless
    ``force``."""
    import plotly.io as pio

    from kmrec_gpu.report.build import OverwriteRefused

    root = Path(results_dir)
    out = Path(out) if out is not None else root / "report.html"
    inp = load_inputs(root)
    if out.exists() and not force and not _ours(out):
        raise OverwriteRefused(f"refusing to overwrite {out}: not a page `kmrec report --html` "
                               "wrote (no marker). Move it away, write elsewhere (--out), or "
                               "pass --force")
    rows = [r for r in inp.runs if r["phase"] in PHASES]
    figs = _figures(inp)
    plots = [pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), div_id=name,
                         config={"displaylogo": False})
             for i, (name, fig) in enumerate(figs)]
    body = [
        f"<h1>kmrec_gpu results</h1><p>Drawn from {len(inp.runs)} stored rows of "
        f"{len(inp.files)} files under <code>{html.escape(str(root))}</code>; nothing was "
        "re-run. Hover a point for its configuration and provenance.</p>",
        "<h2>Claims</h2>", _claims_table(inp.claims),
        "<h2>Held-out RMSE against fit time</h2>",
        *[p for (name, _), p in zip(figs, plots) if name.startswith("pareto-")],
        "<h2>Scale</h2>", *[p for (name, _), p in zip(figs, plots) if name.startswith("scale-")],
        "<h2>CPU vs GPU</h2>", _comparison_table(inp.runs),
        f"<h2>Every row</h2><p><input id=\"filter\" placeholder=\"filter: words that must all "
        f"appear, e.g. svd ml-100k fit\"> <span id=\"shown\">{len(rows)}</span> of "
        f"{len(rows)} rows</p>",
        f'<div class="rows">{_table(TABLE_HEADER, [row_cells(r) for r in rows], "rows")}</div>',
    ]
    if not plots:  # the table still needs no plotly, but say why there is no figure
        body.insert(3, "<p>No stored rows to plot yet.</p>")
    page = (f"<!DOCTYPE html>\n{MARKER}\n<html><head><meta charset=\"utf-8\">"
            f"<title>kmrec_gpu results</title><style>{_STYLE}</style>"
            f"<script>{_SCRIPT}</script></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    write_atomic(out, page)
    return out
