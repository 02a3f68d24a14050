"""Run cells: load (timed), split, fit, predict or recommend, evaluate; append the rows.

One :class:`Harness` lives for the whole process, so a grid (or Hydra's ``-m`` jobs, which
run in the same process) shares one results file, loads each dataset once and makes each
split once: the peers of a model run on exactly the same split, in the same process.
A cell that fails (no GPU, missing data, out of memory, an error in the model) is recorded
as failed with its reason and the grid goes on; a cell that cannot run here by design (a
CPU-only peer on CUDA, a dense reference over its size limit) is recorded as skipped.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape

from kmrec_gpu.backends import Backend, get_backend
from kmrec_gpu.environment import git_revision
from kmrec_gpu.errors import BackendUnavailable, DatasetNotFound, KmrecError
from kmrec_gpu.harness import evaluate
from kmrec_gpu.harness.memory import PeakMemory
from kmrec_gpu.harness.spec import CellSpec
from kmrec_gpu.models import cold
from kmrec_gpu.ratings import Ratings
from kmrec_gpu.results import ResultWriter, make_row, read_rows
from kmrec_gpu.splits import TTSplit, make_split
from kmrec_gpu.timing import Timing, timed_budget


@dataclass
class CellResult:
    spec: CellSpec
    status: str  # ok | failed | skipped | done (already in results at this revision)
    reason: str | None = None
    rows: list[dict] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, Timing] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, Any] | None = None


# read by an OpenMP runtime or BLAS when it loads: a library first imported during a cell
# (torch by a model that uses it on a NumPy backend, a peer's OpenMP) starts with n threads
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@contextlib.contextmanager
def cpu_threads(n: int | None, *, torch_needed: bool = False) -> Iterator[None]:
    """Pin torch and BLAS to ``n`` threads for the cell (None: leave them alone).

    torch is imported here only when the cell's backend needs it (``torch_needed``) or it
    is already imported: importing it (seconds) for an all-NumPy cell would be start-up
    cost only. Otherwise the thread variables of :data:`THREAD_ENV` hold ``n`` for the
    cell, so that a torch (or other pool) imported during the cell starts with ``n``
    threads; the pools already loaded are limited through threadpoolctl either way.
    """
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    n = int(n)
    torch = sys.modules.get("torch")
    if torch is None and torch_needed:
        import torch
    env_before = None
    if torch is None:
        env_before = {k: os.environ.get(k) for k in THREAD_ENV}
        os.environ.update({k: str(n) for k in THREAD_ENV})
    else:
        before = torch.get_num_threads()
        torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        if env_before is None:
            torch.set_num_threads(before)
        else:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def failure_reason(exc: BaseException) -> str:
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return f"out of memory: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


class Harness:
    def __init__(self, results_dir: str | Path = "results", *, force: bool = False,
                 progress: bool = True, threads: int | None = None,
                 command: str | None = None, out=None) -> None:
        from rich.console import Console

        self.results_dir = Path(results_dir)
        self.force = force
        self.threads = threads
        self.command = command
        # a pipe or CI log reports 80 columns; a cell's line needs more to stay readable
        self.console = out or Console(stderr=True, width=None if sys.stderr.isatty() else 120)
        self.show_progress = progress and self.console.is_terminal
        self._writer: ResultWriter | None = None
        self._data: tuple[tuple, Ratings, dict] | None = None
        self._splits: dict[tuple, tuple[TTSplit, dict]] = {}
        self._done: dict[tuple[str, str], list[dict]] | None = None
        self.results: list[CellResult] = []

    # -- results ---------------------------------------------------------------------------

    @property
    def writer(self) -> ResultWriter:
        if self._writer is None:
            self._writer = ResultWriter(self.results_dir)
        return self._writer

    @property
    def results_file(self) -> Path | None:
        return self._writer.path if self._writer else None

    def _finished(self) -> dict[tuple[str, str], list[dict]]:
        """(cell key, revision) of every completed cell in the results folder, with the rows
        of the run that completed it last (its figures, for the end-of-run table)."""
        if self._done is None:
            runs = self.results_dir / "runs"
            # other runs' files: a bad line there is reported and skipped, so it can neither
            # fail this cell nor stop the run
            rows = read_rows(runs, on_error="warn") if runs.is_dir() else []
            by_run: dict[tuple[str, str, str], list[dict]] = {}
            last: dict[tuple[str, str], str] = {}
            for r in rows:
                h = (r.get("extra") or {}).get("harness")
                if not (isinstance(h, dict) and isinstance(h.get("cell_key"), str)
                        and h.get("role") != "comparison"):
                    continue
                key = (h["cell_key"], r["git_revision"])
                by_run.setdefault((*key, r["run_id"]), []).append(r)
                if r["phase"] == "evaluate" and r["status"] == "ok":
                    last[key] = r["run_id"]
            self._done = {key: by_run[(*key, run)] for key, run in last.items()}
        return self._done

    def already_done(self, spec: CellSpec) -> bool:
        rev = git_revision()
        # an uncommitted tree is not a revision: its code may differ between two runs
        return (not self.force and not rev.endswith("-dirty")
                and (spec.key, rev) in self._finished())

    def write_row(self, spec: CellSpec, be: dict, phase: str, *, dataset: dict, split: dict | None,
             params: dict | None = None, **kw: Any) -> dict:
        extra = {"harness": spec.harness_extra(), **kw.pop("extra", {})}
        if spec.model.get("protocol"):
            # not a held-out figure (as published, a leak, a test-selected setting): the
            # tag keeps it out of every held-out line of the report
            extra["protocol"] = spec.model["protocol"]
        if self.threads is not None:
            extra["threads"] = self.threads
        row = make_row(run_id=self.writer.run_id, dataset=dataset, split=split, seed=spec.seed,
                       model={"name": spec.model["name"],
                              "params": params if params is not None
                              else spec.model["estimator"]},
                       backend=be, phase=phase, command=self.command, extra=extra, **kw)
        self.writer.append(row)
        return row

    # -- data ------------------------------------------------------------------------------

    def dataset(self, spec: CellSpec, be: dict) -> tuple[Ratings, dict]:
        d = spec.dataset
        key = (d["name"], d.get("path"), spec.seed if d.get("kind") == "synthetic" else None)
        if self._data is None or self._data[0] != key:
            self._data, self._splits = None, {}  # free the previous data before loading
            t_warm = time.perf_counter()
            if d.get("kind") in ("movielens", "csv"):
                from kernels.cpu_csv import warm

                warm()  # the load is timed once: its parser's JIT set-up is a warm-up
            warm_s = time.perf_counter() - t_warm
            with PeakMemory() as pm:
                t0 = time.perf_counter()
                r = load_dataset(d, spec.seed, progress=self.show_progress)
                load_s = time.perf_counter() - t0
            desc = {"name": d["name"] if d.get("target") else r.name,
                    "sha256": r.source.sha256 if r.source else None,
                    "n_ratings": len(r), "source": r.source.path if r.source else None,
                    "n_users": r.n_rated_users, "n_items": r.n_rated_items,
                    **({"generator": r.meta} if r.source is None else {}),
                    **({"target": d["target"]} if d.get("target") else {})}
            self.write_row(spec, be, "load", dataset=desc, split=None, params={},
                      wall_time={"median_s": load_s, "repeats": 1, "warmup": 0,
                                 "warmup_s": warm_s},
                      peak_memory=pm.as_dict(),
                      throughput={"value": len(r) / load_s, "unit": "ratings/s"})
            self._data, self._splits = (key, r, desc), {}
        return self._data[1], self._data[2]

    def split(self, spec: CellSpec, r: Ratings, be: dict, desc: dict) -> tuple[TTSplit, dict]:
        key = (spec.split["method"], repr(sorted(spec.split["params"].items())), spec.seed)
        if key not in self._splits:
            t0 = time.perf_counter()
            tt = make_cell_split(r, spec.split, spec.seed)
            split_s = time.perf_counter() - t0
            ssum = tt.summary()
            self.write_row(spec, be, "split", dataset=desc, split=ssum, params={},
                      wall_time={"median_s": split_s, "repeats": 1, "warmup": 0})
            self._splits[key] = (tt, ssum)
        return self._splits[key]

    # -- one cell --------------------------------------------------------------------------

    def run(self, spec: CellSpec, *, keep_artifacts: bool = False) -> CellResult:
        res = self._run(spec, keep_artifacts)
        self.results.append(res)
        return res

    def _skip_or_fail(self, spec: CellSpec, status: str, reason: str, be: dict,
                      dataset: dict | None = None, split: dict | None = None) -> CellResult:
        dataset = dataset or {"name": spec.dataset["name"], "sha256": None}
        row = self.write_row(spec, be, "end-to-end", dataset=dataset, split=split, status=status,
                        reason=reason)
        word = "[yellow]skipped" if status == "skipped" else "[red]failed"
        self.console.print(f"{word}[/] {escape(spec.label)}: {escape(reason)}")
        return CellResult(spec, status, reason, rows=[row], backend=be)

    def _run(self, spec: CellSpec, keep: bool) -> CellResult:
        m, bcfg = spec.model, spec.backend
        requested = {"name": bcfg["name"], "library": bcfg["library"] or "auto",
                     "device_name": "not resolved"}
        if bcfg["name"] != "auto" and bcfg["name"] not in m["backends"]:
            return self._skip_or_fail(
                spec, "skipped", f"{m['name']} runs on {m['backends']}, not on {bcfg['name']}",
                requested)
        try:
            backend = get_backend(bcfg["name"], library=bcfg["library"])
        except BackendUnavailable as e:
            return self._skip_or_fail(spec, "failed", f"no usable backend: {e}", requested)
        be = backend.describe()
        if backend.name not in m["backends"]:
            return self._skip_or_fail(
                spec, "skipped", f"{m['name']} runs on {m['backends']}, not on {backend.name}",
                be)
        if (m.get("backend_arg") in (None, "null", "backend_name") and backend.name == "cpu"
                and backend.library != "numpy"):
            # it would run exactly as under backend=cpu: a second, mislabelled cell
            return self._skip_or_fail(
                spec, "skipped", f"{m['name']} takes no array namespace; on the CPU it runs "
                "as backend=cpu (NumPy)", be)
        if spec.kernels == "on" and not takes_kernels(m["estimator"]):
            return self._skip_or_fail(spec, "skipped", f"{m['name']} has no fused kernel "
                                      "(kernels=on runs only models with a kernels switch)", be)
        if self.already_done(spec):
            self.console.print(f"[dim]done[/] {escape(spec.label)}: a result for this "
                               "configuration and revision exists (force=true runs it again)")
            return stored_result(spec, self._finished()[(spec.key, git_revision())], be)
        try:
            r, desc = self.dataset(spec, be)
        except (DatasetNotFound, KmrecError, OSError) as e:
            return self._skip_or_fail(spec, "failed", f"dataset: {failure_reason(e)}", be)
        limit = over_limit(m.get("limits") or {}, r)
        if limit:
            return self._skip_or_fail(spec, "skipped", limit, be, desc)
        tt, ssum = self.split(spec, r, be, desc)
        try:
            with cpu_threads(self.threads, torch_needed=backend.library == "torch"):
                return self._measure(spec, backend, be, tt, desc, ssum, keep)
        except BackendUnavailable as e:  # an optional peer library (Surprise, cuML) is absent
            return self._skip_or_fail(spec, "skipped", str(e), be, desc, ssum)
        except Exception as e:  # the grid goes on; the row says why this cell did not
            if self.console.is_terminal:
                traceback.print_exc(file=sys.stderr)
            return self._skip_or_fail(spec, "failed", failure_reason(e), be, desc, ssum)

    def _measure(self, spec: CellSpec, backend: Backend, be: dict, tt: TTSplit, desc: dict,
                 ssum: dict, keep: bool) -> CellResult:
        from hydra.utils import instantiate

        m, task, tcfg = spec.model, spec.model["task"], spec.timing
        kwargs = backend_kwargs(m.get("backend_arg"), backend)
        if takes_kernels(m["estimator"]):
            kwargs["kernels"] = spec.kernels

        def build_and_fit():
            # partial first: instantiate would turn a Backend (a dataclass) into a config
            # plain dicts and lists for nested parameters (a row records them as they are)
            model = instantiate(m["estimator"], _partial_=True, _convert_="all")(**kwargs)
            return evaluate.fit(task, cold.wrap(model, m), tt)

        timing = dict(warmup=int(tcfg["warmup"]), repeats=int(tcfg["repeats"]),
                      budget_s=tcfg.get("budget_s"), sync=backend.synchronize)
        with self._spinner(f"fit {escape(spec.label)}"), PeakMemory(backend) as pm_fit:
            model, t_fit = timed_budget(build_and_fit, **timing)
        params = model.get_params() if hasattr(model, "get_params") else m["estimator"]
        params = {k: v if isinstance(v, (int, float, str, bool, type(None), list, dict))
                  else v.label if isinstance(v, Backend)
                  else repr(v) for k, v in params.items()}
        common = dict(dataset=desc, split=ssum, params=params)
        facts = evaluate.model_facts(model)
        fit_phase = "end-to-end" if task in ("pipeline", "probe") else "fit"
        rows = [self.write_row(spec, be, fit_phase, **common, wall_time=t_fit.as_dict(),
                          throughput={"value": ssum["n_train"] / t_fit.median_s,
                                      "unit": "ratings/s"},
                          peak_memory=pm_fit.as_dict(), extra={"facts": facts})]
        timings = {"fit": t_fit}
        k = int(spec.eval["k"])
        if task == "probe":
            out = None
        elif task == "pipeline":
            out = model.predictions_
        else:
            with self._spinner(f"predict {escape(spec.label)}"), PeakMemory(backend) as pm_pred:
                out, t_pred = timed_budget(lambda: evaluate.predict(task, model, tt, k),
                                           **timing)
            n_out = len(out)
            unit = "predictions/s" if task == "rating" else "users/s"
            rows.append(self.write_row(spec, be, "predict" if task == "rating" else "recommend",
                                  **common, wall_time=t_pred.as_dict(),
                                  throughput={"value": n_out / t_pred.median_s, "unit": unit},
                                  peak_memory=pm_pred.as_dict()))
            timings["predict"] = t_pred
        arts = evaluate.artifacts(model)
        if task == "probe":
            metrics, per_user = dict(model.metrics_), None
            extra = {"facts": facts, "details": model.details_}
        else:
            metrics, per_user = evaluate.score(task, out, tt, seed=spec.seed, name=m["name"],
                                               n_boot=int(spec.eval["n_boot"]), k=k,
                                               threshold=float(spec.eval["threshold"]))
            extra = {"facts": facts, **({"per_user": per_user} if per_user else {})}
            if isinstance(model, cold.ColdFallback):
                metrics["n_fallback"] = model.n_fallback_
        if "inertia" in arts:
            metrics["inertia"] = arts["inertia"]
        rows.append(self.write_row(spec, be, "evaluate", **common, metrics=metrics,
                                   extra=extra))
        self._finished()[(spec.key, rows[-1]["git_revision"])] = rows
        self.console.print(f"[green]ok[/] {escape(spec.label)}: "
                           + escape(summary_line(task, metrics, t_fit)))
        return CellResult(spec, "ok", rows=rows, metrics=metrics, timings=timings,
                          artifacts=arts if keep else {}, backend=be)

    @contextlib.contextmanager
    def _spinner(self, what: str) -> Iterator[None]:
        if not self.show_progress:
            yield
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=self.console, transient=True) as p:
            p.add_task(what, total=None)
            yield


def stored_result(spec: CellSpec, rows: list[dict], be: dict) -> CellResult:
    """A cell already run at this revision, with the figures its stored rows hold."""
    metrics: dict[str, float] = {}
    timings: dict[str, Timing] = {}
    for r in rows:
        w = r.get("wall_time") or {}
        if r["phase"] == "evaluate":
            metrics = dict(r.get("metrics") or {})
        elif r["phase"] in ("fit", "end-to-end", "predict", "recommend") and w.get("times_s"):
            timings["fit" if r["phase"] in ("fit", "end-to-end") else "predict"] = Timing(
                tuple(w["times_s"]), int(w.get("warmup", 0)))
    return CellResult(spec, "done", rows=rows, metrics=metrics, timings=timings, backend=be)


def summary_line(task: str, metrics: dict, t_fit: Timing) -> str:
    head = (f"RMSE {metrics['rmse']:.4f}" if "rmse" in metrics else
            ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()
                      if k.startswith(("ndcg@", "precision@")) and "_ci_" not in k)
            or ", ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:4]))
    return f"{head}; fit median {t_fit.median_s:.3g} s ({len(t_fit.times_s)} timed)"


def backend_kwargs(arg: str | None, backend: Backend) -> dict[str, Any]:
    """How a model is told where to run: a Backend, a torch device, or a backend name."""
    if arg in (None, "null"):
        return {}
    if arg == "backend":
        return {"backend": backend}
    if arg == "device":
        return {"device": str(backend.device) if backend.library == "torch"
                else ("cuda" if backend.name == "cuda" else "cpu")}
    if arg == "backend_name":
        return {"backend": backend.name}
    raise ValueError(f"backend_arg {arg!r}; expected backend, device, backend_name or null")


def takes_kernels(estimator: dict) -> bool:
    """Whether the estimator has a ``kernels`` switch (fused kernels auto, on or off)."""
    import inspect

    from hydra.utils import get_class

    return "kernels" in inspect.signature(get_class(estimator["_target_"])).parameters


def over_limit(limits: dict, r: Ratings) -> str | None:
    """Why a model cannot run on ``r`` on this machine, or None."""
    why = limits.get("reason") or "over the model's size limit"
    if limits.get("max_ratings") is not None and len(r) > limits["max_ratings"]:
        return f"{len(r):,} ratings > {limits['max_ratings']:,} ({why})"
    if limits.get("max_items") is not None and r.n_rated_items > limits["max_items"]:
        return f"{r.n_rated_items:,} rated items > {limits['max_items']:,} ({why})"
    cells = r.n_users * r.n_items
    if limits.get("max_dense_cells") is not None and cells > limits["max_dense_cells"]:
        return (f"{r.n_users:,} x {r.n_items:,} = {cells:,} dense cells > "
                f"{limits['max_dense_cells']:,} ({why})")
    return None


def load_dataset(d: dict, seed: int, *, progress: bool = False) -> Ratings:
    """The ratings a dataset config names: the registry entry ``registry`` (default: its
    name), with the training target ``target`` where one is given (``adjusted``: seed 000's
    tag-adjusted rating)."""
    from kmrec_gpu.data import load

    if d.get("kind") == "csv":
        from kmrec_gpu.data.user_file import load_user_csv

        r = load_user_csv(d)
    else:
        r = load(d.get("registry") or d["name"], d.get("path"), seed=seed, progress=progress)
    target = d.get("target")
    if target in (None, "rating"):
        return r
    if target == "adjusted":
        from kmrec_gpu.neural.adjusted import adjusted_target

        return adjusted_target(r)
    raise KmrecError(f"dataset {d['name']}: target {target!r}; expected rating or adjusted")


def make_cell_split(r: Ratings, split: dict, seed: int) -> TTSplit:
    """The split a config names, including the two documents' own fixed splits, and
    ``all`` (every rating in train, none in test: the protocols that are no held-out
    evaluation, such as a cluster count on the whole file)."""
    method, params = split["method"], dict(split.get("params") or {})
    if method == "all":
        return TTSplit(r, r.subset(np.zeros(len(r), dtype=bool)), "all", {})
    if method == "seed000_published":
        from kmrec_gpu.neural.seed000 import published_split

        return published_split(r, **params)
    if method == "ml100k_fold":
        from kmrec_gpu.data.folds import official_fold

        return official_fold(r, **params)
    if method == "seed004_published":
        from kmrec_gpu.models.seed004_rf import published_split

        return published_split(r, **params)
    return make_split(r, method, seed=seed, **params)
