"""Ours against each operation's peer, in one process, interleaved, on one thread.

    python bench/bench_peers.py --label after                  # every case (~15 min here)
    python bench/bench_peers.py --cases svd,mf-ml-100k --repeats 3
    PYTHONPATH=/path/to/older/checkout python bench/bench_peers.py --label before
    python bench/bench_peers.py --render                       # peers.md from stored rows

Each case times our implementation and its peers on the same input, the sides taking
turns (A B C, B C A, C A B, ...) so that a slow spell of the shared machine hits each
alike; the ratio ours / peer is taken per round and reported as its median with the
min–max over rounds. Each side's held-out metric (or its accuracy against an exact answer)
is measured once, outside the clock, through the harness's own scoring
(:mod:`kmrec_gpu.harness.evaluate`), so speed is never shown without what it bought.

The cases (``--cases``; every one by default):

- ``svd``: TruncatedSVD(16) of the mean-filled ml-latest-small training matrix:
  ``solver="scalable"`` (products only) against ``scipy.sparse.linalg.svds`` (ARPACK) on
  the same implicit operator and against scikit-learn's ``TruncatedSVD`` (randomized, its
  defaults) on the dense matrix; singular-value error against an exact SVD.
- ``mf-ml-100k`` / ``mf-ml-latest-small``: ``BiasedMF`` ALS (100 factors, 20 epochs) against
  Surprise's ``SVD()`` (100 factors, 20 epochs of SGD), fit time, held-out RMSE;
  ``mf-cd-*`` the same with ``solver="cd"`` (a coordinate-descent sweep per half-step).
- ``kmeans``: K-means (k = 15) of the sparse liked-movie matrix of ml-latest-small,
  this project's engine against scikit-learn's, the same constructor arguments
  (:func:`kmrec_gpu.cluster.engines.make_kmeans`); inertia and iterations of both.
- ``sddmm-numpy`` / ``sddmm-torch``: ``factor.linalg.sampled_dot`` at ml-100k's training
  cells, rank 100, against a NumPy gather-dot (cells in the ratings' order) and
  ``torch.sparse.sampled_addmm`` (cells in CSR order, for both sides).
- ``load``: ``kmrec_gpu.data.load("ml-latest-small", verify=False)`` against
  ``pandas.read_csv`` of the zip's ratings.csv alone.
- ``import``: a fresh interpreter's ``import kmrec_gpu`` against ``import numpy, scipy.sparse``
  (the floor every implementation pays).

``--label`` names the code state measured (``before`` at an older checkout through
``PYTHONPATH``, ``after`` at this one); rows go to results/bench/peers.jsonl (append-only,
kmrec_gpu.results.make_row with ``extra.bench = "peers"``) and results/bench/peers.md is
rendered from every stored row, the newest run per case and label.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch load their pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import bench_factor as bf
import numpy as np

OUT = bf.OUT_DIR / "peers.jsonl"
MD = bf.OUT_DIR / "peers.md"
SEED = 0


@dataclass
class Side:
    name: str
    run: Callable[[], Any]  # the timed call; returns what ``metrics`` reads
    metrics: Callable[[Any], dict[str, float]]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Case:
    name: str
    what: str
    dataset: dict[str, Any]
    ours: Side
    peers: list[Side]
    goal: str
    sync: Callable[[], None] = lambda: None


# -- the cases -------------------------------------------------------------------------------


def _split(name: str) -> Any:
    from kmrec_gpu.splits import make_split

    r = bf.load_ratings(name, SEED)
    return r, make_split(r, "holdout", seed=SEED, test_fraction=0.1)


def _rating_metrics(split: Any) -> Callable[[Any], dict[str, float]]:
    from kmrec_gpu.harness import evaluate

    def score(model: Any) -> dict[str, float]:
        out = evaluate.predict("rating", model, split, 10)
        m, _ = evaluate.score("rating", out, split, seed=SEED, name="peers", n_boot=0, k=10,
                              threshold=4.0)
        return {"rmse": m["rmse"]}
    return score


def case_svd() -> Case:
    import scipy.sparse.linalg as sla

    from kmrec_gpu.factor.models import TruncatedSVDModel

    class SvdsTruncatedSVD(TruncatedSVDModel):
        """The same fill, operator and prediction; only the solver is ARPACK's."""

        def fit(self, train: Any) -> SvdsTruncatedSVD:
            filled, backend, dtype = self._prepare(train)
            op = self._structured(filled, backend, dtype)
            lin = sla.LinearOperator(op.shape, dtype=np.float64,
                                     matvec=lambda x: op.matmul(x.reshape(-1, 1)),
                                     rmatvec=lambda y: op.rmatmul(y.reshape(-1, 1)),
                                     matmat=op.matmul, rmatmat=op.rmatmul)
            v0 = np.random.default_rng(self.random_state).standard_normal(min(op.shape))
            u, s, vt = sla.svds(lin, k=self.n_components, tol=self.tol, v0=v0)
            order = np.argsort(s)[::-1]
            u, s, vt = u[:, order], s[order], vt[order]
            self.singular_values_ = s
            self._set_factors(u * s, vt.T)
            return self

    r, split = _split("ml-latest-small")
    score = _rating_metrics(split)
    dense = TruncatedSVDModel(16, solver="dense").fit(split.train)
    exact = dense.singular_values_

    def metrics(m: Any) -> dict[str, float]:
        s = np.asarray(m.singular_values_, dtype=np.float64)
        return {**score(m), "sv_rel_error": float(np.max(np.abs(s - exact) / exact))}

    def side(name: str, model: Any) -> Side:
        return Side(name, lambda: model.fit(split.train), metrics, model.get_params())

    return Case("svd", "TruncatedSVD(16) of the mean-filled matrix",
                bf.dataset_info(r, "ml-latest-small"),
                side("kmrec scalable", TruncatedSVDModel(16)),
                [side("scipy svds (ARPACK)", SvdsTruncatedSVD(16)),
                 side("sklearn TruncatedSVD", TruncatedSVDModel(16, solver="sklearn"))],
                "≤ 1.0× svds at singular values within 1e-6; "
                "faster than sklearn at better accuracy")


def case_mf(dataset: str, solver: str = "exact") -> Callable[[], Case]:
    def build() -> Case:
        from kmrec_gpu.models.lenskit_peer import LensKitBiasedMF, lenskit_available
        from kmrec_gpu.models.mf import BiasedMF
        from kmrec_gpu.models.surprise_peer import SurprisePeer, surprise_available

        r, split = _split(dataset)
        score = _rating_metrics(split)
        ours = BiasedMF(n_factors=100, n_epochs=20, random_state=SEED, solver=solver)
        peers = []
        if surprise_available():
            peer = SurprisePeer("SVD", random_state=SEED)  # 100 factors, 20 epochs
            peers.append(Side("Surprise SVD()", lambda: peer.fit(split.train), score,
                              peer.get_params()))
        if lenskit_available():  # ALS as ours: same factors and epochs, its own defaults else
            lk = LensKitBiasedMF(embedding_size=100, epochs=20, random_state=SEED)
            peers.append(Side("LensKit BiasedMFScorer (ALS)", lambda: lk.fit(split.train),
                              score, lk.get_params()))
        name, side = (("mf", "kmrec BiasedMF (ALS)") if solver == "exact" else
                      (f"mf-{solver}", f"kmrec BiasedMF (ALS, solver={solver})"))
        return Case(f"{name}-{dataset}", "biased MF, 100 factors, 20 epochs: fit",
                    bf.dataset_info(r, dataset),
                    Side(side, lambda: ours.fit(split.train), score, ours.get_params()),
                    peers, "fit ≤ Surprise SVD() and ≤ LensKit's ALS at equal or better "
                    "held-out RMSE")
    return build


def case_kmeans() -> Case:
    from kmrec_gpu.cluster.engines import make_kmeans
    from kmrec_gpu.models.liked_clusters import liked_matrix

    r, split = _split("ml-latest-small")
    liked = liked_matrix(split.train, 4.0)
    liked = liked[np.flatnonzero(np.diff(liked.indptr) > 0)]
    args = dict(n_init="auto", max_iter=300, random_state=SEED)

    def side(engine: str, label: str) -> Side:
        return Side(label, lambda: make_kmeans(engine, 15, **args).fit(liked),
                    lambda km: {"inertia": float(km.inertia_), "n_iter": int(km.n_iter_)},
                    {"engine": engine, "n_clusters": 15, **args})

    info = {**bf.dataset_info(r, "ml-latest-small"), "matrix": list(liked.shape),
            "nnz": int(liked.nnz)}
    return Case("kmeans", "K-means (k=15) of the sparse liked-movie matrix", info,
                side("kmrec", "kmrec KMeans"), [side("sklearn", "sklearn KMeans")],
                "≤ 1.0× scikit-learn")


def _sddmm_input() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    r, split = _split("ml-100k")
    t = split.train
    rng = np.random.default_rng(SEED)
    return (bf.dataset_info(r, "ml-100k"),
            {"a": rng.standard_normal((t.n_users, 100)), "b": rng.standard_normal((t.n_items, 100)),
             "rows": t.users.astype(np.int64), "cols": t.items.astype(np.int64)})


def case_sddmm_numpy() -> Case:
    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.factor.linalg import sampled_dot

    info, h = _sddmm_input()
    be = get_backend("cpu")
    ref = np.einsum("ij,ij->i", h["a"][h["rows"]], h["b"][h["cols"]])

    def err(out: Any) -> dict[str, float]:
        return {"max_abs_error": float(np.max(np.abs(np.asarray(out) - ref)))}

    def plain() -> np.ndarray:
        return np.einsum("ij,ij->i", h["a"][h["rows"]], h["b"][h["cols"]])

    return Case("sddmm-numpy", "sampled dot products, rank 100, at ml-100k's training cells",
                info, Side("kmrec sampled_dot", lambda: sampled_dot(be, h["a"], h["b"],
                                                                    h["rows"], h["cols"]), err),
                [Side("NumPy gather + einsum", plain, err)], "≤ 1.0× the NumPy gather-dot")


def case_sddmm_torch() -> Case:
    import torch

    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.factor.linalg import sampled_dot

    info, h = _sddmm_input()
    be = get_backend("cpu", library="torch")
    a, b = torch.from_numpy(h["a"]), torch.from_numpy(h["b"])
    # both sides get the cells in CSR order, as SparsePattern lists them to the scalable
    # SVD's products; the peer's pattern is built once, outside the clock, as ours caches it
    order = np.lexsort((h["cols"], h["rows"]))
    r_np, c_np = h["rows"][order], h["cols"][order]
    rows, cols = torch.from_numpy(r_np), torch.from_numpy(c_np)
    ref = np.einsum("ij,ij->i", h["a"][r_np], h["b"][c_np])
    pattern = torch.sparse_coo_tensor(
        torch.from_numpy(np.stack([r_np, c_np])),
        torch.zeros(len(order), dtype=torch.float64), (a.shape[0], b.shape[0]),
        check_invariants=True).to_sparse_csr()
    bt = b.T.contiguous()

    def err_ours(out: Any) -> dict[str, float]:
        return {"max_abs_error": float(np.max(np.abs(out.numpy() - ref)))}

    def err_peer(out: Any) -> dict[str, float]:
        return {"max_abs_error": float(np.max(np.abs(out.values().numpy() - ref)))}

    return Case("sddmm-torch", "sampled dot products on torch (CPU), rank 100, ml-100k "
                "cells in CSR order", info,
                Side("kmrec sampled_dot", lambda: sampled_dot(be, a, b, rows, cols), err_ours),
                [Side("torch.sparse.sampled_addmm",
                      lambda: torch.sparse.sampled_addmm(pattern, a, bt, beta=0.0), err_peer)],
                "≤ 1.0× torch.sparse.sampled_addmm")


class PlainTorchLoop:
    """The peer of the networks: a plain PyTorch loop of the same network — a DataLoader
    over a TensorDataset (users, movies, genre rows, ratings), shuffled, one dense Adam or
    AdamW with the estimator's learning rate and weight decay, MSE, no early stopping."""

    def __init__(self, net_class: type, net_kwargs: dict[str, Any], *, epochs: int,
                 batch_size: int, lr: float, weight_decay: float, seed: int,
                 optimizer: str = "adamw") -> None:
        self.net_class, self.net_kwargs = net_class, net_kwargs
        self.epochs, self.batch_size = epochs, batch_size
        self.lr, self.weight_decay = lr, weight_decay
        self.seed, self.optimizer = seed, optimizer

    @classmethod
    def of(cls, est: Any, **net_overrides: Any) -> PlainTorchLoop:
        """The loop of ``est``'s network, epochs, batch size and optimiser settings."""
        p = est.get_params()
        return cls(est.net_class, {**{k: p[k] for k in est.net_keys}, **net_overrides},
                   epochs=est.epochs, batch_size=est.batch_size, lr=est.lr,
                   weight_decay=est.weight_decay, seed=est.random_state,
                   optimizer=est.optimizer)

    def get_params(self) -> dict[str, Any]:
        return {"loop": "DataLoader(TensorDataset), shuffle=True", "net": self.net_class.__name__,
                **self.net_kwargs, "epochs": self.epochs, "batch_size": self.batch_size,
                "optimizer": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay}

    def _tensors(self, r: Any, users: Any, items: Any) -> tuple[Any, Any, Any]:
        import torch
        flags = torch.from_numpy(np.ascontiguousarray(r.genres.astype(np.float32)))
        u = torch.from_numpy(np.asarray(users, dtype=np.int64))
        i = torch.from_numpy(np.asarray(items, dtype=np.int64))
        return u, i, flags[i]

    def fit(self, train: Any) -> PlainTorchLoop:
        import torch
        torch.manual_seed(self.seed)
        self.net = self.net_class(train.n_users, train.n_items, len(train.genre_names),
                                  **self.net_kwargs)
        u, i, g = self._tensors(train, train.users, train.items)
        y = torch.from_numpy(train.ratings.astype(np.float32))
        gen = torch.Generator().manual_seed(self.seed)
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(u, i, g, y),
                                             batch_size=self.batch_size, shuffle=True,
                                             generator=gen)
        cls = torch.optim.AdamW if self.optimizer == "adamw" else torch.optim.Adam
        opt = cls(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.net.train()
        for _ in range(self.epochs):
            for bu, bi, bg, by in loader:
                loss = torch.nn.functional.mse_loss(self.net(bu, bi, bg), by)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return self

    def rmse(self, test: Any) -> float:
        import torch
        u, i, g = self._tensors(test, test.users, test.items)
        self.net.eval()
        with torch.no_grad():
            pred = self.net(u, i, g).numpy().astype(np.float64)
        return float(np.sqrt(np.mean((pred - test.ratings) ** 2)))


def _fit_only(cls: type, epochs: int, batch_size: int, **params: Any) -> Any:
    """A network estimator that trains exactly ``epochs`` on the CPU (no early stopping)."""
    return cls(epochs=epochs, batch_size=batch_size, patience=None, valid_fraction=0.0,
               random_state=SEED, device="cpu", **params)


def case_attention() -> Case:
    import torch

    from kmrec_gpu.neural.estimators import AttentionMLP000

    torch.set_num_threads(1)
    r, split = _split("ml-latest-small")
    score = _rating_metrics(split)
    epochs, bs = 2, 1024
    ours = _fit_only(AttentionMLP000, epochs, bs)
    peer = PlainTorchLoop.of(ours)
    n = len(split.train)
    return Case("attention", f"AttentionMLP000, {epochs} epochs of batch {bs:,} over {n:,} "
                f"training ratings: fit", bf.dataset_info(r, "ml-latest-small"),
                Side("kmrec AttentionMLP000", lambda: ours.fit(split.train), score,
                     ours.get_params()),
                [Side("plain PyTorch loop, same network", lambda: peer.fit(split.train),
                      lambda m: {"rmse": m.rmse(split.test)}, peer.get_params())],
                f"≥ 100k ratings/s at batch 1,024 (a fit ≤ {epochs * n / 100_000 * 1e3:.0f} ms)")


def case_hybrid() -> Case:
    import torch

    from kmrec_gpu.neural.estimators import HybridNN003

    torch.set_num_threads(1)
    r, split = _split("ml-latest-small")
    score = _rating_metrics(split)
    epochs, bs = 1, 32
    ours = _fit_only(HybridNN003, epochs, bs)
    peer = PlainTorchLoop.of(ours, sparse=False)  # one dense Adam over the same network
    dense = _fit_only(HybridNN003, epochs, bs, sparse=False)
    n = len(split.train)
    return Case("hybrid-32", f"HybridNN003, {epochs} epoch of batch {bs} over {n:,} training "
                "ratings: fit", bf.dataset_info(r, "ml-latest-small"),
                Side("kmrec HybridNN003 (sparse embeddings)", lambda: ours.fit(split.train),
                     score, ours.get_params()),
                [Side("plain PyTorch loop, same network, dense Adam",
                      lambda: peer.fit(split.train), lambda m: {"rmse": m.rmse(split.test)},
                      peer.get_params()),
                 Side("kmrec HybridNN003(sparse=False), dense Adam",
                      lambda: dense.fit(split.train), score, dense.get_params())],
                "batch-32 epochs not dominated by full-table Adam updates")


def case_load() -> Case:
    import zipfile

    import pandas as pd

    from kmrec_gpu.data import load
    from kmrec_gpu.data.locate import locate
    from kmrec_gpu.data.registry import get_spec

    src = locate(get_spec("ml-latest-small"), download=False)
    if src.kind != "zip":
        raise FileNotFoundError(f"{src.path}: the load case reads ml-latest-small.zip")
    zpath = src.path

    def pandas_read() -> Any:
        with zipfile.ZipFile(zpath) as z, z.open("ml-latest-small/ratings.csv") as f:
            return pd.read_csv(f)

    r = load("ml-latest-small", verify=False)
    return Case("load", "load ml-latest-small from its zip", bf.dataset_info(r, "ml-latest-small"),
                Side("kmrec data.load(verify=False)",
                     lambda: load("ml-latest-small", verify=False),
                     lambda x: {"n_ratings": len(x)}),
                [Side("pandas.read_csv(ratings.csv)", pandas_read,
                      lambda x: {"n_ratings": len(x)})],
                "≤ 1.5× pandas.read_csv")


def case_import() -> Case:
    def fresh(code: str) -> Callable[[], float]:
        # -P: no current directory on sys.path, so PYTHONPATH (a "before" checkout) decides
        # which kmrec_gpu loads, as it does in this process
        return lambda: subprocess.run([sys.executable, "-P", "-c", code], check=True)

    def none(_):
        return {}

    return Case("import", "a fresh interpreter importing the package", {"name": "none",
                                                                        "sha256": None},
                Side("import kmrec_gpu", fresh("import kmrec_gpu"), none),
                [Side("import numpy, scipy.sparse", fresh("import numpy, scipy.sparse"), none)],
                "import kmrec_gpu < 0.5 s")


CASES: dict[str, Callable[[], Case]] = {
    "svd": case_svd, "attention": case_attention, "hybrid-32": case_hybrid,
    "mf-ml-100k": case_mf("ml-100k"),
    "mf-ml-latest-small": case_mf("ml-latest-small"),
    "mf-cd-ml-100k": case_mf("ml-100k", "cd"),
    "mf-cd-ml-latest-small": case_mf("ml-latest-small", "cd"), "kmeans": case_kmeans,
    "sddmm-numpy": case_sddmm_numpy, "sddmm-torch": case_sddmm_torch, "load": case_load,
    "import": case_import,
}


# -- timing, interleaved ---------------------------------------------------------------------


def interleaved(case: Case, repeats: int, warmup: int) -> tuple[dict[str, list[float]], dict]:
    """Every side ``warmup`` untimed then ``repeats`` timed calls, rotating the order
    each round; the clock is read after the device is synchronised."""
    sides = [case.ours, *case.peers]
    times: dict[str, list[float]] = {s.name: [] for s in sides}
    last: dict[str, Any] = {}
    for rnd in range(warmup + repeats):
        k = rnd % len(sides)
        for s in sides[k:] + sides[:k]:
            case.sync()
            t0 = time.perf_counter()
            out = s.run()
            case.sync()
            dt = time.perf_counter() - t0
            if rnd >= warmup:
                times[s.name].append(dt)
            last[s.name] = out
    return times, last


def ratios(ours: list[float], peer: list[float]) -> dict[str, float]:
    rs = [a / b for a, b in zip(ours, peer)]
    return {"median": statistics.median(rs), "min": min(rs), "max": max(rs)}


def run_case(rec: bf.Recorder, case: Case, label: str, repeats: int, warmup: int) -> None:
    from kmrec_gpu.backends import get_backend
    from kmrec_gpu.timing import Timing

    bf.log(f"{case.name}: {case.what} ({warmup} warm-up + {repeats} rounds)")
    times, last = interleaved(case, repeats, warmup)
    backend = dict(get_backend("cpu").describe())
    for s in [case.ours, *case.peers]:
        t = Timing(tuple(times[s.name]), warmup)
        role = "ours" if s is case.ours else "peer"
        extra = {"case": case.name, "what": case.what, "side": s.name, "role": role,
                 "label": label, "goal": case.goal, "repeats": repeats}
        if role == "peer":
            extra["ratio"] = ratios(times[case.ours.name], times[s.name])
        rec.write(dataset=case.dataset, split=None, model={"name": s.name, "params": s.params},
                  backend=backend, metrics=s.metrics(last[s.name]), wall_time=t.as_dict(),
                  extra=extra)
        tail = (f"  ratio {extra['ratio']['median']:.2f}×" if role == "peer" else "")
        bf.log(f"  {s.name}: median {t.median_s * 1e3:.1f} ms{tail}")


# -- the rendered table ----------------------------------------------------------------------


def _metric_text(m: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k} {f(v)}" for k, v in sorted(m.items())) or "–"


def render(rows: list[dict[str, Any]], md: Path) -> None:
    from kmrec_gpu.results import write_atomic

    rows = [r for r in rows if r.get("extra", {}).get("bench") == "peers"]
    newest: dict[tuple[str, str], str] = {}  # (case, label) -> run_id of its newest run
    for r in rows:
        newest[(r["extra"]["case"], r["extra"]["label"])] = r["run_id"]
    keep = [r for r in rows if newest[(r["extra"]["case"], r["extra"]["label"])] == r["run_id"]]
    cases = list(dict.fromkeys(r["extra"]["case"] for r in keep))
    labels = sorted({r["extra"]["label"] for r in keep}, key=lambda s: (s != "before", s))
    out = ["# Ours against the peers (bench/bench_peers.py)", "",
           "Each ratio is ours / peer time per interleaved round: the median, then min–max "
           "over rounds (lower is better; below 1 we are faster). Times are medians. "
           "Metrics are measured once per side, outside the clock. Rows: "
           "`results/bench/peers.jsonl`.", ""]
    for label in labels:
        sub = [r for r in keep if r["extra"]["label"] == label]
        commands = sorted({r.get("command") or "" for r in sub})
        revs = sorted({r["git_revision"][:12] for r in sub})
        dev = sorted({r["backend"]["device_name"] for r in sub})
        out += [f"## {label}", "", f"git {', '.join(revs)}; device {', '.join(dev)}; "
                f"1 thread per process.", "", *[f"    {c}" for c in commands], "",
                "| case | ours | peer | ours median | peer median | ratio (min–max) "
                "| ours metrics | peer metrics | goal |", "|---|---|---|---|---|---|---|---|---|"]
        for c in cases:
            ours = [r for r in sub if r["extra"]["case"] == c and r["extra"]["role"] == "ours"]
            for p in (r for r in sub if r["extra"]["case"] == c and r["extra"]["role"] == "peer"):
                o = ours[0]
                rt = p["extra"]["ratio"]
                out.append(
                    f"| {c} | {o['model']['name']} | {p['model']['name']} "
                    f"| {o['wall_time']['median_s'] * 1e3:.1f} ms "
                    f"| {p['wall_time']['median_s'] * 1e3:.1f} ms "
                    f"| **{rt['median']:.2f}×** ({rt['min']:.2f}–{rt['max']:.2f}) "
                    f"| {_metric_text(o['metrics'])} | {_metric_text(p['metrics'])} "
                    f"| {p['extra']['goal']} |")
        out.append("")
    if len(labels) > 1:
        out += ["## Before → after (median ratio)", "", "| case | peer | "
                + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
        pairs = list(dict.fromkeys((r["extra"]["case"], r["model"]["name"]) for r in keep
                                   if r["extra"]["role"] == "peer"))
        for c, peer in pairs:
            cells = []
            for label in labels:
                hit = [r for r in keep if r["extra"]["case"] == c and r["extra"]["label"] == label
                       and r["model"]["name"] == peer]
                cells.append(f"{hit[0]['extra']['ratio']['median']:.2f}×" if hit else "–")
            out.append(f"| {c} | {peer} | " + " | ".join(cells) + " |")
        out.append("")
    write_atomic(md, "\n".join(out))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated, from {', '.join(CASES)} (default: all)")
    ap.add_argument("--label", default="after", help="the code state measured (before/after)")
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds (default 1)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"rows (default {OUT})")
    ap.add_argument("--md", type=Path, default=MD, help=f"rendered table (default {MD})")
    ap.add_argument("--render", action="store_true", help="only re-render --md from --out")
    args = ap.parse_args(argv)
    from kmrec_gpu.results import read_rows

    if not args.render:
        names = [c for c in args.cases.split(",") if c]
        unknown = [c for c in names if c not in CASES]
        if unknown:
            ap.error(f"unknown case(s) {unknown}; expected from {list(CASES)}")
        if args.repeats < 1 or args.warmup < 0:
            ap.error("--repeats must be >= 1 and --warmup >= 0")
        bf.set_threads(1)
        env = bf.environment(SEED, 1)
        rec = bf.Recorder(args.out, env, bench="peers")
        bf.log(bf.device_label(env))
        for name in names:
            case = CASES[name]()
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(1)
            run_case(rec, case, args.label, args.repeats, args.warmup)
    rows = read_rows(args.out, on_error="warn") if args.out.exists() else []
    render(rows, args.md)
    print(f"rows appended to {args.out}; table in {args.md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
