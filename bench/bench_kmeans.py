"""K-means engine benchmark: per-iteration time against scikit-learn, assignment-step
bandwidth against this machine's memory copy, and fit-time scaling. Appends result rows.

    python bench/bench_kmeans.py                 # all three parts (~15 min on 2 cores)
    python bench/bench_kmeans.py --parts iter    # one part: iter, bandwidth, scaling
    python bench/bench_kmeans.py --quick         # small smoke run of everything

Peers are timed in the same process and the same run, interleaved (A B C D A B C D ...),
so that a slow spell from other processes on the machine hits every peer alike and the
ratios hold even when the absolute times wander. Every call is timed by
kmrec_gpu.timing; medians are reported, and min and max and every repeat's time go into
the record: one schema-checked result row per measurement (kmrec_gpu.results.make_row;
the measurement's own fields under extra, with extra.bench = "kmeans") appended to
results/bench/kmeans.jsonl (append-only; its first lines are this benchmark's records
from before the row schema, still read by the report). results/bench/kmeans.md is a
rendered view of this run, replaced atomically.

Per-iteration time is ``(fit(max_iter=M+1) - fit(max_iter=1)) / M`` from the same initial
centres with ``tol=0``; both fits' fixed costs (validation, initial and final
assignment, inertia) cancel. Every fit's ``n_iter_`` is recorded and checked. Ours (numba
kernel) and scikit-learn run the same M; the composed paths (kernels="off", torch) run a
smaller M (their iterations are 10-100x longer), recorded in each row.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kmrec_gpu.results import json_safe

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "results" / "bench"
DEFAULT_OUT = OUT_DIR / "kmeans.jsonl"
DEFAULT_MD = OUT_DIR / "kmeans.md"
DEFAULT_PNG = OUT_DIR / "kmeans_scaling.png"
PARTS = ("iter", "bandwidth", "scaling")
GiB = 2.0**30


# -- the record -----------------------------------------------------------------------------


def environment(seed: int) -> dict[str, Any]:
    import importlib.metadata

    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.environment import git_revision, library_versions

    versions = dict(library_versions())
    extra_versions = {}
    for lib in ("numba", "threadpoolctl"):
        try:
            extra_versions[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    versions.update(extra_versions)
    try:
        import numba

        numba_threads = numba.get_num_threads()
    except ImportError:
        numba_threads = None
    try:
        import torch

        torch_threads = torch.get_num_threads()
    except ImportError:
        torch_threads = None
    from threadpoolctl import threadpool_info

    cpu = get_backend("cpu").describe()
    return {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
        "seed": seed,
        "device": {"kind": "cpu", "name": cpu["device_name"],
                   "machine": platform.machine(), "cpu_count": os.cpu_count(),
                   "threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count(),
                   "numba_threads": numba_threads, "torch_threads": torch_threads,
                   "blas": [(i.get("internal_api"), i.get("num_threads"))
                            for i in threadpool_info() if i.get("user_api") == "blas"],
                   "loadavg_at_start": os.getloadavg()},
        "git": git_revision(),
        "versions": versions,
        "extra_versions": extra_versions,  # libraries the rows' own versions do not list
        "backends": {"numpy": cpu},
    }


def backend_of(env: dict[str, Any], library: str = "numpy") -> dict[str, Any]:
    """The row's backend: the CPU through NumPy (ours, scikit-learn, the kernels) or torch."""
    if library not in env["backends"]:
        from kmrec_gpu.backends import get_backend

        env["backends"][library] = get_backend("cpu", library=library).describe()
    return env["backends"][library]


class Recorder:
    """One result row (kmrec_gpu.results.make_row) per measurement, appended to the JSONL
    as soon as it is taken (kmrec_gpu.results.append_row). The measurement's own fields
    (part, case, peer, timings, ratios ...) go under the row's ``extra``; :meth:`write`
    returns them, as the rendered view and the report read them."""

    def __init__(self, out: Path, env: dict[str, Any]) -> None:
        from kmrec_gpu.results import new_run_id

        self.out = out
        self.env = env
        self.run_id = new_run_id()
        self.rows: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any], *, dataset: dict[str, Any],
              model: dict[str, Any], backend: dict[str, Any],
              wall_time: dict[str, Any] | None, metrics: dict[str, Any] | None = None,
              status: str = "ok", reason: str | None = None) -> dict[str, Any]:
        from kmrec_gpu.results import append_row, make_row

        record = {"bench": "kmeans", **record}
        extra = json_safe({**record, "device": self.env["device"],
                        "versions_extra": self.env["extra_versions"],
                        "loadavg": os.getloadavg()})
        metrics = {k: v for k, v in json_safe(metrics or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        row = make_row(run_id=self.run_id, dataset=json_safe(dataset), split=None,
                       seed=self.env["seed"], model=json_safe(model), backend=json_safe(backend),
                       phase="fit", metrics=metrics, wall_time=json_safe(wall_time),
                       status=status, command=self.env["command"], extra=extra,
                       **({"reason": reason} if reason is not None else {}))
        append_row(self.out, row)
        self.rows.append(row)
        return record


def stats(times: list[float], warmup: int) -> dict[str, Any]:
    """median, min, max, repeats, warm-up and every time (kmrec_gpu.timing.Timing)."""
    from kmrec_gpu.timing import Timing

    return Timing(tuple(times), warmup).as_dict()


def clock(fn: Callable[[], Any]) -> tuple[float, Any]:
    """One timed call (kmrec_gpu.timing.timed, no warm-up: the callers warm up and
    interleave the peers themselves); (seconds, result)."""
    from kmrec_gpu.timing import timed

    out, t = timed(fn, repeats=1, warmup=0)
    return t.times_s[0], out


# -- inputs ----------------------------------------------------------------------------------


def dense_blobs(n: int, d: int, dtype: str, seed: int, n_centres: int = 16) -> np.ndarray:
    """Gaussian blobs (unit noise around ``n_centres`` centres spread 3 apart): k-means has
    structure to find but does not converge in a handful of iterations."""
    rng = np.random.default_rng([seed, n, d])
    centres = rng.standard_normal((n_centres, d)) * 3.0
    x = rng.standard_normal((n, d))
    x += centres[rng.integers(n_centres, size=n)]
    return np.ascontiguousarray(x, dtype=dtype)


def blobs_dataset(n: int, d: int, dtype: str, seed: int, n_centres: int = 16) -> dict[str, Any]:
    """The row's dataset for :func:`dense_blobs` (generated: no file, no checksum)."""
    return {"name": "dense-blobs", "sha256": None, "shape": [n, d], "dtype": dtype,
            "generator": {"kind": "gaussian blobs", "n_centres": n_centres, "spread": 3.0,
                          "seed": [seed, n, d]}}


def initial_centres(X: Any, k: int, seed: int) -> np.ndarray:
    """``k`` distinct rows of ``X``, drawn with ``seed``: the same start for every peer."""
    rng = np.random.default_rng([seed, k, X.shape[0]])
    idx = np.sort(rng.choice(X.shape[0], size=k, replace=False))
    rows = X[idx]
    rows = rows.toarray() if hasattr(rows, "toarray") else np.asarray(rows)
    return np.ascontiguousarray(rows, dtype=X.dtype)


_LIKED: dict[tuple[str, int], Any] = {}


def liked(name: str, seed: int):
    """users × items 0/1 CSR (float32) of ratings >= 4.0, as the seed-002 recommender;
    (matrix, number of ratings, the row's dataset)."""
    key = (name, seed)
    if key not in _LIKED:
        from kmrec_gpu.data import load
        from kmrec_gpu.models.liked_clusters import liked_matrix

        r = load(name, seed=seed) if name.startswith("synthetic") else load(name)
        X = liked_matrix(r, 4.0)
        desc = {"name": name, "sha256": r.source.sha256 if r.source else None,
                "n_ratings": len(r), "shape": list(X.shape), "nnz": int(X.nnz),
                "transform": "ratings >= 4.0 as a binary users x items CSR",
                **({"generator": r.meta} if r.source is None else {})}
        _LIKED[key] = (X, len(r), desc)
        del r
    return _LIKED[key]


def genre_shares(n_users: int, seed: int, n_genres: int = 19, n_segments: int = 8,
                 concentration: float = 20.0) -> np.ndarray:
    """Synthetic genre-share profiles, ``n_users × n_genres`` float64, rows summing to 1.

    Each user belongs to one of ``n_segments`` taste segments; a segment's mean share is a
    flat Dirichlet draw, and a user's shares are Dirichlet around it (``concentration``
    sets how tightly). Built in chunks of 1M users, so 1e7 users cost ~1.5 GB.
    """
    rng = np.random.default_rng([seed, 19, n_segments])
    means = rng.dirichlet(np.ones(n_genres), size=n_segments) * concentration + 0.05
    out = np.empty((n_users, n_genres))
    step = 1_000_000
    for s in range(0, n_users, step):
        r = np.random.default_rng([seed, s])
        m = min(step, n_users - s)
        g = r.standard_gamma(means[r.integers(n_segments, size=m)])
        g /= g.sum(axis=1, keepdims=True)
        out[s:s + m] = g
    return out


def shares_dataset(n_users: int, seed: int, n_genres: int = 19, n_segments: int = 8,
                   concentration: float = 20.0) -> dict[str, Any]:
    """The row's dataset for :func:`genre_shares`."""
    return {"name": "genre-shares", "sha256": None, "shape": [n_users, n_genres],
            "generator": {"kind": "dirichlet segments", "n_segments": n_segments,
                          "concentration": concentration, "seed": seed}}


# -- part 1: per-iteration time against scikit-learn ----------------------------------------------


def peers(k: int, C: np.ndarray, with_off: bool, with_torch: bool) -> dict[str, Callable]:
    from sklearn.cluster import KMeans as SKMeans

    from kmrec_gpu.cluster import KMeans

    out: dict[str, Callable] = {
        "ours": lambda m: KMeans(k, init=C, n_init=1, max_iter=m, tol=0.0, random_state=0),
    }
    if with_off:
        out["ours kernels=off"] = lambda m: KMeans(k, init=C, n_init=1, max_iter=m, tol=0.0,
                                                   random_state=0, kernels="off")
    if with_torch:
        out["ours torch-cpu"] = lambda m: KMeans(k, init=C, n_init=1, max_iter=m, tol=0.0,
                                                 random_state=0, library="torch")
    out["sklearn"] = lambda m: SKMeans(k, init=C, n_init=1, max_iter=m, tol=0.0,
                                       algorithm="lloyd", random_state=0)
    return out


SLOW = ("ours kernels=off", "ours torch-cpu")


def peer_model(name: str, k: int, iterations: int) -> tuple[dict[str, Any], str]:
    """(the row's model, its backend library) for a peer of :func:`peers`."""
    params = {"n_clusters": k, "init": "k seeded rows (the same for every peer)",
              "n_init": 1, "tol": 0.0, "max_iter": [1, iterations + 1]}
    if name == "sklearn":
        return {"name": "sklearn KMeans", "params": {**params, "algorithm": "lloyd"}}, "numpy"
    library = "torch" if name == "ours torch-cpu" else "numpy"
    kernels = "off" if name == "ours kernels=off" else "auto"
    return ({"name": "KMeans", "params": {**params, "kernels": kernels, "library": library}},
            library)


def per_iteration(rec: Recorder, progress, case: dict[str, Any], dataset: dict[str, Any],
                  X: Any, k: int, M: int, M_slow: int, repeats: int, seed: int,
                  with_off: bool, with_torch: bool, skipped: dict[str, str],
                  warm_in: bool) -> list[dict[str, Any]]:
    """``M`` iterations for ours (numba) and sklearn, ``M_slow`` for the composed paths
    (kernels=off, torch) whose iterations are 10-100x longer. With ``warm_in`` every peer
    runs one untimed ``fit(max_iter=1)`` before its timed pair in each round: the first fit
    after switching thread pools (numba/OpenMP, torch, OpenBLAS) pays a switch-in cost that
    would otherwise land on the ``fit(1)`` side and bias the difference. Each peer's
one untimed ``fit(max_iter=1)`` before the rounds is the recorded warm-up."""
    C = initial_centres(X, k, seed)
    ps = peers(k, C, with_off, with_torch)
    Ms = {n: (M_slow if n in SLOW else M) for n in ps}
    task = progress.add_task(f"iter {case['case']}",
                             total=len(ps) * (1 + (2 + warm_in) * repeats))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning at small max_iter
        for name, make in ps.items():  # warm-up: compile numba, load torch, touch X
            make(1).fit(X)
            progress.advance(task)
        t1: dict[str, list[float]] = {n: [] for n in ps}
        tm: dict[str, list[float]] = {n: [] for n in ps}
        last: dict[str, Any] = {}
        iters: dict[str, set] = {n: set() for n in ps}
        for _ in range(repeats):  # interleaved: every peer once per round
            for name, make in ps.items():
                if warm_in:
                    make(1).fit(X)
                    progress.advance(task)
                dt1, m1 = clock(lambda: make(1).fit(X))
                progress.advance(task)
                dtm, mm = clock(lambda: make(Ms[name] + 1).fit(X))
                progress.advance(task)
                t1[name].append(dt1)
                tm[name].append(dtm)
                iters[name].update({(1, int(m1.n_iter_)), (Ms[name] + 1, int(mm.n_iter_))})
                last[name] = mm
    progress.remove_task(task)
    # labels and inertia are compared with sklearn's at the same max_iter
    refs = {Ms["sklearn"] + 1: last["sklearn"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ps:
            if Ms[name] + 1 not in refs:
                refs[Ms[name] + 1] = ps["sklearn"](Ms[name] + 1).fit(X)
    per = {n: [(b - a) / Ms[n] for a, b in zip(t1[n], tm[n])] for n in ps}
    sk_med = statistics.median(per["sklearn"])
    rows = []
    for name in ps:
        m = last[name]
        ref = refs[Ms[name] + 1]
        n_iter_ok = iters[name] == {(1, 1), (Ms[name] + 1, Ms[name] + 1)}
        row = {
            "part": "iter", **case, "k": k, "peer": name,
            "assign_path": getattr(m, "assign_path_", "sklearn-cython"),
            "iterations": Ms[name], "max_iter_pair": [1, Ms[name] + 1],
            "n_iter_seen": sorted(iters[name]), "n_iter_ok": n_iter_ok, "warm_in": warm_in,
            "per_iter": stats(per[name], 1),
            "fit_1": stats(t1[name], 1), "fit_m1": stats(tm[name], 1),
            "ratio_to_sklearn": statistics.median(per[name]) / sk_med,
            # ratio of medians; the per-round ratios show how steady it was
            "ratio_per_round": [a / b for a, b in zip(per[name], per["sklearn"])],
            "labels_agree_with_sklearn": float(np.mean(np.asarray(m.labels_) ==
                                                       np.asarray(ref.labels_))),
            "inertia": float(m.inertia_),
            "inertia_rel_diff_vs_sklearn": float((m.inertia_ - ref.inertia_) /
                                                 ref.inertia_),
        }
        model, library = peer_model(name, k, Ms[name])
        rows.append(rec.write(
            row, dataset=dataset, model=model, backend=backend_of(rec.env, library),
            wall_time=row["per_iter"],
            metrics={"per_iter_median_s": row["per_iter"]["median_s"],
                     **{key: row[key] for key in (
                         "ratio_to_sklearn", "labels_agree_with_sklearn", "inertia",
                         "inertia_rel_diff_vs_sklearn")}}))
    for name, why in skipped.items():
        model, library = peer_model(name, k, M_slow)
        rows.append(rec.write({"part": "iter", **case, "k": k, "peer": name,
                               "skipped": why, "iterations": M_slow},
                              dataset=dataset, model=model,
                              backend=backend_of(rec.env, library), wall_time=None,
                              status="skipped", reason=why))
    return rows


def part_iter(rec: Recorder, progress, args) -> list[dict[str, Any]]:
    rows = []
    q = args.quick
    dense = [(200_000, 20) if q else (1_000_000, 20), (50_000, 64) if q else (200_000, 64)]
    M = 3 if q else args.iterations
    Ms = 2 if q else args.slow_iterations
    for n, d in dense:
        for dtype in ("float64", "float32"):
            X = dense_blobs(n, d, dtype, args.seed)
            case = {"case": f"dense {n:,}x{d} {dtype}", "input": "dense blobs",
                    "dtype": dtype, "shape": [n, d]}
            rows += per_iteration(rec, progress, case, blobs_dataset(n, d, dtype, args.seed),
                                  X, 16, M, Ms, args.repeats,
                                  args.seed, with_off=True, with_torch=True, skipped={},
                                  warm_in=True)
            del X
    name = "synthetic-1m" if q else "synthetic-ml-25m"
    X, n_ratings, dataset = liked(name, args.seed)
    case = {"case": f"liked {name}", "input": f"{name} ratings>=4.0, binary CSR",
            "dtype": str(X.dtype), "shape": list(X.shape), "nnz": int(X.nnz),
            "n_ratings": n_ratings}
    skipped = {}
    if not (args.torch_sparse or q):
        skipped["ours torch-cpu"] = ("skipped: torch sparse CSR path measured at ~11 s an "
                                     "iteration on this input (pass --torch-sparse to run it)")
    # no warm-in here: every fit of ours carries a ~10 s fixed cost on this input
    rows += per_iteration(rec, progress, case, dataset, X, 15,
                          3 if q else args.sparse_iterations,
                          Ms, args.repeats, args.seed, with_off=True,
                          with_torch=args.torch_sparse or q, skipped=skipped, warm_in=False)
    return rows


# -- part 2: assignment bandwidth ------------------------------------------------------------


def _parallel_sum():
    from numba import njit, prange

    @njit(parallel=True, fastmath=True, cache=False)
    def psum(a):  # pragma: no cover - jit
        s = 0.0
        for i in prange(a.shape[0]):
            s += a[i]
        return s

    return psum


def _gemm_gflops(dtype: str, threads: int, reps: int) -> float:
    """This machine's dense matrix-product rate (2·n³ / median time of a 1,024² product)
    with ``threads`` BLAS threads: the ceiling of any distance computation's FLOP rate."""
    from threadpoolctl import ThreadpoolController

    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(dtype)
    with ThreadpoolController().limit(limits=threads, user_api="blas"):
        a @ a
        t = statistics.median(clock(lambda: a @ a)[0] for _ in range(reps))
    return 2 * 1024**3 / t / 1e9


def part_bandwidth(rec: Recorder, progress, args) -> list[dict[str, Any]]:
    from numba import get_num_threads

    from kernels.cpu_kmeans import assign_dense

    rows = []
    reps = args.repeats + 2
    nbytes = (256 if args.quick else 2048) * 2**20  # > this VM's reported 480 MiB L3
    src = np.ones(nbytes // 8)
    dst = np.empty_like(src)
    psum = _parallel_sum()
    psum(src[:1000])
    task = progress.add_task("copy bandwidth", total=reps)
    copy_t, sum_t, psum_t = [], [], []
    np.copyto(dst, src)
    for _ in range(reps):
        copy_t.append(clock(lambda: np.copyto(dst, src))[0])
        sum_t.append(clock(lambda: src.sum())[0])
        psum_t.append(clock(lambda: psum(src))[0])
        progress.advance(task)
    progress.remove_task(task)
    dst = None  # the copy's memory back before the next case
    ref = {
        "copy_rw_GBps": 2 * nbytes / statistics.median(copy_t) / 1e9,
        "sum_read_GBps": nbytes / statistics.median(sum_t) / 1e9,
        "parallel_sum_read_GBps": nbytes / statistics.median(psum_t) / 1e9,
    }
    how = ("np.copyto (1 thread; read+write = 2 x bytes), ndarray.sum (1 thread, read), "
           "numba prange sum (all threads, read)")
    record = {"part": "bandwidth", "case": "memory reference", "dtype": "float64",
              "shape": [src.size], "bytes": nbytes,
              # one untimed copy before the rounds; the numba sum compiled on a slice
              "copy": stats(copy_t, 1), "sum": stats(sum_t, 0),
              "parallel_sum": stats(psum_t, 0), **ref, "how": how}
    rows.append(rec.write(record, dataset={"name": "ones", "sha256": None, "dtype": "float64",
                                           "shape": [src.size], "bytes": nbytes},
                          model={"name": "memory reference", "params": {"how": how}},
                          backend=backend_of(rec.env), wall_time=record["copy"], metrics=ref))
    src = None
    copy_read = max(ref["sum_read_GBps"], ref["parallel_sum_read_GBps"])
    # The goal asks X to be read at half the copy rate; the distances need 2·d·k FLOPs a
    # point, so it also asks for a FLOP rate, compared with this machine's GEMM rate on the
    # kernel's threads (no distance kernel runs faster than a large cache-blocked GEMM).
    threads = get_num_threads()
    gemm = {dt: _gemm_gflops(dt, threads, reps) for dt in ("float64", "float32")}
    shapes = [(1_000_000, 20), (200_000, 64), (10_000_000, 20)]
    if args.quick:
        shapes = [(200_000, 20), (50_000, 64)]
    for n, d in shapes:
        for dtype in ("float64", "float32"):
            X = dense_blobs(n, d, dtype, args.seed)
            C = initial_centres(X, 16, args.seed)
            sq = np.einsum("ij,ij->i", X, X)
            for update in (True, False):
                assign_dense(X, C, sq, update=update)
                t = [clock(lambda: assign_dense(X, C, sq, update=update))[0]
                     for _ in range(reps)]
                gbps = X.nbytes / statistics.median(t) / 1e9
                row = {"part": "bandwidth", "case": f"assign_dense {n:,}x{d} {dtype}",
                       "dtype": dtype, "shape": [n, d], "k": 16, "update": update,
                       "bytes": X.nbytes, "fits_in_l3": X.nbytes < 480 * 2**20,
                       "time": stats(t, 1), "read_GBps": gbps,
                       "fraction_of_copy_rw": gbps / ref["copy_rw_GBps"],
                       "fraction_of_read": gbps / copy_read,
                       "goal_half_of_copy_met": gbps >= 0.5 * ref["copy_rw_GBps"]}
                goal_s = X.nbytes / (0.5 * ref["copy_rw_GBps"] * 1e9)
                floor_s = 2 * n * d * 16 / (gemm[dtype] * 1e9)
                row.update({"kernel_threads": threads, "gemm_GFLOPs": gemm[dtype],
                            "goal_ms": goal_s * 1e3, "flop_floor_ms": floor_s * 1e3,
                            "goal_within_flop_floor": floor_s <= goal_s})
                rows.append(rec.write(
                    row, dataset=blobs_dataset(n, d, dtype, args.seed),
                    model={"name": "kernels.cpu_kmeans.assign_dense",
                           "params": {"k": 16, "update": update,
                                      "centres": "16 seeded rows of X"}},
                    backend=backend_of(rec.env), wall_time=row["time"],
                    metrics={key: row[key] for key in ("read_GBps", "fraction_of_copy_rw",
                                                       "fraction_of_read")}))
            X = sq = None
    return rows


# -- part 3: scaling -------------------------------------------------------------------------


def scaling_model(k: int, iters: int, seed: int) -> dict[str, Any]:
    return {"name": "KMeans", "params": {"n_clusters": k, "init": "k-means++", "n_init": 1,
                                         "max_iter": iters, "tol": 0.0, "random_state": seed}}


def _fit_times(X: Any, k: int, iters: int, repeats: int, seed: int) -> tuple[list[float], Any]:
    """``repeats`` timed fits, after one untimed fit on the first 2,000 rows (the warm-up:
    numba compiles there)."""
    from kmrec_gpu.cluster import KMeans

    def make():
        return KMeans(k, init="k-means++", n_init=1, max_iter=iters, tol=0.0,
                      random_state=seed)

    make().fit(X[:2000] if X.shape[0] > 2000 else X)  # compile outside the clock
    times, m = [], None
    for _ in range(repeats):
        dt, m = clock(lambda: make().fit(X))
        times.append(dt)
    return times, m


def slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = np.log10(xs), np.log10(ys)
    return float(np.polyfit(lx, ly, 1)[0]) if len(xs) >= 2 else float("nan")


def part_scaling(rec: Recorder, progress, args) -> list[dict[str, Any]]:
    rows = []
    iters = args.scaling_iterations
    users = [1e4, 1e5] if args.quick else [1e4, 1e5, 1e6, 1e7]
    ratings = (["ml-100k", "ml-latest-small", "synthetic-1m"] if args.quick else
               ["ml-100k", "ml-latest-small", "synthetic-1m", "synthetic-10m",
                "synthetic-ml-25m"])
    task = progress.add_task("scaling", total=len(users) + len(ratings))
    for n in users:
        n = int(n)
        X = genre_shares(n, args.seed)
        reps = 1 if n >= 10_000_000 else args.repeats
        t, m = _fit_times(X, 15, iters, reps, args.seed)
        record = {"part": "scaling", "curve": "genre profiles",
                  "case": f"genre shares {n:,}x19", "dtype": "float64",
                  "shape": list(X.shape), "k": 15, "x": n, "x_name": "users",
                  "iterations": iters, "n_iter": int(m.n_iter_),
                  "assign_path": m.assign_path_, "fit": stats(t, 1)}
        rows.append(rec.write(record, dataset=shares_dataset(n, args.seed),
                              model=scaling_model(15, iters, args.seed),
                              backend=backend_of(rec.env), wall_time=record["fit"],
                              metrics={"n_iter": record["n_iter"]}))
        del X
        progress.advance(task)
    _LIKED.clear() if args.quick else None
    for name in ratings:
        X, n_ratings, dataset = liked(name, args.seed)
        reps = args.repeats
        t, m = _fit_times(X, 15, iters, reps, args.seed)
        record = {"part": "scaling", "curve": "liked matrix",
                  "case": f"liked {name}", "dtype": str(X.dtype),
                  "shape": list(X.shape), "nnz": int(X.nnz), "k": 15,
                  "x": n_ratings, "x_name": "ratings", "iterations": iters,
                  "n_iter": int(m.n_iter_), "assign_path": m.assign_path_,
                  "fit": stats(t, 1)}
        rows.append(rec.write(record, dataset=dataset,
                              model=scaling_model(15, iters, args.seed),
                              backend=backend_of(rec.env), wall_time=record["fit"],
                              metrics={"n_iter": record["n_iter"]}))
        _LIKED.pop((name, args.seed), None)
        progress.advance(task)
    progress.remove_task(task)
    slopes = {}
    for curve in ("genre profiles", "liked matrix"):
        pts = [r for r in rows if r["curve"] == curve]
        slopes[curve] = slope([r["x"] for r in pts], [r["fit"]["median_s"] for r in pts])
    for r in rows:
        r["slope"] = slopes[r["curve"]]
    rows.append(rec.write({"part": "scaling", "case": "fitted slopes", "slopes": slopes,
                           "iterations": iters, "k": 15,
                           "how": "least squares of log10(median fit s) on log10(x)"},
                          dataset={"name": "scaling curves", "sha256": None,
                                   "curves": list(slopes)},
                          model={"name": "fitted slopes",
                                 "params": {"k": 15, "iterations": iters}},
                          backend=backend_of(rec.env), wall_time=None,
                          metrics={f"slope {curve}": v for curve, v in slopes.items()}))
    plot(rows, slopes, args.png, iters)
    return rows


def plot(rows: list[dict[str, Any]], slopes: dict[str, float], png: Path, iters: int) -> None:
    import matplotlib

    from kmrec_gpu.results import atomic_path

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, curve, xlabel in ((axes[0], "genre profiles", "users (x 19 genre shares)"),
                              (axes[1], "liked matrix", "ratings (liked matrix: >= 4.0)")):
        pts = [r for r in rows if r.get("curve") == curve]
        if not pts:
            continue
        x = np.array([r["x"] for r in pts], float)
        y = np.array([r["fit"]["median_s"] for r in pts])
        lo = y - np.array([r["fit"]["min_s"] for r in pts])
        hi = np.array([r["fit"]["max_s"] for r in pts]) - y
        ax.errorbar(x, y, yerr=[lo, hi], fmt="o", capsize=3, label="median (min-max)")
        if len(x) >= 2:
            b, a = np.polyfit(np.log10(x), np.log10(y), 1)
            xx = np.logspace(np.log10(x.min()), np.log10(x.max()), 50)
            ax.plot(xx, 10**a * xx**b, "--", label=f"fit: slope {b:.2f}")
        for r in pts:
            ax.annotate(r["case"].replace("liked ", "").replace("genre shares ", ""),
                        (r["x"], r["fit"]["median_s"]), fontsize=7,
                        xytext=(4, -10), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"fit time, s (k=15, k-means++, max_iter={iters}, tol=0)")
        ax.set_title(curve)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# -- the rendered view -----------------------------------------------------------------------


def render(rows: list[dict[str, Any]], env: dict[str, Any], md: Path, elapsed: float,
           png: Path) -> None:
    from kmrec_gpu.results import write_atomic

    dev = env["device"]
    L = ["# K-means engine benchmark", "",
         f"Command: `{env['command']}`", "",
         f"Device: {dev['name']}, {dev['threads']} threads (numba {dev['numba_threads']}, "
         f"torch {dev['torch_threads']}, BLAS {dev['blas']}); git `{env['git']}`; "
         f"versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()
                                   if k in ("numpy", "scikit-learn", "numba", "torch",
                                            "scipy")) + ".",
         f"Load average at start {tuple(round(x, 2) for x in dev['loadavg_at_start'])}; "
         f"run took {elapsed / 60:.1f} min.", "",
         "Other processes may share this machine's CPUs during the run, so absolute times "
         "wander; peers were run interleaved (A B C D A B C D ...) in the same process, so "
         "the ratios are the meaningful figures. Medians of the repeats; min/max and every "
         "time are in `kmeans.jsonl` (the record; this file is a rendered view).", ""]
    it = [r for r in rows if r["part"] == "iter"]
    if it:
        L += ["## Per-iteration time vs scikit-learn Lloyd",  "",
              "(fit(max_iter=M+1) - fit(max_iter=1)) / M, same initial centres, tol=0; "
              "ours (numba) and sklearn share M; composed paths run a smaller M.", "",
              "| case | k | M | peer | path | ms/iter (median) | min-max | ratio to sklearn "
              "| labels = sklearn | n_iter ok |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in it:
            if "skipped" in r:
                L.append(f"| {r['case']} | {r['k']} | {r['iterations']} | {r['peer']} | | "
                         f"{r['skipped']} | | | | |")
                continue
            p = r["per_iter"]
            L.append(f"| {r['case']} | {r['k']} | {r['iterations']} | {r['peer']} | "
                     f"{r['assign_path']} | {p['median_s'] * 1e3:.1f} | "
                     f"{p['min_s'] * 1e3:.1f}-{p['max_s'] * 1e3:.1f} | "
                     f"{r['ratio_to_sklearn']:.2f} | {r['labels_agree_with_sklearn']:.4f} | "
                     f"{'yes' if r['n_iter_ok'] else 'NO ' + str(r['n_iter_seen'])} |")
        L.append("")
    bw = [r for r in rows if r["part"] == "bandwidth"]
    if bw:
        ref = bw[0]
        L += ["## Assignment-step bandwidth (kernels.cpu_kmeans.assign_dense, k=16)", "",
              f"Memory reference on {ref['bytes'] / 2**20:.0f} MiB float64: np.copyto "
              f"{ref['copy_rw_GBps']:.1f} GB/s read+write (1 thread); sum "
              f"{ref['sum_read_GBps']:.1f} GB/s read (1 thread); parallel numba sum "
              f"{ref['parallel_sum_read_GBps']:.1f} GB/s read (all threads).", "",
              "Goal from the issue: X bytes read per second >= half the copy bandwidth.", "",
              "| input | update sums | X MiB | in L3 (480 MiB) | ms | X GB/s | / copy r+w "
              "| / best read | goal met | goal ms | FLOP floor ms |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in bw[1:]:
            floor = (f"{r['goal_ms']:.1f} | {r['flop_floor_ms']:.1f}" if "goal_ms" in r
                     else "| ")
            L.append(f"| {r['case']} | {r['update']} | {r['bytes'] / 2**20:.0f} | "
                     f"{r['fits_in_l3']} | {r['time']['median_s'] * 1e3:.1f} | "
                     f"{r['read_GBps']:.1f} | {r['fraction_of_copy_rw']:.2f} | "
                     f"{r['fraction_of_read']:.2f} | "
                     f"{'yes' if r['goal_half_of_copy_met'] else 'no'} | {floor} |")
        fl = [r for r in bw[1:] if "goal_ms" in r]
        if fl:
            rates = {r["dtype"]: r["gemm_GFLOPs"] for r in fl}
            out = [r for r in fl if not r["goal_within_flop_floor"]]
            L += ["", "'goal ms' is the time that would read X at half the copy rate; 'FLOP "
                  f"floor ms' the time the {2 * 16}·d FLOPs a point of the k=16 distances "
                  "take at this machine's GEMM rate on the kernel's "
                  f"{fl[0]['kernel_threads']} threads (1,024² product: "
                  + ", ".join(f"{dt} {v:.1f} GFLOP/s" for dt, v in sorted(rates.items()))
                  + "). " + (f"In {len(out)} of {len(fl)} rows the floor exceeds the goal: "
                             "there the goal asks for more FLOPs per second than a dense "
                             "GEMM reaches on these cores, so no assignment kernel can meet "
                             "it here; the rest are judged by the 'goal met' column."
                             if out else "Every row's floor is within its goal.")]
        L.append("")
    sc = [r for r in rows if r["part"] == "scaling" and "curve" in r]
    if sc:
        sl = [r for r in rows if r.get("case") == "fitted slopes"][0]
        L += ["## Scaling (fit time, k=15, k-means++ seed 0, max_iter="
              f"{sl['iterations']}, tol=0)", "",
              f"![scaling]({png.name})", "",
              "| curve | case | x | shape | ms median | min-max s | n_iter |",
              "|---|---|---|---|---|---|---|"]
        for r in sc:
            f = r["fit"]
            L.append(f"| {r['curve']} | {r['case']} | {r['x']:,} {r['x_name']} | "
                     f"{r['shape'][0]:,}x{r['shape'][1]:,} | {f['median_s'] * 1e3:.0f} | "
                     f"{f['min_s']:.2f}-{f['max_s']:.2f} | {r['n_iter']} |")
        L += ["", "Fitted log-log slopes: " + ", ".join(
            f"{k}: {v:.2f}" for k, v in sl["slopes"].items()), ""]
    write_atomic(md, "\n".join(L) + "\n")


# -- entry point -----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="which parts to run (default: all)")
    p.add_argument("--quick", action="store_true", help="small sizes, a smoke run (~1 min)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per peer (default 3)")
    p.add_argument("--iterations", type=int, default=30,
                   help="M for ours (numba) and sklearn on dense input (default 30)")
    p.add_argument("--sparse-iterations", type=int, default=20,
                   help="M for ours (numba) and sklearn on the liked matrix (default 20)")
    p.add_argument("--slow-iterations", type=int, default=5,
                   help="M for the composed paths, kernels=off and torch (default 5)")
    p.add_argument("--scaling-iterations", type=int, default=10,
                   help="max_iter for the scaling fits (default 10)")
    p.add_argument("--torch-sparse", action="store_true",
                   help="also time the torch-CPU library on the 25M liked matrix (slow)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    p.add_argument("--md", type=Path, default=DEFAULT_MD, help=f"default {DEFAULT_MD}")
    p.add_argument("--png", type=Path, default=DEFAULT_PNG, help=f"default {DEFAULT_PNG}")
    args = p.parse_args(argv)
    if min(args.repeats, args.iterations, args.sparse_iterations, args.slow_iterations) < 1:
        p.error("need --repeats and the iteration counts >= 1")
    os.environ.setdefault("KMREC_DATA_DIR", "/work/shared/datasets")

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    env = environment(args.seed)
    rec = Recorder(args.out, env)
    console.print(f"[bold]kmeans bench[/] on {env['device']['name']} "
                  f"({env['device']['threads']} threads), git {env['git']}")
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        for part, fn in (("iter", part_iter), ("bandwidth", part_bandwidth),
                         ("scaling", part_scaling)):
            if part in args.parts:
                rows += fn(rec, progress, args)
    elapsed = time.perf_counter() - t0
    render(rows, env, args.md, elapsed, args.png)
    print(args.md.read_text(), flush=True)
    console.print(f"appended {len(rows)} rows to {args.out}; wrote {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
