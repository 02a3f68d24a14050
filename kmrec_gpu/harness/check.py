"""``kmrec check``: the fixed suite (``bench/conf/sweep/check.yaml``) against stored baselines.

Every cell runs (``force``: a check is never skipped as already done), its rows go to
``<results>/runs/`` like any run, and its metrics are compared with the baselines file
within the preset's per-metric tolerances. ``update`` rewrites the baselines instead: the
one deliberate way to accept a change.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kmrec_gpu.errors import KmrecError
from kmrec_gpu.harness.spec import CellSpec, ConfigError, conf_dir

# seed pinned so the check does not follow the root default; one fit per cell because
# timing is not what is compared; peers are other libraries, not this code
SETTINGS = ("sweep=check", "seed=0", "timing.warmup=0", "timing.repeats=1", "force=true",
            "with_peers=false")
FAILING = ("regressed", "failed", "missing", "dataset changed", "no baseline")
_ABSENT = object()


class BaselineError(KmrecError):
    """The baselines file is missing or does not cover the suite."""


@dataclass
class Finding:
    cell: str
    metric: str
    status: str  # regressed | improved | failed | missing | dataset changed | no baseline
    base: Any = None
    now: Any = None
    tol: str = ""


def cell_id(spec: CellSpec) -> str:
    """Stable and readable: the option names, not the key (which hashes every parameter)."""
    return (f"{spec.model['name']}@{spec.dataset['name']}/{spec.split['method']}/"
            f"{spec.backend['id']}/seed{spec.seed}")


def suite(*, only: Sequence[str] | str = (), overrides: Sequence[str] | Mapping = ()
          ) -> tuple[dict[str, Any], dict[str, dict]]:
    """The check's cells as {cell id: config}, filtered by ``only`` (fnmatch patterns over
    cell ids), with ``overrides`` applied to each cell that has the key; and the
    tolerances."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from kmrec_gpu.harness.app import grid_configs

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        root = compose("config", overrides=list(SETTINGS))
    cells: dict[str, Any] = {}
    for c in grid_configs(root):
        cid = cell_id(CellSpec.from_config(c))
        if cid in cells:
            raise ConfigError(f"sweep check: cell {cid} appears twice")
        cells[cid] = c
    patterns = [only] if isinstance(only, str) else list(only)
    for p in patterns:
        if not fnmatch.filter(cells, p):
            raise ConfigError(f"check: {p!r} matches no cell; cells are {sorted(cells)}")
    if patterns:
        cells = {k: c for k, c in cells.items() if any(fnmatch.fnmatch(k, p) for p in patterns)}
    for key, value in _override_pairs(overrides):
        hit = [c for c in cells.values() if OmegaConf.select(c, key, default=_ABSENT)
               is not _ABSENT]
        if not hit:
            raise ConfigError(f"override {key}: no selected cell of the check has that key")
        for c in hit:
            OmegaConf.update(c, key, value, merge=False)
    tol = OmegaConf.to_container(root.sweep.get("tolerances") or {}, resolve=True)
    return cells, tol


def _override_pairs(overrides: Sequence[str] | Mapping) -> list[tuple[str, Any]]:
    import yaml

    if isinstance(overrides, Mapping):
        return list(overrides.items())
    out = []
    for s in [overrides] if isinstance(overrides, str) else overrides:
        key, sep, value = s.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {s!r}: expected key=value")
        out.append((key.strip(), yaml.safe_load(value)))
    return out


def compare_metric(cell: str, metric: str, base: Any, now: Any, tol: dict) -> Finding | None:
    """A finding when the metric moved beyond tolerance (or to/from NaN); None when within."""
    t = max(float(tol.get("abs", 0.0)), float(tol.get("rel", 0.0)) * abs(base or 0.0))
    worse = tol.get("worse", "any")
    desc = (f"±{t:.3g}" if worse == "any" else f"{t:.3g}, {worse} worse")
    if base is None or now is None:  # stored NaN is null; a metric turning NaN is a change
        return None if base is None and now is None else Finding(cell, metric, "regressed",
                                                                 base, now, desc)
    delta = now - base
    bad = {"higher": delta, "lower": -delta}.get(worse, abs(delta))
    if bad > t:
        return Finding(cell, metric, "regressed", base, now, desc)
    if worse != "any" and -bad > t:
        return Finding(cell, metric, "improved", base, now, desc)
    return None


def compare(baselines: dict, results: dict[str, Any], tolerances: dict
            ) -> tuple[list[Finding], int, set[str]]:
    """Findings, the number of metrics within tolerance, and the metrics not compared."""
    findings, passed, unchecked = [], 0, set()
    for cid, base in sorted(baselines["cells"].items()):
        res = results.get(cid)
        if res is None:
            findings.append(Finding(cid, "-", "missing", now="not in this run"))
            continue
        if res.status != "ok":
            findings.append(Finding(cid, "-", "failed", now=f"{res.status}: {res.reason}"))
            continue
        was, now = baselines["datasets"].get(base["dataset"]) or {}, dataset_facts(res)
        for k in sorted(set(was) | set(now)):
            if was.get(k) != now.get(k):
                findings.append(Finding(cid, f"dataset {k}", "dataset changed", was.get(k),
                                        now.get(k)))
        metrics = clean(res.metrics)
        if not base["metrics"]:  # nothing to compare is not a pass
            findings.append(Finding(cid, "-", "no baseline", "no metrics"))
        for m in sorted(set(base["metrics"]) | set(metrics)):
            if m not in tolerances:
                unchecked.add(m)
            elif m not in metrics:
                findings.append(Finding(cid, m, "regressed", base["metrics"][m], "absent"))
            elif m not in base["metrics"]:  # a compared metric the baseline lacks
                findings.append(Finding(cid, m, "no baseline", "absent", metrics[m]))
            else:
                f = compare_metric(cid, m, base["metrics"][m], metrics[m], tolerances[m])
                findings += [f] if f else []
                passed += f is None
    return findings, passed, unchecked


def clean(metrics: dict) -> dict:
    """JSON-safe numbers: NaN becomes null (strict JSON has no NaN)."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in metrics.items()}


def dataset_facts(res: Any) -> dict:
    """What identifies the data: the file's sha256, counts, and a generator's parameters."""
    d = res.rows[-1]["dataset"]
    out = {k: d.get(k) for k in ("sha256", "n_ratings", "n_users", "n_items")}
    if d.get("generator"):
        out["generator"] = d["generator"]
    return json.loads(json.dumps(out, sort_keys=True))  # tuples to lists, as when read back


def load_baselines(path: Path) -> dict:
    if not path.is_file():
        raise BaselineError(f"no baselines file {path}: run `kmrec check --update` to create it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        data = {"error": str(e)}
    if not (isinstance(data, dict) and isinstance(data.get("cells"), dict)
            and isinstance(data.get("datasets"), dict)):
        raise BaselineError(f"{path} is not a check baselines file (no cells and datasets); "
                            "run `kmrec check --update` to rewrite it")
    for cid, cell in data["cells"].items():
        _check_cell(path, cid, cell)
    for name, facts in data["datasets"].items():
        if not isinstance(facts, dict):
            raise BaselineError(f"{path}: dataset {name} is {facts!r}, not an object; fix it, "
                                "or delete the file and run `kmrec check --update`")
    return data


def _check_cell(path: Path, cid: str, cell: Any) -> None:
    """A baseline cell is {dataset, metrics: {name: number or null (a stored NaN)}, ...}."""
    fix = "fix it, or delete the file and run `kmrec check --update`"
    if not isinstance(cell, dict):
        raise BaselineError(f"{path}: cell {cid} is {type(cell).__name__}, not an object; {fix}")
    if not isinstance(cell.get("dataset"), str):
        raise BaselineError(f"{path}: cell {cid} has no dataset name; {fix}")
    if not isinstance(cell.get("metrics"), dict):
        raise BaselineError(f"{path}: cell {cid} has no 'metrics' object "
                            f"(found {cell.get('metrics')!r}); {fix}")
    for m, v in cell["metrics"].items():
        if v is None:  # a NaN when the baseline was written (strict JSON has no NaN)
            continue
        if (isinstance(v, bool) or not isinstance(v, (int, float))
                or not math.isfinite(v)):
            raise BaselineError(f"{path}: cell {cid}, metric {m!r} is {v!r}; expected a "
                                f"finite number (null stands for a NaN); {fix}")


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else escape(str(v))


def findings_table(findings: list[Finding]) -> Table:
    t = Table("cell", "metric", "baseline", "now", "delta", "tolerance", "status",
              title="check: changes beyond tolerance")
    colour = {"improved": "green"}
    for f in findings:
        num = isinstance(f.base, (int, float)) and isinstance(f.now, (int, float))
        delta = f"{f.now - f.base:+.3g}" if num else ""
        status = f.status + {"improved": ": consider --update",
                             "no baseline": ": run --update"}.get(f.status, "")
        t.add_row(escape(f.cell), escape(f.metric), _fmt(f.base), _fmt(f.now), delta,
                  escape(f.tol), f"[{colour.get(f.status, 'red')}]{escape(status)}[/]")
    return t


def run_cells(cells: dict[str, Any], results_dir: str | Path, threads: int | None,
              console: Console | None, command: str) -> dict[str, Any]:
    from kmrec_gpu.harness.app import run_grid
    from kmrec_gpu.harness.runner import Harness

    h = Harness(results_dir, force=True, progress=True, threads=threads, command=command,
                out=console)
    out = {cell_id(r.spec): r for r in run_grid(h, list(cells.values()), "check")}
    if h.results_file:
        h.console.print(f"check: rows appended to {h.results_file}")
    return out


def write_baselines(path: Path, old: dict | None, results: dict[str, Any], selected: bool,
                    console: Console) -> None:
    from kmrec_gpu.environment import git_revision
    from kmrec_gpu.results import write_atomic

    rev = git_revision()
    # a filtered update keeps the other cells; a full one is the whole suite, nothing stale
    cells = dict(old["cells"]) if old and selected else {}
    datasets = dict(old["datasets"]) if old and selected else {}
    devices = set()
    for cid, r in results.items():
        devices.add(r.backend["device_name"])
        datasets[r.spec.dataset["name"]] = dataset_facts(r)
        cells[cid] = {"key": r.spec.key, "dataset": r.spec.dataset["name"], "revision": rev,
                      "device": r.backend["device_name"], "metrics": clean(r.metrics)}
    data = {"suite": "check", "revision": rev, "device": ", ".join(sorted(devices)),
            "seed": min(r.spec.seed for r in results.values()),  # one: SETTINGS pins it
            "updated_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "datasets": dict(sorted(datasets.items())), "cells": dict(sorted(cells.items()))}
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n")
    report_update(old, data, console)
    console.print(f"check: baselines written to {path} ({len(cells)} cells, revision {rev})")
    if rev.endswith("-dirty"):
        console.print("[yellow]note[/]: the tree has uncommitted changes; commit and update "
                      "again so the baselines name a revision")


def report_update(old: dict | None, new: dict, console: Console) -> None:
    if not old:
        console.print(f"check: new baselines, {len(new['cells'])} cells")
        return
    t = Table("cell", "metric", "old", "new", "delta", title="check: baselines changed")
    for cid in sorted(set(old["cells"]) | set(new["cells"])):
        a, b = old["cells"].get(cid), new["cells"].get(cid)
        if a is None or b is None:
            t.add_row(escape(cid), "-", "" if a is None else "cell", "" if b is None else "cell",
                      "added" if a is None else "removed")
            continue
        for m in sorted(set(a["metrics"]) | set(b["metrics"])):
            x, y = a["metrics"].get(m), b["metrics"].get(m)
            if x != y:
                num = isinstance(x, (int, float)) and isinstance(y, (int, float))
                t.add_row(escape(cid), escape(m), _fmt(x), _fmt(y), f"{y - x:+.3g}" if num else "")
    if t.row_count:
        console.print(t)
    else:
        console.print("check: no metric changed")


def run_check(*, results_dir: str | Path = "results",
              baselines_path: str | Path = "results/baselines/check.json", update: bool = False,
              threads: int | None = 1, console: Console | None = None,
              overrides: Sequence[str] | Mapping = (), only: Sequence[str] | str = ()) -> int:
    """Run the check suite; 1 on a regression, a failed cell or a baseline cell not run."""
    # a log or pipe reports 80 columns; the table and the cells' lines need more
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    path = Path(baselines_path)
    if update and overrides:
        raise ConfigError("check --update with overrides would store a modified model as "
                          "the baseline")
    cells, tolerances = suite(only=only, overrides=overrides)
    # an update may create the file; a check needs it, and every selected cell in it
    old = None if update and not path.is_file() else load_baselines(path)
    if not update:
        absent = sorted(set(cells) - set(old["cells"]))
        if absent:  # before minutes of fitting, not after
            raise BaselineError(f"{path} has no baseline for {', '.join(absent)}: run "
                                "`kmrec check --update` to add it")
    command = f"kmrec check{' --update' if update else ''} --threads {threads}"
    results = run_cells(cells, results_dir, threads, console, command)
    bad = {k: r for k, r in results.items() if r.status != "ok"}
    if update:
        if bad:
            console.print(findings_table([Finding(k, "-", "failed", now=f"{r.status}: "
                                                  f"{r.reason}") for k, r in bad.items()]))
            console.print("[red]check: baselines not written[/]: every cell must run")
            return 1
        write_baselines(path, old, results, bool(only), console)
        return 0
    # a filtered check answers for the cells its patterns name, run or missing
    base = dict(old, cells={k: v for k, v in old["cells"].items()
                            if not only or _matches(k, only)})
    findings, passed, unchecked = compare(base, results, tolerances)
    if findings:
        console.print(findings_table(findings))
    n_bad = sum(f.status in FAILING for f in findings)
    n_up = sum(f.status == "improved" for f in findings)
    rekeyed = sorted(k for k, r in results.items()
                     if k in base["cells"] and base["cells"][k].get("key") != r.spec.key)
    if rekeyed:  # parameters, timing or evaluation settings differ from the baseline's run
        console.print(f"note: configuration changed since the baseline for {len(rekeyed)} "
                      f"cell(s): {', '.join(rekeyed)}")
    device = {r.backend["device_name"] for r in results.values() if r.backend}
    if old.get("device") and device and device != {old["device"]}:
        console.print(f"note: baselines from {old['device']}, this run on "
                      f"{', '.join(sorted(device))}")
    console.print(f"check: {len(results)} cells, {passed} metrics within tolerance, "
                  f"{n_up} improved, {n_bad} regressed or failed"
                  + (f"; not compared: {', '.join(sorted(unchecked))}" if unchecked else ""))
    console.print("[red]check FAILED[/]" if n_bad else "[green]check passed[/]")
    return 1 if n_bad else 0


def _matches(cid: str, only: Sequence[str] | str) -> bool:
    return any(fnmatch.fnmatch(cid, p) for p in ([only] if isinstance(only, str) else only))
