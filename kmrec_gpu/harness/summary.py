"""The end of a ``kmrec-bench`` run: one table of every cell it ran, each peer under the
model it is a peer of, on the same dataset and split, with the time ratio between them.

Rows of the table come from the cells' results only (the figures their rows hold); a cell
already run at this revision shows its stored figures, marked ``stored``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kmrec_gpu.harness.runner import CellResult

HEADER = ("dataset", "split", "model", "held-out metrics [95% interval]", "fit s",
          "predict s", "model fit / peer fit")


def _metric(metrics: dict[str, Any], name: str, label: str) -> str | None:
    v = metrics.get(name)
    if not isinstance(v, (int, float)):
        return None
    lo, hi = metrics.get(f"{name}_ci_low"), metrics.get(f"{name}_ci_high")
    ci = f" [{lo:.4f}, {hi:.4f}]" if isinstance(lo, float) and isinstance(hi, float) else ""
    return f"{label} {v:.4f}{ci}"


def metrics_text(task: str, metrics: dict[str, Any]) -> str:
    """The cell's headline metrics: RMSE and MAE for ratings, nDCG and precision for lists
    (with their user-bootstrap intervals where the cell computed them)."""
    if task == "rating" or "rmse" in metrics:
        parts = [_metric(metrics, "rmse", "RMSE"), _metric(metrics, "mae", "MAE")]
    else:
        k = next((n.split("@")[1] for n in metrics if n.startswith("ndcg@")
                  and not n.endswith(("_ci_low", "_ci_high"))), None)
        parts = ([_metric(metrics, f"ndcg@{k}", f"nDCG@{k}"),
                  _metric(metrics, f"precision@{k}", f"P@{k}")] if k else [])
    shown = [p for p in parts if p]
    if not shown:  # a probe: its own figures
        shown = [f"{n} {v:.4g}" for n, v in list(metrics.items())[:3]
                 if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return "; ".join(shown)


def _seconds(res: CellResult, phase: str) -> float | None:
    t = res.timings.get(phase)
    return t.median_s if t is not None else None


def _fmt_s(v: float | None) -> str:
    return "" if v is None else f"{v:.3g}"


def _peer_of(p: CellResult, m: CellResult) -> bool:
    """``p`` ran as ``m``'s peer on the same data, split and seed."""
    return (p.spec.role == "peer" and p.spec.peer_of == m.spec.model["name"]
            and p.spec.dataset["name"] == m.spec.dataset["name"]
            and p.spec.split == m.spec.split and p.spec.seed == m.spec.seed)


def ordered(results: Sequence[CellResult]) -> list[CellResult]:
    """Cells by dataset and split in the order run, each model followed by its peers."""
    models = [r for r in results if r.spec.role != "peer"]
    peers = [r for r in results if r.spec.role == "peer"]
    out: list[CellResult] = []
    for m in models:
        out.append(m)
        out += [p for p in peers if _peer_of(p, m) and p not in out]
    out += [p for p in peers if p not in out]
    return out


def table_rows(results: Sequence[CellResult]) -> list[list[str]]:
    """One line per cell; a peer's last column is its model's fit time over its own (below 1:
    the model is faster) on the same dataset, split and seed."""
    rows: list[list[str]] = []
    last_model: CellResult | None = None
    for r in ordered(results):
        s = r.spec
        is_peer = s.role == "peer"
        if not is_peer:
            last_model = r
        name = f"  peer {s.model['name']}" if is_peer else s.model["name"]
        if s.backend.get("id") not in (None, "cpu"):  # cpu_torch, cuda: which ran is news
            name += f" [{s.backend['id']}]"
        data = (Path(str(s.dataset.get("path"))).name if s.dataset.get("kind") == "csv"
                else s.dataset["name"])
        fold = (s.split.get("params") or {}).get("fold")
        split = (s.split["method"] + (f" fold {fold}" if fold is not None else "")
                 + (f" seed {s.seed}" if s.seed else ""))
        if r.status in ("ok", "done"):
            text = metrics_text(s.model["task"], r.metrics)
            if r.status == "done":
                text += " (stored)"
            ratio = ""
            if last_model is not None and _peer_of(r, last_model):
                ours, theirs = _seconds(last_model, "fit"), _seconds(r, "fit")
                if ours and theirs:
                    ratio = f"{ours / theirs:.2f}×"
            rows.append([data, split, name, text, _fmt_s(_seconds(r, "fit")),
                         _fmt_s(_seconds(r, "predict")), ratio])
        else:
            rows.append([data, split, name, f"{r.status}: {r.reason or ''}",
                         "", "", ""])
    # a dataset and split are named once, on the first of their lines
    shown: tuple[str, str] | None = None
    for row in rows:
        here = (row[0], row[1])
        if here == shown:
            row[0] = row[1] = ""
        shown = here
    return rows


def print_summary(results: Sequence[CellResult], *, where: str, results_dir: str,
                  counts_from: Sequence[CellResult] | None = None,
                  console: Console | None = None, prog: str = "kmrec-bench") -> None:
    """The table of ``results``, then one line: the cells by status (``counts_from``,
    default ``results``), where the rows went, and how to render the report."""
    # a terminal gets its own width; a pipe or file a fixed one wide enough for the table
    console = console or Console(width=None if sys.stdout.isatty() else 160, soft_wrap=False)
    if results:
        t = Table(*HEADER, title=f"{prog}: held-out figures, medians of timed runs",
                  title_justify="left", show_lines=False)
        for row in table_rows(results):
            t.add_row(*(escape(c) for c in row))
        console.print(t)
    counts: dict[str, int] = {}
    for r in results if counts_from is None else counts_from:
        counts[r.status] = counts.get(r.status, 0) + 1
    status = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no cells"
    report = "kmrec report" + ("" if results_dir == "results" else f" --results {results_dir}")
    console.print(escape(f"{prog}: {status}; results appended to {where}; render the "
                         f"report with: {report}"), soft_wrap=True)
