"""Factorisation benchmark (issue 4): fit time of the scalable truncated SVD, NMF and
iterative SVD against their dense references and scikit-learn, and their scaling in nnz
with peak memory. Appends JSON lines.

    python bench/bench_factor.py                   # both parts (~40 min on 2 shared cores)
    python bench/bench_factor.py --parts fit       # one part: fit, scaling
    python bench/bench_factor.py --quick           # smoke run of both parts (< 1 min)

fit: on ml-100k and ml-latest-small (holdout 10%, seed 0) every solver of every model
(dense reference, scalable on NumPy and PyTorch-CPU, scikit-learn where it has a peer) is
fitted in rounds, interleaved (A B C D A B C D ...), so a slow spell from other processes
on the machine hits every peer alike and the ratios hold even when absolute times wander:
1 warm-up round, then --repeats timed rounds; medians, min-max and every time recorded,
plus the held-out RMSE/MAE of each fit (speed next to accuracy) and how far its
predictions are from the dense reference's. array-api-strict runs the scalable body once
per model as a correctness check (its time is recorded but marked: not a timing peer).

scaling: each scalable model on ml-100k, synthetic-1m, synthetic-10m and synthetic-25m,
fitted on *all* ratings (no holdout: this part measures cost against nnz; accuracy is the
fit part's), with fixed iteration counts: NMF max_iter=20, tol=0 from a random start (the
nndsvda start is an SVD whose power-iteration count varies), iterative SVD max_iter=5,
tol=0. Truncated SVD and each iterative-SVD step run the scalable solver (Lanczos steps
since the Lanczos solver; block power iterations in rows from before) to the default
tolerance; their counts are recorded as ``power_iterations`` (the benchmark wraps
``scalable_svd`` to count them) and time per iteration is reported beside fit time. Each
cell runs in a fresh child process: the peak resident set it reports is the fit window's
alone (the kernel's high-water mark is reset through /proc/self/clear_refs after the data
are loaded and the libraries warmed up on a tiny input), compared with the dense matrix
(users x movies x 8 bytes) the dense solvers would need.

BLAS/OpenMP/torch threads default to 1 (--threads): on this 2-core machine shared with
other jobs, 2-thread OpenBLAS spin-waits made a 943 x 1682 LAPACK SVD 7-10x slower than 1
thread and scattered every timing; one thread per process measures the algorithms, not
the contention. Every row records the thread count.

Rows are schema-checked result rows (kmrec_gpu.results.make_row) appended to
results/bench/factor.jsonl (append-only); results/bench/factor.md is a rendered view of
this run and results/bench/factor_scaling.png the scaling plot (both replaced atomically).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import math
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from kmrec_gpu.results import json_safe

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "results" / "bench"
DEFAULT_OUT = OUT_DIR / "factor.jsonl"
DEFAULT_MD = OUT_DIR / "factor.md"
DEFAULT_PNG = OUT_DIR / "factor_scaling.png"
PARTS = ("fit", "scaling")
FIT_DATASETS = ("ml-100k", "ml-latest-small")
SCALING_DATASETS = ("ml-100k", "synthetic-1m", "synthetic-10m", "synthetic-25m")
ALGOS = ("tsvd", "nmf", "isvd")
ALGO_NAMES = {"tsvd": "TruncatedSVD(16)", "nmf": "NMF(15)", "isvd": "IterativeSVD(16)"}
LIB_LABEL = {"numpy": "numpy", "torch": "torch-cpu", "array_api_strict": "array-api-strict"}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS")
GiB = 2.0**30
T0 = time.time()  # a child takes its parent's, so the progress clock runs on


def log(msg: str) -> None:
    el = time.time() - T0
    print(f"[{int(el // 60):3d}:{el % 60:04.1f}] {msg}", file=sys.stderr, flush=True)


# -- threads, memory, environment ------------------------------------------------------------


def set_threads(n: int) -> dict[str, Any]:
    """Limit BLAS/OpenMP (threadpoolctl) and torch to ``n`` threads; 0 leaves the defaults."""
    if n > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(n)
    return thread_info()


def thread_info() -> dict[str, Any]:
    from threadpoolctl import threadpool_info

    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    return {"requested": None, "torch": torch_threads,
            "pools": sorted({(i.get("internal_api"), i.get("num_threads"))
                             for i in threadpool_info()})}


def _status_bytes(field: str) -> int | None:
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None


def reset_peak() -> bool:
    """Reset this process's resident high-water mark (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def environment(seed: int, threads: int) -> dict[str, Any]:
    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.environment import git_revision, library_versions

    auto = get_backend("auto")
    ti = thread_info()
    ti["requested"] = threads
    return {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "seed": seed,
        "device": {"kind": auto.name, "name": auto.device_name,
                   "cpu": get_backend("cpu").describe()["device_name"],
                   "machine": platform.machine(), "cpu_count": os.cpu_count(),
                   "affinity": len(os.sched_getaffinity(0))
                   if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                   "auto_backend": auto.describe(), "threads": ti,
                   "loadavg_at_start": os.getloadavg(),
                   "mem_total_bytes": _meminfo("MemTotal")},
        "git": git_revision(),
        "versions": dict(library_versions()),
    }


def _meminfo(field: str) -> int | None:
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) * 1024 if m else None


def device_label(env: dict[str, Any]) -> str:
    d = env["device"]
    thr = d["threads"]["requested"]
    return (f"{d['kind'].upper()}: {d['name']} ({d['affinity']} cores, "
            f"{'library-default' if not thr else thr} thread{'s' if thr != 1 else ''} "
            f"per process), git {env['git'][:12]}")


# -- result rows ----------------------------------------------------------------------------


class Recorder:
    """Builds schema-checked rows (make_row) and appends each to the JSONL at once
    (kmrec_gpu.results.append_row: the earlier lines kept, the file replaced through a
    temporary file and a rename, so no reader sees half a line)."""

    def __init__(self, out: Path, env: dict[str, Any], bench: str = "factor") -> None:
        from kmrec_gpu.results import new_run_id

        self.out, self.env, self.bench = out, env, bench
        self.run_id = new_run_id()
        self.rows: list[dict[str, Any]] = []

    def write(self, *, dataset: dict, split: dict | None, model: dict, backend: dict,
              metrics: dict | None, wall_time: dict | None, status: str = "ok",
              reason: str | None = None, peak_memory: dict | None = None,
              throughput: dict | None = None, extra: dict) -> dict[str, Any]:
        from kmrec_gpu.results import append_row, make_row

        opt: dict[str, Any] = {"command": self.env["command"],
                               "extra": json_safe({"bench": self.bench, **extra,
                                                "device": self.env["device"],
                                                "loadavg": os.getloadavg()})}
        if reason is not None:
            opt["reason"] = reason
        if peak_memory is not None:
            opt["peak_memory"] = json_safe(peak_memory)
        if throughput is not None:
            opt["throughput"] = json_safe(throughput)
        row = make_row(run_id=self.run_id, dataset=json_safe(dataset), split=json_safe(split),
                       seed=self.env["seed"], model=json_safe(model), backend=json_safe(backend),
                       phase="fit", metrics={k: v for k, v in (metrics or {}).items()
                                             if v is not None and math.isfinite(v)},
                       wall_time=json_safe(wall_time), status=status, **opt)
        append_row(self.out, row)
        self.rows.append(row)
        return row


def dataset_info(r: Any, name: str) -> dict[str, Any]:
    return {"name": name, "sha256": r.source.sha256 if r.source else None,
            "n_ratings": len(r), "n_users": int(r.n_rated_users),
            "n_items": int(r.n_rated_items)}


def load_ratings(name: str, seed: int) -> Any:
    from kmrec_gpu.data import load

    return load(name, seed=seed) if name.startswith("synthetic") else load(name)


# -- models and the power-iteration counter -----------------------------------------------------


POWER: list[int] = []  # n_iter of each scalable_svd call since the last reset
_PATCHED = False


def count_power_iterations() -> None:
    """Wrap ``scalable_svd`` where the models call it, so each fit's solver iterations
    (Lanczos steps, or block power iterations where ``oversample`` is set) are known (the
    models record only the last SVD's, or none). Benchmark-side only."""
    global _PATCHED
    if _PATCHED:
        return
    import kmrec_gpu.factor.impute as impute
    import kmrec_gpu.factor.models as models

    original = models.scalable_svd

    def counted(*a: Any, **kw: Any) -> Any:
        res = original(*a, **kw)
        POWER.append(int(res.n_iter))
        return res

    models.scalable_svd = counted
    impute.scalable_svd = counted
    _PATCHED = True


def make_model(algo: str, solver: str, library: str | None, backend: str,
               cfg: dict[str, Any]) -> Any:
    from kmrec_gpu.factor import IterativeSVDModel, NMFModel, TruncatedSVDModel

    kw: dict[str, Any] = {"solver": solver}
    if solver == "scalable":
        kw.update(backend=backend, library=library)
    if algo == "tsvd":
        return TruncatedSVDModel(16, **kw)
    if algo == "nmf":
        return NMFModel(15, max_iter=cfg["nmf_max_iter"], tol=cfg["nmf_tol"],
                        init=cfg["nmf_init"], **kw)
    return IterativeSVDModel(16, max_iter=cfg["isvd_max_iter"], tol=0.0, **kw)


def model_params(m: Any) -> dict[str, Any]:
    return {k: (v if isinstance(v, (str, int, float, bool, type(None))) else str(v))
            for k, v in m.get_params().items()}


def fit_once(m: Any, train: Any, sync: Callable[[], None]) -> tuple[float, list[int]]:
    from kmrec_gpu.timing import timed

    POWER.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning at a fixed max_iter
        _, t = timed(lambda: m.fit(train), repeats=1, warmup=0, sync=sync)
    return t.times_s[0], list(POWER)


# -- part 1: fit time against the dense references and scikit-learn ----------------------------


def fit_peers(algo: str) -> list[tuple[str, str, str | None]]:
    """(peer label, solver, library) in the order each round runs them."""
    out = [("dense", "dense", None), ("scalable numpy", "scalable", "numpy"),
           ("scalable torch-cpu", "scalable", "torch")]
    if algo != "isvd":
        out.append(("sklearn", "sklearn", None))
    return out


def part_fit(rec: Recorder, args: argparse.Namespace) -> list[dict[str, Any]]:
    import numpy as np

    from kmrec_gpu.backends import BackendUnavailable, get_backend
    from kmrec_gpu.metrics import rating_metrics
    from kmrec_gpu.splits import holdout
    from kmrec_gpu.timing import Timing

    count_power_iterations()
    cfg = {"nmf_max_iter": args.fit_nmf_max_iter, "nmf_tol": args.fit_nmf_tol,
           "nmf_init": "nndsvda", "isvd_max_iter": args.fit_isvd_iter}
    rows = []
    datasets = args.fit_datasets or (["ml-100k"] if args.quick else list(FIT_DATASETS))
    rounds = args.fit_warmup + args.repeats
    for name in datasets:
        r = load_ratings(name, args.seed)
        split = holdout(r, 0.1, seed=args.seed)
        train, test = split.train, split.test
        ds = dataset_info(r, name)
        sp_info = {"method": split.method, "params": split.params, "n_train": len(train),
                   "n_test": len(test)}
        peers = [(algo, *p) for algo in args.algos for p in fit_peers(algo)]
        backends: dict[str | None, Any] = {}
        for _, _, solver, lib in peers:
            key = lib if solver == "scalable" else None
            if key not in backends:
                try:
                    backends[key] = (get_backend(args.backend, library=lib) if key
                                     else get_backend("cpu"))
                except BackendUnavailable as e:
                    backends[key] = e
        times: dict[tuple, list[float]] = {p: [] for p in peers}
        warm: dict[tuple, list[float]] = {p: [] for p in peers}
        power: dict[tuple, list[int]] = {}
        last: dict[tuple, Any] = {}
        log(f"fit {name}: {len(train):,} train / {len(test):,} test ratings; "
            f"{len(peers)} peers x ({args.fit_warmup} warm-up + {args.repeats}) rounds")
        for rnd in range(rounds):
            for p in peers:
                algo, label, solver, lib = p
                be = backends[lib if solver == "scalable" else None]
                if isinstance(be, Exception):
                    continue
                m = make_model(algo, solver, lib, args.backend, cfg)
                dt, pw = fit_once(m, train, be.synchronize)
                (warm if rnd < args.fit_warmup else times)[p].append(dt)
                power[p], last[p] = pw, m
                log(f"  {name} round {rnd + 1}/{rounds}"
                    f"{' (warm-up)' if rnd < args.fit_warmup else ''}: "
                    f"{ALGO_NAMES[algo]} {label}: {dt:.2f} s (n_iter {m.n_iter_}"
                    f"{', power ' + str(sum(pw)) if pw else ''})")
        # scores, ratios, rows
        for algo in args.algos:
            ps = [p for p in peers if p[0] == algo]
            dense = next(p for p in ps if p[2] == "dense")
            skl = next((p for p in ps if p[2] == "sklearn"), None)
            ref_pred = last[dense].predict(test) if dense in last else None
            for p in ps:
                _, label, solver, lib = p
                be = backends[lib if solver == "scalable" else None]
                model = {"name": ALGO_NAMES[algo], "params": {"algo": algo}}
                if isinstance(be, Exception):
                    rows.append(rec.write(dataset=ds, split=sp_info, model=model,
                                          backend={"name": args.backend, "library": lib,
                                                   "device_name": None},
                                          metrics=None, wall_time=None, status="skipped",
                                          reason=str(be), extra={"part": "fit", "peer": label,
                                                                 "solver": solver}))
                    continue
                m = last[p]
                pred = m.predict(test)
                met = rating_metrics(test.ratings, pred, scale=test.scale)
                t = Timing(tuple(times[p]), args.fit_warmup)
                med = t.median_s

                def ratio(q, med=med):
                    return (med / statistics.median(times[q])
                            if q is not None and times[q] else None)

                def per_round(q, p=p):
                    return ([a / b for a, b in zip(times[p], times[q])]
                            if q is not None else None)

                model["params"] = model_params(m)
                extra = {
                    "part": "fit", "algo": algo, "peer": label, "solver": solver,
                    "library": lib or ("numpy" if solver == "dense" else "sklearn"),
                    "timing_peer": True, "warmup_times_s": warm[p],
                    "n_iter": int(m.n_iter_), "power_iterations": power[p],
                    "power_iterations_total": sum(power[p]),
                    "ratio_to_dense": ratio(dense), "ratio_to_dense_per_round": per_round(dense),
                    "ratio_to_sklearn": ratio(skl), "ratio_to_sklearn_per_round": per_round(skl),
                    "max_abs_pred_diff_vs_dense": (float(np.max(np.abs(pred - ref_pred)))
                                                   if ref_pred is not None else None),
                    "singular_values_top3": (np.asarray(m.singular_values_)[:3].tolist()
                                             if hasattr(m, "singular_values_") else None),
                    "threads": args.threads,
                }
                rows.append(rec.write(dataset=ds, split=sp_info, model=model,
                                      backend=be.describe(), metrics=met,
                                      wall_time=t.as_dict(), extra=extra))
            if args.strict:
                rows.append(strict_check(rec, algo, cfg, args, train, test, ds, sp_info,
                                         ref_pred))
        del r, split, train, test, last
    return rows


def strict_check(rec: Recorder, algo: str, cfg: dict, args: argparse.Namespace, train: Any,
                 test: Any, ds: dict, sp_info: dict, ref_pred: Any) -> dict[str, Any]:
    """One fit through array-api-strict: the same body runs; its time is not a peer's."""
    import numpy as np

    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.metrics import rating_metrics
    from kmrec_gpu.timing import Timing

    be = get_backend("cpu", library="array_api_strict")
    m = make_model(algo, "scalable", "array_api_strict", "cpu", cfg)
    try:
        dt, pw = fit_once(m, train, be.synchronize)
    except Exception as e:  # report, never hide
        return rec.write(dataset=ds, split=sp_info,
                         model={"name": ALGO_NAMES[algo], "params": model_params(m)},
                         backend=be.describe(), metrics=None, wall_time=None,
                         status="failed", reason=f"{type(e).__name__}: {e}",
                         extra={"part": "fit", "algo": algo,
                                "peer": "scalable array-api-strict", "timing_peer": False})
    pred = m.predict(test)
    log(f"  strict check {ALGO_NAMES[algo]}: {dt:.2f} s (correctness only), "
        f"max |pred - dense| {float(np.max(np.abs(pred - ref_pred))):.2e}")
    return rec.write(
        dataset=ds, split=sp_info, model={"name": ALGO_NAMES[algo], "params": model_params(m)},
        backend=be.describe(), metrics=rating_metrics(test.ratings, pred, scale=test.scale),
        wall_time=Timing((dt,), 0).as_dict(),
        extra={"part": "fit", "algo": algo, "peer": "scalable array-api-strict",
               "solver": "scalable", "library": "array_api_strict", "timing_peer": False,
               "note": "correctness only: one unwarmed fit, not a timing peer",
               "n_iter": int(m.n_iter_), "power_iterations": pw,
               "max_abs_pred_diff_vs_dense": float(np.max(np.abs(pred - ref_pred))),
               "threads": args.threads})


# -- part 2: scaling, one child process per cell ---------------------------------------------------


SCALING_CFG = {"nmf_max_iter": 20, "nmf_tol": 0.0, "nmf_init": "random", "isvd_max_iter": 5}


def cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one scaling cell in this (fresh) process; returns its measurements."""
    import resource

    import numpy as np

    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.factor import fill_matrix
    from kmrec_gpu.timing import timed

    global T0
    T0 = spec.get("t0", T0)
    set_threads(spec["threads"])
    count_power_iterations()
    be = get_backend(spec["backend"], library=spec["library"])
    set_threads(spec["threads"])  # again: the backend may have imported torch
    cfg = {**SCALING_CFG, **spec["cfg"]}
    algo = spec["algo"]
    log(f"    cell {spec['dataset']} {algo} {spec['library']}: loading")
    r, t_load = timed(lambda: load_ratings(spec["dataset"], spec["seed"]), repeats=1,
                      warmup=0)
    load_s = t_load.times_s[0]
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    # warm-up on a tiny input: imports, first touches of each library, outside the clock
    small = load_ratings("synthetic-small", spec["seed"])
    fit_once(make_model(algo, "scalable", spec["library"], spec["backend"], cfg), small,
             be.synchronize)

    # fixed setup cost (fill + moving the sparse residual to the backend), for per-iteration
    def setup() -> tuple[int, int]:
        filled = fill_matrix(r)
        be.sparse.from_scipy(filled.residual())
        return filled.shape

    (rows_, cols_), t_setup = timed(setup, repeats=1, warmup=0, sync=be.synchronize)
    setup_s = t_setup.times_s[0]
    reset_ok = reset_peak()
    baseline = _status_bytes("VmRSS")
    times, powers, n_iters, m = [], [], [], None
    for i in range(spec["repeats"]):
        m = make_model(algo, "scalable", spec["library"], spec["backend"], cfg)
        dt, pw = fit_once(m, r, be.synchronize)
        times.append(dt)
        powers.append(pw)
        n_iters.append(int(m.n_iter_))
        log(f"    cell {spec['dataset']} {algo} {spec['library']}: fit {i + 1}/"
            f"{spec['repeats']} {dt:.2f} s (n_iter {m.n_iter_}"
            f"{', power iterations ' + str(pw) if pw else ''})")
    peak = _status_bytes("VmHWM") if reset_ok else None
    return {"times_s": times, "power_iterations": powers, "n_iter": n_iters,
            "setup_s": setup_s, "load_s": load_s, "shape": [rows_, cols_], "nnz": len(r),
            "dense_bytes_f64": rows_ * cols_ * 8, "baseline_rss_bytes": baseline,
            "peak_fit_rss_bytes": peak, "peak_reset": reset_ok,
            "peak_load_rss_bytes": load_peak,
            "peak_rss_bytes_lifetime_since_reset": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss * 1024,
            "singular_values_top3": (np.asarray(m.singular_values_)[:3].tolist()
                                     if hasattr(m, "singular_values_") else None),
            "backend": be.describe(), "params": model_params(m),
            "dataset": dataset_info(r, spec["dataset"]), "loadavg": os.getloadavg()}


def run_cell(spec: dict[str, Any], timeout: float) -> tuple[dict | None, str | None]:
    """Spawn a child for ``spec``; echo its progress; (result, None) or (None, reason)."""
    env = dict(os.environ)
    if spec["threads"] > 0:
        env.update({v: str(spec["threads"]) for v in THREAD_VARS})
    cmd = [sys.executable, str(Path(__file__).resolve()), "--cell", json.dumps(spec)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=ROOT)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    tail: collections.deque[str] = collections.deque(maxlen=15)
    result = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("CELL-RESULT "):
                result = json.loads(line[len("CELL-RESULT "):])
            else:
                tail.append(line.rstrip())
                print(line, end="", file=sys.stderr, flush=True)
        rc = proc.wait()
    finally:
        timed_out = not timer.is_alive() and proc.returncode not in (0, None)
        timer.cancel()
    if rc == 0 and result is not None:
        return result, None
    if timed_out:
        return None, f"timed out after {timeout:.0f} s (--cell-timeout) and was killed"
    why = f"child exited with {rc}"
    if rc in (-9, 137):
        why += " (SIGKILL: most likely the kernel's out-of-memory killer)"
    return None, why + "; last output: " + " | ".join(list(tail)[-5:])


def part_scaling(rec: Recorder, args: argparse.Namespace) -> list[dict[str, Any]]:
    from kmrec_gpu.backends import BackendUnavailable, get_backend
    from kmrec_gpu.timing import Timing, timed

    rows = []
    datasets = args.scaling_datasets or (["synthetic-small", "ml-100k"] if args.quick
                                         else list(SCALING_DATASETS))
    libraries = args.scaling_libraries or (["numpy"] if args.quick else ["numpy", "torch"])
    cfg = dict(SCALING_CFG)
    cfg["isvd_max_iter"] = args.scaling_isvd_iter
    cfg["nmf_max_iter"] = args.scaling_nmf_iter
    cells = [(d, a, lib) for d in datasets for a in args.algos for lib in libraries]
    # every backend: CUDA where usable (with each CUDA library), else a skipped row saying why
    cuda = None
    try:
        cuda = get_backend("cuda")
    except BackendUnavailable as e:
        cuda_reason = str(e)
    if cuda is not None and args.backend != "cpu":
        cells += [(d, a, lib) for d in datasets for a in args.algos for lib in ("cupy", "torch")
                  if lib != "torch" or "torch" in libraries]
    else:
        rows.append(rec.write(dataset={"name": ",".join(datasets), "sha256": None},
                              split=None, model={"name": "all scalable", "params": {}},
                              backend={"name": "cuda", "library": None, "device_name": None},
                              metrics=None, wall_time=None, status="skipped",
                              reason=f"no CUDA backend on this machine: {cuda_reason}",
                              extra={"part": "scaling"}))
    log(f"scaling: {len(cells)} cells, each in its own process")
    for i, (name, algo, lib) in enumerate(cells, 1):
        big = name in ("synthetic-10m", "synthetic-25m", "synthetic-ml-25m", "synthetic-32m")
        reps = args.big_repeats if big else (1 if args.quick else args.scaling_repeats)
        backend = "cuda" if lib == "cupy" or (cuda is not None and lib == "torch"
                                             and args.backend != "cpu") else "cpu"
        spec = {"dataset": name, "algo": algo, "library": lib, "backend": backend,
                "repeats": reps, "seed": args.seed, "threads": args.threads, "cfg": cfg,
                "t0": T0}
        log(f"scaling cell {i}/{len(cells)}: {name} {ALGO_NAMES[algo]} {LIB_LABEL.get(lib, lib)}"
            f" ({reps} repeat{'s' if reps > 1 else ''})")
        (res, why), t_cell = timed(lambda: run_cell(spec, args.cell_timeout), repeats=1,
                                   warmup=0)
        wall = t_cell.times_s[0]
        params = {"algo": algo, **cfg}
        if res is None:
            log(f"  FAILED: {why}")
            rows.append(rec.write(dataset={"name": name, "sha256": None}, split=None,
                                  model={"name": ALGO_NAMES[algo], "params": params},
                                  backend={"name": backend, "library": lib,
                                           "device_name": None},
                                  metrics=None, wall_time=None, status="failed", reason=why,
                                  extra={"part": "scaling", "algo": algo, "library": lib,
                                         "cell_wall_s": wall, "threads": args.threads}))
            continue
        tm = Timing(tuple(res["times_s"]), 1)
        med = tm.median_s
        # iterations of the median fit's kind: every repeat runs the same fixed counts,
        # power-iteration counts are deterministic (same seed) and are checked equal
        iters = res["n_iter"][0] if algo == "nmf" else sum(res["power_iterations"][0])
        per_iter = (med - res["setup_s"]) / iters if iters else None
        unit = {"tsvd": "power iterations", "nmf": "HALS sweeps",
                "isvd": "power iterations (all steps)"}[algo]
        peak = res["peak_fit_rss_bytes"]
        extra = {"part": "scaling", "algo": algo, "library": lib, "nnz": res["nnz"],
                 "shape": res["shape"], "dense_bytes_f64": res["dense_bytes_f64"],
                 "n_iter": res["n_iter"], "power_iterations": res["power_iterations"],
                 "counts_repeatable": len({json.dumps(p) for p in res["power_iterations"]}) == 1,
                 "setup_s": res["setup_s"], "load_s": res["load_s"],
                 "iterations_for_per_iter": iters, "per_iter_unit": unit,
                 "per_iter_s": per_iter, "cell_wall_s": wall,
                 "singular_values_top3": res["singular_values_top3"],
                 "fit_on": "all ratings (no holdout)", "threads": args.threads,
                 "child_loadavg_end": res["loadavg"],
                 "peak_note": ("VmHWM of the child after /proc/self/clear_refs reset, set "
                               "after loading and a warm-up fit on synthetic-small: the fit "
                               "window's peak, including the resident ratings")}
        rows.append(rec.write(
            dataset=res["dataset"], split=None,
            model={"name": ALGO_NAMES[algo], "params": res["params"]},
            backend=res["backend"], metrics={}, wall_time=tm.as_dict(),
            throughput={"value": res["nnz"] / med, "unit": "ratings/s (fit)"},
            peak_memory={"host_bytes": peak, "host_baseline_bytes": res["baseline_rss_bytes"],
                         "host_load_peak_bytes": res["peak_load_rss_bytes"],
                         "device_bytes": None},
            extra=extra))
        log(f"  -> median {med:.2f} s, {unit}: "
            f"{(per_iter or float('nan')) * 1e3:.1f} ms, peak RSS "
            f"{(peak or 0) / GiB:.2f} GiB (dense would be {res['dense_bytes_f64'] / GiB:.1f} "
            f"GiB)")
    slopes = fit_slopes(rows)
    rows.append(rec.write(dataset={"name": ",".join(datasets), "sha256": None}, split=None,
                          model={"name": "fitted slopes", "params": {}},
                          backend={"name": "cpu", "library": ",".join(libraries),
                                   "device_name": rec.env["device"]["name"]},
                          metrics=None, wall_time=None,
                          extra={"part": "scaling slopes", "slopes": slopes,
                                 "how": "least squares of log10(y) on log10(nnz), ok cells"}))
    plot(rows, slopes, args.png, rec.env)
    return rows


def slope(xs: list[float], ys: list[float]) -> float | None:
    import numpy as np

    pts = [(x, y) for x, y in zip(xs, ys) if x and y and x > 0 and y > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    lx, ly = np.log10([p[0] for p in pts]), np.log10([p[1] for p in pts])
    return float(np.polyfit(lx, ly, 1)[0])


def _ok_scaling(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["extra"].get("part") == "scaling" and r["status"] == "ok"]


def fit_slopes(rows: list[dict]) -> dict[str, dict[str, float | None]]:
    out = {}
    ok = _ok_scaling(rows)
    for key in sorted({(r["extra"]["algo"], r["extra"]["library"]) for r in ok}):
        pts = [r for r in ok if (r["extra"]["algo"], r["extra"]["library"]) == key]
        x = [r["extra"]["nnz"] for r in pts]
        out[f"{key[0]} {LIB_LABEL.get(key[1], key[1])}"] = {
            "fit_time": slope(x, [r["wall_time"]["median_s"] for r in pts]),
            "per_iteration": slope(x, [r["extra"]["per_iter_s"] for r in pts]),
            "peak_rss": slope(x, [r["peak_memory"]["host_bytes"] for r in pts]),
            "peak_rss_above_baseline": slope(x, [
                (r["peak_memory"]["host_bytes"] or 0) -
                (r["peak_memory"]["host_baseline_bytes"] or 0) for r in pts]),
            "points": len(pts),
        }
    return out


def plot(rows: list[dict], slopes: dict, png: Path, env: dict) -> None:
    import matplotlib

    from kmrec_gpu.results import atomic_path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ok = _ok_scaling(rows)
    if not ok:
        return
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    colours = {"tsvd": "C0", "nmf": "C1", "isvd": "C2"}
    marks = {"numpy": ("o", "-"), "torch": ("s", "--"), "cupy": ("^", ":")}
    keys = sorted({(r["extra"]["algo"], r["extra"]["library"]) for r in ok})
    for key in keys:
        pts = sorted((r for r in ok if (r["extra"]["algo"], r["extra"]["library"]) == key),
                     key=lambda r: r["extra"]["nnz"])
        name = f"{key[0]} {LIB_LABEL.get(key[1], key[1])}"
        sl = slopes.get(name, {})
        mk, ls = marks.get(key[1], ("x", "-."))
        x = np.array([r["extra"]["nnz"] for r in pts], float)
        panels = ((axes[0], [r["wall_time"]["median_s"] for r in pts], "fit_time"),
                  (axes[1], [r["extra"]["per_iter_s"] for r in pts], "per_iteration"),
                  (axes[2], [r["peak_memory"]["host_bytes"] for r in pts], "peak_rss"))
        for ax, y, skey in panels:
            y = np.array([v if v else np.nan for v in y], float)
            s = sl.get(skey)
            lab = f"{name} (slope {s:.2f})" if s is not None else name
            if skey == "peak_rss":
                y = y / GiB
            ax.plot(x, y, marker=mk, ls=ls, color=colours[key[0]], label=lab)
    dense = sorted({(r["extra"]["nnz"], r["extra"]["dense_bytes_f64"]) for r in ok})
    axes[2].plot([d[0] for d in dense], [d[1] / GiB for d in dense], "k:", marker="x",
                 label="dense matrix users x movies x 8 B")
    mem = env["device"].get("mem_total_bytes")
    if mem:
        axes[2].axhline(mem / GiB, color="r", lw=0.8, label=f"machine RAM {mem / GiB:.0f} GiB")
    for r in ok:
        if r["extra"]["algo"] == "tsvd" and r["extra"]["library"] == keys[0][1]:
            axes[0].annotate(r["dataset"]["name"], (r["extra"]["nnz"], r["wall_time"]["median_s"]),
                             fontsize=7, xytext=(4, -10), textcoords="offset points")
    titles = ("fit time (median)", "time per iteration (fit - setup) / iterations",
              "peak RSS of the fit window")
    ylabels = ("s", "s per power iteration (tSVD, iSVD) or HALS sweep (NMF)", "GiB")
    for ax, t, yl in zip(axes, titles, ylabels):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ratings (nnz)")
        ax.set_ylabel(yl)
        ax.set_title(t, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Scalable factorisations vs nnz: tSVD(16) to tol {_tsvd_tol():g}, "
                 f"NMF(15) 20 sweeps "
                 "random init, iterative SVD(16) 5 steps\n" + device_label(env), fontsize=10)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# -- the rendered view -----------------------------------------------------------------------


def _fmt(x: Any, spec: str = ".2f", none: str = "") -> str:
    return none if x is None else format(x, spec)


def render(rows: list[dict], env: dict, md: Path, elapsed: float, png: Path,
           args: argparse.Namespace) -> None:
    from kmrec_gpu.results import write_atomic

    d = env["device"]
    L = ["# Factorisation benchmark (issue 4)", "",
         f"Command: `{env['command']}`", "",
         f"Device: {device_label(env)}. Auto backend: {d['auto_backend']['name']} "
         f"({d['auto_backend']['fallback_reason'] or 'no fallback'}). Thread pools "
         f"{d['threads']['pools']}, torch {d['threads']['torch']}. Seed {env['seed']}; "
         f"git `{env['git']}`; versions: " + ", ".join(
             f"{k} {v}" for k, v in env["versions"].items()
             if k in ("numpy", "scipy", "scikit-learn", "torch", "array-api-compat")) + ".",
         f"Load average at start {tuple(round(x, 2) for x in d['loadavg_at_start'])}; "
         f"run took {elapsed / 60:.1f} min; run id `{rows[0]['run_id'] if rows else ''}`.", "",
         "Other processes share this machine's CPUs, so absolute times wander; peers were "
         "fitted interleaved (A B C D A B C D ...) in one process, so the ratios are the "
         "meaningful figures. Medians of the timed repeats; min/max and every time are in "
         "`factor.jsonl` (the record; this file is a rendered view of this run).", ""]
    fit = [r for r in rows if r["extra"].get("part") == "fit"]
    if fit:
        L += ["## Fit time: scalable vs dense reference vs scikit-learn", "",
              f"Holdout 10% (seed {env['seed']}); {args.fit_warmup} warm-up round + "
              f"{args.repeats} timed rounds, peers interleaved. tSVD: dense = LAPACK full SVD, "
              f"scalable = subspace iteration to tol {_tsvd_tol():g}, "
              f"sklearn = TruncatedSVD defaults "
              "(randomized, 5 iterations). NMF: nndsvda start, max_iter "
              f"{args.fit_nmf_max_iter}, tol {args.fit_nmf_tol} (dense and scalable run the same "
              "HALS steps; sklearn's cd solver stops on its own test). Iterative SVD: "
              f"max_iter {args.fit_isvd_iter}, tol 0. n_iter: power iterations (tSVD), HALS "
              "sweeps (NMF), SVD steps (iSVD); 'power' = all power iterations of the fit. "
              "Ratios are ratios of medians (per-round ratios in the JSONL).", "",
              "| dataset | model | peer | median s | min-max s | n_iter | power | "
              "/ dense | / sklearn | RMSE | MAE | max abs pred diff vs dense |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in fit:
            e = r["extra"]
            if r["status"] != "ok":
                L.append(f"| {r['dataset']['name']} | {r['model']['name']} | {e.get('peer')} "
                         f"| {r['status']}: {r.get('reason')} | | | | | | | | |")
                continue
            w = r["wall_time"]
            peer = e["peer"] + ("" if e.get("timing_peer", True) else " (correctness only, 1 "
                                "unwarmed fit)")
            L.append(f"| {r['dataset']['name']} | {r['model']['name']} | {peer} | "
                     f"{w['median_s']:.2f} | {w['min_s']:.2f}-{w['max_s']:.2f} | "
                     f"{e['n_iter']} | {sum(e['power_iterations']) or ''} | "
                     f"{_fmt(e.get('ratio_to_dense'))} | {_fmt(e.get('ratio_to_sklearn'))} | "
                     f"{r['metrics']['rmse']:.4f} | {r['metrics']['mae']:.4f} | "
                     f"{_fmt(e.get('max_abs_pred_diff_vs_dense'), '.1e')} |")
        L.append("")
    sc = [r for r in rows if r["extra"].get("part") == "scaling"]
    if sc:
        cfg = {**SCALING_CFG, "isvd_max_iter": args.scaling_isvd_iter,
               "nmf_max_iter": args.scaling_nmf_iter}
        L += ["## Scaling in nnz, with peak memory", "",
              f"![scaling]({png.name})", "",
              "Scalable solvers, fitted on all ratings (no holdout). tSVD(16) to its default "
              f"tol; NMF(15) random start, max_iter {cfg['nmf_max_iter']}, tol 0; iterative "
              f"SVD(16) max_iter {cfg['isvd_max_iter']}, tol 0. One child process per cell; "
              "warm-up fit on synthetic-small first; "
              f"{args.scaling_repeats} timed fits per cell below 10M ratings, "
              f"{args.big_repeats} at 10M and above. Per iteration = (median fit - setup) / "
              "iterations, setup = fill_matrix + sparse transfer. Peak = the child's resident "
              "high-water mark over the timed fits (reset after loading; includes the "
              "resident ratings, 'baseline' = RSS before the first timed fit). Dense = the "
              "users x movies float64 matrix the dense solvers would materialise.", "",
              "| dataset | nnz | users x movies | model | library | median fit s | "
              "min-max | iterations | setup s | per iteration ms | baseline GiB | "
              "peak GiB | dense GiB |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in sc:
            e = r["extra"]
            if r["status"] != "ok":
                L.append(f"| {r['dataset']['name']} | | | {r['model']['name']} | "
                         f"{e.get('library') or r['backend'].get('library') or ''} | "
                         f"{r['status']}: {r.get('reason')} | | | | | | | |")
                continue
            w, pm = r["wall_time"], r["peak_memory"]
            its = (f"{e['iterations_for_per_iter']} {e['per_iter_unit']}"
                   + (f" ({e['power_iterations'][0]})" if e["algo"] == "isvd" else ""))
            L.append(f"| {r['dataset']['name']} | {e['nnz']:,} | {e['shape'][0]:,} x "
                     f"{e['shape'][1]:,} | {r['model']['name']} | "
                     f"{LIB_LABEL.get(e['library'], e['library'])} | {w['median_s']:.2f} | "
                     f"{w['min_s']:.2f}-{w['max_s']:.2f} ({w['repeats']}) | {its} | "
                     f"{e['setup_s']:.2f} | "
                     f"{_fmt(e['per_iter_s'] and e['per_iter_s'] * 1e3, '.1f')}"
                     f" | {_fmt(pm['host_baseline_bytes'] and pm['host_baseline_bytes'] / GiB)} | "
                     f"{_fmt(pm['host_bytes'] and pm['host_bytes'] / GiB)} | "
                     f"{e['dense_bytes_f64'] / GiB:.3g} |")
        sl = next((r for r in rows if r["extra"].get("part") == "scaling slopes"), None)
        if sl:
            L += ["", "Fitted log-log slopes against nnz (least squares over the ok cells):", "",
                  "| model library | fit time | per iteration | peak RSS | peak above "
                  "baseline | points |", "|---|---|---|---|---|---|"]
            for k, v in sl["extra"]["slopes"].items():
                L.append(f"| {k} | {_fmt(v['fit_time'])} | {_fmt(v['per_iteration'])} | "
                         f"{_fmt(v['peak_rss'])} | {_fmt(v['peak_rss_above_baseline'])} | "
                         f"{v['points']} |")
        L.append("")
    write_atomic(md, "\n".join(L) + "\n")


# -- entry point -----------------------------------------------------------------------------


def _tsvd_tol() -> float:
    """The Ritz-residual tolerance the scalable truncated SVD runs with (its default)."""
    from kmrec_gpu.factor import TruncatedSVDModel

    return TruncatedSVDModel().tol


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="which parts to run (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (< 1 min): fit on ml-100k with 1 repeat and 2 iterative-SVD "
                        "steps; scaling on synthetic-small and ml-100k, numpy only")
    p.add_argument("--algos", nargs="+", choices=ALGOS, default=list(ALGOS))
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds in the fit part (default 3; quick 1)")
    p.add_argument("--fit-warmup", type=int, default=1, help="warm-up rounds (default 1)")
    p.add_argument("--fit-datasets", nargs="+", default=None,
                   help=f"default {' '.join(FIT_DATASETS)} (quick: ml-100k)")
    p.add_argument("--fit-isvd-iter", type=int, default=None,
                   help="iterative SVD max_iter (tol 0) in the fit part (default 10; quick 2)")
    p.add_argument("--fit-nmf-max-iter", type=int, default=200,
                   help="NMF max_iter in the fit part (default 200, the model's)")
    p.add_argument("--fit-nmf-tol", type=float, default=1e-4,
                   help="NMF tol in the fit part (default 1e-4, the model's)")
    p.add_argument("--no-strict", dest="strict", action="store_false",
                   help="skip the array-api-strict correctness fits")
    p.add_argument("--scaling-datasets", nargs="+", default=None,
                   help=f"default {' '.join(SCALING_DATASETS)}")
    p.add_argument("--scaling-libraries", nargs="+", default=None,
                   choices=("numpy", "torch", "array_api_strict"),
                   help="CPU libraries for the scaling cells (default numpy torch; quick numpy)")
    p.add_argument("--scaling-repeats", type=int, default=3,
                   help="timed fits per scaling cell below 10M ratings (default 3)")
    p.add_argument("--big-repeats", type=int, default=1,
                   help="timed fits per scaling cell at 10M ratings and above (default 1)")
    p.add_argument("--scaling-nmf-iter", type=int, default=20)
    p.add_argument("--scaling-isvd-iter", type=int, default=5)
    p.add_argument("--cell-timeout", type=float, default=3600.0,
                   help="seconds before a scaling cell is killed and recorded failed")
    p.add_argument("--backend", default="auto", choices=("auto", "cpu", "cuda"),
                   help="backend for the scalable solvers (default auto: CUDA if usable)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP/torch threads per process (default 1; 0 = defaults)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    p.add_argument("--md", type=Path, default=DEFAULT_MD, help=f"default {DEFAULT_MD}")
    p.add_argument("--png", type=Path, default=DEFAULT_PNG, help=f"default {DEFAULT_PNG}")
    p.add_argument("--cell", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("KMREC_DATA_DIR", "/work/shared/datasets")

    if args.cell is not None:  # a scaling cell, in its own process
        res = cell(json.loads(args.cell))
        print("CELL-RESULT " + json.dumps(json_safe(res)), flush=True)
        return 0

    args.repeats = args.repeats or (1 if args.quick else 3)
    args.fit_isvd_iter = args.fit_isvd_iter or (2 if args.quick else 10)
    if min(args.repeats, args.fit_isvd_iter, args.scaling_repeats, args.big_repeats,
           args.scaling_nmf_iter, args.scaling_isvd_iter) < 1 or args.fit_warmup < 0:
        p.error("repeats and iteration counts must be >= 1, --fit-warmup >= 0")
    if args.threads > 0:
        for v in THREAD_VARS:
            os.environ[v] = str(args.threads)  # children and late-loaded pools
    if "fit" in args.parts or args.backend != "cpu":
        importlib.import_module("torch")  # so set_threads limits it too
    set_threads(args.threads)
    env = environment(args.seed, args.threads)
    rec = Recorder(args.out, env)
    log(f"factor bench on {device_label(env)}; run id {rec.run_id}; rows -> {args.out}")
    rows: list[dict[str, Any]] = []
    for part, fn in (("fit", part_fit), ("scaling", part_scaling)):
        if part in args.parts:
            rows += fn(rec, args)
    elapsed = time.time() - T0
    render(rows, env, args.md, elapsed, args.png, args)
    print(args.md.read_text(), flush=True)
    log(f"appended {len(rows)} rows to {args.out}; wrote {args.md}"
        + (f" and {args.png}" if "scaling" in args.parts else "")
        + f" in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
