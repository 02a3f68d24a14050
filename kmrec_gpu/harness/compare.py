"""``sweep=cpu_vs_gpu``: the same cells on two backends, compared.

Speedup per phase (a's median time over b's) and parity: metric deltas (b - a), the
adjusted Rand index between the two runs' cluster labels, relative inertia, and the
largest relative singular-value difference. Without a usable GPU, side b falls back to
another CPU array namespace (PyTorch-CPU against NumPy), the comparison says plainly that
no GPU was found, and the machinery is exercised all the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from omegaconf import DictConfig
from rich.markup import escape
from rich.table import Table

from kmrec_gpu.backends import cuda_status
from kmrec_gpu.harness.runner import CellResult, Harness
from kmrec_gpu.harness.spec import CellSpec, load_option, with_option


def parity(a: CellResult, b: CellResult) -> dict[str, Any]:
    deltas = {k: b.metrics[k] - a.metrics[k] for k in sorted(a.metrics)
              if k in b.metrics and not k.startswith("n_")}
    out: dict[str, Any] = {"metric_deltas": deltas, "ari": None, "inertia_rel": None,
                           "singular_values_max_rel": None}
    la, lb = a.artifacts.get("labels"), b.artifacts.get("labels")
    if la is not None and lb is not None and la.shape == lb.shape:
        from sklearn.metrics import adjusted_rand_score

        out["ari"] = float(adjusted_rand_score(la, lb))
    ia, ib = a.artifacts.get("inertia"), b.artifacts.get("inertia")
    if ia is not None and ib is not None and ia != 0:
        out["inertia_rel"] = (ib - ia) / abs(ia)
    sa, sb = a.artifacts.get("singular_values"), b.artifacts.get("singular_values")
    if sa is not None and sb is not None and sa.shape == sb.shape and sa.size:
        out["singular_values_max_rel"] = float(np.max(np.abs(sb - sa) / np.abs(sa)))
    return out


def speedups(a: CellResult, b: CellResult) -> dict[str, float | None]:
    return {ph: (a.timings[ph].median_s / b.timings[ph].median_s
                 if ph in a.timings and ph in b.timings else None)
            for ph in ("fit", "predict")}


def flatten(speed: dict, par: dict) -> dict[str, float]:
    flat = {f"speedup_{k}": v for k, v in speed.items()}
    flat.update(ari=par["ari"], inertia_rel=par["inertia_rel"],
                sv_max_rel=par["singular_values_max_rel"])
    flat.update({f"delta_{k}": v for k, v in par["metric_deltas"].items()})
    return {k: float(v) for k, v in flat.items() if v is not None and np.isfinite(v)}


def sides(cfg: DictConfig) -> tuple[str, str, bool, str]:
    """Backend options a and b, whether a GPU was found, and the note saying so."""
    cmp = cfg.sweep.compare
    a, b = cmp.a, cmp.b
    if load_option("backend", b).name != "cuda":
        return a, b, False, f"comparing {a} with {b}"
    status = cuda_status()
    if status.usable:
        return a, b, True, f"GPU found: {status.device_name}"
    fb = cmp.get("fallback_b")
    if not fb:
        return a, b, False, f"no GPU was found ({status.summary}); side {b} fails"
    return a, fb, False, (f"no GPU was found ({status.summary}); comparing the CPU array "
                          f"namespaces instead: {a} against {fb}")


def run_compare(h: Harness, cfg: DictConfig) -> list[CellResult]:
    from kmrec_gpu.harness.app import grid_configs

    a, b, gpu, note = sides(cfg)
    h.console.print(f"[bold]cpu_vs_gpu:[/] {escape(note)}")
    cells = sorted(grid_configs(cfg), key=lambda c: (c.dataset.name, c.model.name))
    table = Table("model", "dataset", f"fit {a} s", f"fit {b} s", "fit speedup",
                  "predict speedup", "metric delta (b - a)", "ARI", "inertia rel",
                  "sv max rel", title=f"{a} vs {b}: " + note)
    force, h.force = h.force, True  # parity needs both sides' fitted state in this process
    results: list[CellResult] = []
    try:
        for c in cells:
            ra = h.run(CellSpec.from_config(with_option(c, "backend", a)), keep_artifacts=True)
            rb = h.run(CellSpec.from_config(with_option(c, "backend", b)), keep_artifacts=True)
            results += [ra, rb]
            if ra.status != "ok" or rb.status != "ok":
                continue
            speed, par = speedups(ra, rb), parity(ra, rb)
            spec = dataclasses.replace(rb.spec, role="comparison")
            comparison = {"a": _side(ra), "b": _side(rb), "gpu_found": gpu, "note": note,
                          "speedup": speed, "parity": par}
            d = par["metric_deltas"]
            main = next(((k, d[k]) for k in ("rmse", f"ndcg@{int(c.eval.k)}") if k in d),
                        (None, None))
            row_ds = next(r for r in rb.rows if r["phase"] == "evaluate")
            h.write_row(spec, rb.backend, "evaluate", dataset=row_ds["dataset"],
                   split=row_ds["split"], params=row_ds["model"]["params"],
                   metrics=flatten(speed, par), extra={"comparison": comparison})
            table.add_row(c.model.name, c.dataset.name,
                          f"{ra.timings['fit'].median_s:.3g}", f"{rb.timings['fit'].median_s:.3g}",
                          _fmt(speed["fit"], "x"), _fmt(speed["predict"], "x"),
                          f"{main[0]} {main[1]:+.2e}" if main[0] else "-",
                          _fmt(par["ari"]), _fmt(par["inertia_rel"], e=True),
                          _fmt(par["singular_values_max_rel"], e=True))
    finally:
        h.force = force
    h.console.print(table)
    return results


def _side(r: CellResult) -> dict[str, Any]:
    return {k: r.backend[k] for k in ("name", "library", "device_name")}


def _fmt(v: float | None, suffix: str = "", e: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.2e}" if e else f"{v:.3f}{suffix}"
