"""Neural-model throughput benchmark (issue 5): training ratings/s and time per epoch of the
three networks at batch 32 (as published), 1,024 and 8,192, against seed 000's own
DataLoader loop; inference pairs/s over every (user, movie) pair of ml-100k.

    KMREC_DATA_DIR=/work/shared/datasets python bench/bench_nn.py           # full run
    KMREC_DATA_DIR=/work/shared/datasets python bench/bench_nn.py --quick   # smoke run
    python bench/bench_nn.py --device cpu --threads 0 --repeats 5           # torch's threads

Training (phase "fit"): PublishedMLP000 (genres="seed000"), AttentionMLP000 and
HybridNN003 (genres="all"), each with its own default hyperparameters, fitted on the
training part of kmrec_gpu.splits.holdout(ml-latest-small, 0.1, seed=--seed) (plain
ratings; --subset keeps a seeded random subset of those rows) with patience=None,
valid_fraction=0 for 1 + --repeats epochs: the first epoch is warm-up and excluded, the
others' device-synchronised wall times (model.history_.epoch_s) give the median time per
epoch, its min/max, and the throughput = training ratings / median epoch time.

The peer: seed 000's own way of training, timed the same way in the same run on the same
rows: a torch.utils.data.DataLoader(TensorDataset(user codes, per-row genre flags,
ratings), batch_size, shuffle=True) -- one index and one collation per sample, batches
copied to the device one by one -- driving kmrec_gpu.neural.nets.PublishedMLP (the same
network, the same 19 seed-000 genre columns) with Adam lr 1e-3 and MSE, at batch 32 and
1,024 (--peer-batch-sizes). Its loss is summed on the device like ours (no per-batch
.item()), so the ratio measures the loader, not a sync. Peer and PublishedMLP000 run
interleaved epoch by epoch (ours 1, peer 1, ours 2, peer 2, ...: the peer's epoch runs in
the estimator's on_epoch callback, outside our epoch's clock, with its own generator and
RNG so our fit is unchanged), so a slow spell from other processes hits both alike; the
speed-up is the ratio of the medians (per-epoch ratios are in the rows).

Inference (phase "predict"): each model is fitted briefly (1 epoch, batch 1,024) on the
training part of holdout(ml-100k, 0.1, seed=--seed) (PublishedMLP000 with genres="all":
ml-100k's labels differ from seed 000's list), then model.predict_pairs(users, items) over
the full 943 x 1,682 grid (in the estimators' default batches: 1,024 rows on the CPU,
65,536 on CUDA; --predict-batch) is timed (1 warm-up + --repeats, median, the device synchronised
before every clock read). The call includes turning codes into device tensors, the
batched forward pass in eval mode and the copy back to host float64 (and clipping where
the model clips): what a caller pays. The held-out RMSE after that one epoch is recorded
as a sanity check, not as an accuracy figure.

Devices: --device all (default) runs the CPU and, when the one-time probe
(kmrec_gpu.backends.cuda_status) finds torch can use a GPU, CUDA; when it finds none, it
says so in stdout and in the summary and runs the CPU side. --amp (CUDA only) trains and
predicts our models under autocast (bf16 where supported, else fp16); the peer never does.
torch threads: --threads (default 1; 0 keeps torch's own default); every row records
torch.get_num_threads(). On a small machine shared with other jobs, torch's default (one
thread per core) can spin-wait on a busy core: in a smoke run on 2 shared cores, 2 threads
made a batch-1,024 epoch of the published MLP ~80x slower than 1 thread. Compare runs
only at the same --threads; on a shared machine prefer --threads 1.

Rows (one per cell; schema-checked by kmrec_gpu.results) are appended to
<out>/runs/<UTC time>-<run id>.jsonl; the summary <out>/bench/nn_throughput.md (tables per
phase, with the command, device names, git revision, torch version, threads, seed) is
written atomically. Other processes on a shared machine move absolute times; the ratios
to the interleaved peer are the robust figures.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kmrec_gpu import seeding
from kmrec_gpu.backends import cuda_status, get_backend
from kmrec_gpu.data import load
from kmrec_gpu.environment import git_revision, library_versions, peak_host_memory_bytes
from kmrec_gpu.metrics import rmse
from kmrec_gpu.neural import ESTIMATORS, NeuralRegressor
from kmrec_gpu.neural.estimators import genre_columns
from kmrec_gpu.neural.nets import PublishedMLP
from kmrec_gpu.neural.train import seeded, sync
from kmrec_gpu.ratings import Ratings
from kmrec_gpu.results import ResultWriter, make_row, write_atomic
from kmrec_gpu.splits import TTSplit, holdout
from kmrec_gpu.timing import Timing, timed

ROOT = Path(__file__).resolve().parent.parent

TRAIN_DATASET = "ml-latest-small"
PREDICT_DATASET = "ml-100k"
MODELS = ("PublishedMLP000", "AttentionMLP000", "HybridNN003")
# genres each model reads on the training set (ml-latest-small) and on ml-100k
GENRES = {"PublishedMLP000": ("seed000", "all"), "AttentionMLP000": ("all", "all"),
          "HybridNN003": ("all", "all")}
BATCH_SIZES = (32, 1024, 8192)
PEER_BATCH_SIZES = (32, 1024)
QUICK = {"batch_sizes": [1024, 8192], "repeats": 1, "subset": 10_000, "grid_users": 100}
PEER_NAME = "seed000_dataloader_peer"
PEER_LABEL = "DataLoader peer (seed 000's loop, PublishedMLP)"
T0 = time.perf_counter()


def log(msg: str) -> None:
    el = time.perf_counter() - T0
    print(f"[{int(el // 60):3d}:{el % 60:04.1f}] {msg}", flush=True)


# -- devices ---------------------------------------------------------------------------------


def pick_devices(which: str) -> tuple[list[str], str | None]:
    """The device kinds to run and, when CUDA was wanted but not found, why (in words)."""
    st = cuda_status()
    if which == "cpu":
        return ["cpu"], None
    if which == "cuda":
        if not st.torch:
            raise SystemExit(f"bench_nn: --device cuda, but torch cannot use a CUDA GPU here "
                             f"({st.summary}); use --device cpu, auto or all")
        return ["cuda"], None
    note = None if st.torch else f"No CUDA GPU found ({st.summary}); ran the CPU side only."
    if which == "auto":
        return (["cuda"] if st.torch else ["cpu"]), note
    return (["cpu", "cuda"] if st.torch else ["cpu"]), note


def backend_desc(kind: str, fallback_reason: str | None) -> dict[str, Any]:
    d = get_backend(kind, library="torch").describe()
    d["fallback_reason"] = fallback_reason if kind == "cpu" else None
    return d


def amp_dtype_name(amp: bool, kind: str) -> str | None:
    """What the estimators' autocast runs in (their own rule: CUDA only, bf16 if supported)."""
    if not amp or kind != "cuda":
        return None
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


# -- the DataLoader peer ---------------------------------------------------------------------


class DataLoaderPeer:
    """Seed 000's training loop: a DataLoader over a TensorDataset with shuffle=True, the
    published network, Adam lr 1e-3, MSE. Seeded apart from the global RNG (its own
    shuffle generator; initialisation under a forked RNG), so it can run between the
    epochs of another fit without changing that fit."""

    lr = 1e-3

    def __init__(self, train: Ratings, genre_names: tuple[str, ...], batch_size: int,
                 seed: int, device: torch.device) -> None:
        idx = [train.genre_names.index(g) for g in genre_names]
        flags = train.genres[:, idx].astype(np.float32)
        users = torch.from_numpy(train.users.astype(np.int64))
        feats = torch.from_numpy(np.ascontiguousarray(flags[train.items]))  # per-row columns
        y = torch.from_numpy(train.ratings.astype(np.float32))
        self.n = len(train)
        self.device = device
        self.batch_size = batch_size
        gen = torch.Generator().manual_seed(seeding.int_seed(seed, "bench_nn", "peer", "shuffle"))
        self.loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(users, feats, y), batch_size=batch_size,
            shuffle=True, generator=gen)
        with seeded(seeding.int_seed(seed, "bench_nn", "peer", "init"), device):
            self.net = PublishedMLP(train.n_users, train.n_items, len(genre_names)).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        self.epoch_s: list[float] = []
        self.train_loss: list[float] = []

    def params(self) -> dict[str, Any]:
        return {"loader": "DataLoader(TensorDataset(users, genre_rows, ratings), shuffle=True)",
                "num_workers": 0, "batch_size": self.batch_size, "optimizer": "adam",
                "lr": self.lr, "loss": "mse", "net": "PublishedMLP", "user_dim": 8,
                "hidden": [64, 32], "genres": "seed000", "amp": False}

    def epoch(self) -> float:
        """One epoch, timed by kmrec_gpu.timing.timed with the device synchronised before
        and after it; returns its seconds."""
        dev = self.device
        loss_value, t = timed(self._epoch, repeats=1, warmup=0, sync=lambda: sync(dev))
        dt = t.times_s[0]
        self.epoch_s.append(dt)
        self.train_loss.append(loss_value)
        return dt

    def _epoch(self) -> float:
        dev = self.device
        self.net.train()
        total = torch.zeros((), device=dev)
        for u, g, y in self.loader:
            u, g, y = u.to(dev), g.to(dev), y.to(dev)
            loss = nn.functional.mse_loss(self.net(u, u, g), y)  # the movie is not an input
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += loss.detach() * y.shape[0]
        return float(total) / self.n


# -- cells ----------------------------------------------------------------------------------


@dataclass
class Cell:
    phase: str  # "fit" or "predict"
    device: str
    model: str
    batch_size: int | None
    status: str
    timing: Timing | None = None
    throughput: float | None = None
    n: int = 0
    speedup: float | None = None  # peer median / ours median (ours' rows only)
    speedup_range: tuple[float, float] | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def dataset_desc(r: Ratings) -> dict[str, Any]:
    return {"name": r.name, "sha256": r.source.sha256 if r.source else None,
            "n_ratings": len(r), "n_users": int(r.n_users), "n_items": int(r.n_items)}


def n_parameters(net: nn.Module) -> int:
    return int(sum(p.numel() for p in net.parameters()))


def reset_device_peak(kind: str) -> None:
    if kind == "cuda":
        torch.cuda.reset_peak_memory_stats()


def peak_memory(kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"host_bytes": peak_host_memory_bytes()}
    if kind == "cuda":
        out["device_bytes"] = int(torch.cuda.max_memory_allocated())
    return out


def timing_of(epoch_s: list[float]) -> Timing:
    return Timing(tuple(epoch_s[1:]), warmup=1)


def make_estimator(name: str, genres: str, *, epochs: int, batch_size: int, seed: int,
                   kind: str, amp: bool) -> NeuralRegressor:
    return ESTIMATORS[name](epochs=epochs, batch_size=batch_size, patience=None,
                            valid_fraction=0.0, genres=genres, random_state=seed,
                            device=kind, amp=amp)


def fit_cell(ctx: Context, kind: str, name: str, bs: int, with_peer: bool) -> list[Cell]:
    """Fit ``name`` at batch ``bs`` for 1 + repeats epochs; with the peer interleaved."""
    a, train, dev = ctx.args, ctx.train, torch.device(kind)
    epochs = 1 + a.repeats
    label = f"{kind} {name} batch {bs}"
    peer = None
    if with_peer:
        peer = DataLoaderPeer(train, genre_columns(train, "seed000"), bs, a.seed, dev)

    def on_epoch(epoch: int, hist: Any) -> None:
        tag = "warm-up" if epoch == 1 else f"{epoch - 1}/{a.repeats}"
        msg = (f"  {label} epoch {epoch}/{epochs} ({tag}): {hist.epoch_s[-1]:.3f} s, "
               f"loss {hist.train_loss[-1]:.4f}")
        if peer is not None:
            dt = peer.epoch()
            msg += (f" | peer {dt:.3f} s, loss {peer.train_loss[-1]:.4f}, "
                    f"ratio {dt / hist.epoch_s[-1]:.2f}")
        log(msg)

    log(f"{label}: {len(train):,} ratings, {-(-len(train) // bs):,} batches/epoch, "
        f"1 warm-up + {a.repeats} epochs" + (" (interleaved with the DataLoader peer)"
                                             if peer else ""))
    reset_device_peak(kind)
    model = make_estimator(name, GENRES[name][0], epochs=epochs, batch_size=bs, seed=a.seed,
                           kind=kind, amp=a.amp)
    model.fit(train, on_epoch=on_epoch)
    mem = peak_memory(kind)
    hist = model.history_
    t = timing_of(hist.epoch_s)
    cells = []
    ours = Cell("fit", kind, name, bs, "ok", t, len(train) / t.median_s, len(train), extra={
        "epoch_s": hist.epoch_s, "warmup_epoch_s": hist.epoch_s[0],
        "train_loss": hist.train_loss, "n_parameters": n_parameters(model.net_),
        "params": model.get_params(), "model_name": model.name, "peak_memory": mem,
        "genres": list(model.genre_names_)})
    cells.append(ours)
    if peer is not None:
        pt = timing_of(peer.epoch_s)
        ratios = [p / o for p, o in zip(peer.epoch_s[1:], hist.epoch_s[1:])]
        ours.speedup = pt.median_s / t.median_s
        ours.speedup_range = (min(ratios), max(ratios))
        ours.extra["per_epoch_speedup"] = ratios
        cells.append(Cell("fit", kind, PEER_NAME, bs, "ok", pt, len(train) / pt.median_s,
                          len(train), extra={
                              "epoch_s": peer.epoch_s, "warmup_epoch_s": peer.epoch_s[0],
                              "train_loss": peer.train_loss,
                              "n_parameters": n_parameters(peer.net), "params": peer.params(),
                              "model_name": PEER_NAME, "peak_memory": mem,
                              "interleaved_with": name, "per_epoch_ratio_to_ours": ratios}))
        log(f"{label}: median {t.median_s:.3f} s/epoch ({len(train) / t.median_s:,.0f} "
            f"ratings/s); peer {pt.median_s:.3f} s/epoch; speed-up {ours.speedup:.2f}x")
    else:
        log(f"{label}: median {t.median_s:.3f} s/epoch ({len(train) / t.median_s:,.0f} "
            f"ratings/s)")
    return cells


def peer_alone_cell(ctx: Context, kind: str, bs: int) -> list[Cell]:
    """The peer without PublishedMLP000 beside it (when that model is not selected)."""
    a, train, dev = ctx.args, ctx.train, torch.device(kind)
    peer = DataLoaderPeer(train, genre_columns(train, "seed000"), bs, a.seed, dev)
    log(f"{kind} {PEER_NAME} batch {bs}: 1 warm-up + {a.repeats} epochs (alone)")
    reset_device_peak(kind)
    for e in range(1 + a.repeats):
        log(f"  {kind} peer batch {bs} epoch {e + 1}/{1 + a.repeats}: {peer.epoch():.3f} s")
    pt = timing_of(peer.epoch_s)
    return [Cell("fit", kind, PEER_NAME, bs, "ok", pt, len(train) / pt.median_s, len(train),
                 extra={"epoch_s": peer.epoch_s, "warmup_epoch_s": peer.epoch_s[0],
                        "train_loss": peer.train_loss, "n_parameters": n_parameters(peer.net),
                        "params": peer.params(), "model_name": PEER_NAME,
                        "peak_memory": peak_memory(kind)})]


def predict_cell(ctx: Context, kind: str, name: str) -> list[Cell]:
    a, tt = ctx.args, ctx.ptt
    users, items = ctx.grid
    dev = torch.device(kind)
    label = f"{kind} {name} predict"
    log(f"{label}: fitting 1 epoch at batch {a.predict_fit_batch} on {PREDICT_DATASET} "
        f"({len(tt.train):,} ratings)")
    model = make_estimator(name, GENRES[name][1], epochs=1, batch_size=a.predict_fit_batch,
                           seed=a.seed, kind=kind, amp=a.amp)
    model.fit(tt.train)
    test_pred = model.predict(tt.test)
    test_rmse = rmse(tt.test.ratings, test_pred)
    reset_device_peak(kind)
    pb = a.predict_batch or (65536 if kind == "cuda" else 1024)
    out, t = timed(lambda: model.predict_pairs(users, items, batch_size=pb),
                   repeats=a.repeats, warmup=1, sync=lambda: sync(dev))
    if out.shape != (len(users),) or not np.all(np.isfinite(out)):
        raise RuntimeError(f"predict_pairs returned shape {out.shape}, "
                           f"{int(np.sum(~np.isfinite(out)))} non-finite values")
    log(f"{label}: {len(users):,} pairs, median {t.median_s:.3f} s "
        f"[{t.min_s:.3f}, {t.max_s:.3f}] = {len(users) / t.median_s:,.0f} pairs/s "
        f"(held-out RMSE after 1 epoch {test_rmse:.4f})")
    return [Cell("predict", kind, name, pb, "ok", t, len(users) / t.median_s,
                 len(users), extra={
                     "test_rmse_after_fit": test_rmse, "fit_epoch_s": model.history_.epoch_s,
                     "fit_batch_size": a.predict_fit_batch, "predict_batch_size": pb,
                     "grid": [int(ctx.grid_shape[0]), int(ctx.grid_shape[1])],
                     "n_parameters": n_parameters(model.net_), "params": model.get_params(),
                     "model_name": model.name, "peak_memory": peak_memory(kind),
                     "pred_mean": float(out.mean()), "genres": list(model.genre_names_)})]


# -- rows -----------------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    command: str
    writer: ResultWriter
    backends: dict[str, dict[str, Any]]
    train: Ratings | None = None
    train_data: dict[str, Any] = field(default_factory=dict)
    train_split: dict[str, Any] = field(default_factory=dict)
    ptt: Any = None
    predict_data: dict[str, Any] = field(default_factory=dict)
    grid: tuple[np.ndarray, np.ndarray] | None = None
    grid_shape: tuple[int, int] = (0, 0)
    cells: list[Cell] = field(default_factory=list)


def write_rows(ctx: Context, cells: list[Cell]) -> None:
    a = ctx.args
    for c in cells:
        fit = c.phase == "fit"
        ex = dict(c.extra)
        params = ex.pop("params", {"batch_size": c.batch_size})
        mname = ex.pop("model_name", ESTIMATORS[c.model].name if c.model in ESTIMATORS
                       else c.model)
        mem = ex.pop("peak_memory", None)
        extra = {"bench": "nn", "estimator": c.model, "batch_size": c.batch_size,
                 "torch_threads": torch.get_num_threads(),
                 "amp_dtype": amp_dtype_name(a.amp, c.device) if c.model != PEER_NAME else None,
                 "quick": a.quick, "device_arg": a.device,
                 "cuda_probe": cuda_status().summary, "loadavg": list(os.getloadavg()), **ex}
        if fit and c.speedup is not None:
            extra["speedup_vs_dataloader_peer"] = c.speedup
            extra["speedup_range"] = list(c.speedup_range or ())
        metrics: dict[str, Any] = {}
        optional: dict[str, Any] = {"command": ctx.command, "extra": extra}
        if c.status == "ok":
            assert c.timing is not None and c.throughput is not None
            if fit:
                metrics = {"median_epoch_s": c.timing.median_s, "ratings_per_s": c.throughput,
                           "n_train": c.n, "final_train_loss": ex["train_loss"][-1]}
                if c.speedup is not None:
                    metrics["speedup_vs_dataloader_peer"] = c.speedup
            else:
                metrics = {"median_s": c.timing.median_s, "pairs_per_s": c.throughput,
                           "n_pairs": c.n, "test_rmse_after_fit": ex["test_rmse_after_fit"]}
            optional["throughput"] = {"value": c.throughput,
                                      "unit": "ratings/s" if fit else "pairs/s"}
        else:
            optional["reason"] = c.reason
        if mem is not None:
            optional["peak_memory"] = mem
        ctx.writer.append(make_row(
            run_id=ctx.writer.run_id,
            dataset=ctx.train_data if fit else ctx.predict_data,
            split=ctx.train_split if fit else ctx.ptt.summary(),
            seed=a.seed, model={"name": mname, "params": params},
            backend=ctx.backends[c.device], phase=c.phase, metrics=metrics,
            wall_time=c.timing.as_dict() if c.timing else None, status=c.status, **optional))
        ctx.cells.append(c)


def guarded(ctx: Context, phase: str, kind: str, model: str, bs: int | None, fn: Any) -> None:
    """Run one cell; a failure (out of memory, a bug) becomes a failed row, not a crash."""
    try:
        cells = fn()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # recorded in the row and printed
        reason = f"{type(exc).__name__}: {exc}"
        log(f"FAILED {kind} {model} {phase} batch {bs}: {reason}")
        cells = [Cell(phase, kind, model, bs, "failed", reason=reason)]
        if kind == "cuda":
            torch.cuda.empty_cache()
    write_rows(ctx, cells)


# -- the summary ----------------------------------------------------------------------------


def _rel(p: Path, out: Path) -> str:
    """``p`` as the results folder names it (``results/runs/...``), wherever --out was."""
    p, out = p.resolve(), out.resolve()
    return str(Path(out.name) / p.relative_to(out)) if p.is_relative_to(out) else str(p)


def markdown(ctx: Context, devices: list[str], cuda_note: str | None, elapsed: float,
             load_start: tuple[float, ...]) -> str:
    a = ctx.args
    names = {k: ctx.backends[k]["device_name"] for k in devices}
    dev_text = "; ".join(f"{k}: {v}" for k, v in names.items())
    amp_on = ", ".join(f"{k}: {amp_dtype_name(True, k)}" for k in devices if k == "cuda")
    amp_text = f"on ({amp_on or 'CUDA only: not applied on the CPU'})" if a.amp else "off"
    n_train = len(ctx.train) if ctx.train is not None else 0
    L = ["# Neural models: training and inference throughput (issue 5)", "",
         f"Command: `{ctx.command}`" + (" (quick smoke run: not a measurement)"
                                        if a.quick else ""), "",
         f"Device{'s' if len(devices) > 1 else ''}: {dev_text} ({os.cpu_count()} CPU cores). "
         f"torch {torch.__version__}, {torch.get_num_threads()} torch threads"
         f"{' (--threads)' if a.threads else ' (torch default)'}; AMP "
         + amp_text
         + f". Seed {a.seed}; git revision `{git_revision()}`; run id `{ctx.writer.run_id}`; "
         f"load average at start {tuple(round(x, 2) for x in load_start)}; run took "
         f"{elapsed / 60:.1f} min. Rows: `{_rel(ctx.writer.path, ctx.args.out)}`.", ""]
    if cuda_note:
        L += [f"**{cuda_note}**", ""]
    fit = [c for c in ctx.cells if c.phase == "fit"]
    if fit:
        sub = (f" (a seeded random subset of {n_train:,} of the "
               f"{ctx.train_split.get('n_train_full', n_train):,} training ratings)"
               if a.subset else "")
        L += ["## Training throughput (phase fit)", "",
              f"Training part of `holdout({TRAIN_DATASET}, 0.1, seed={a.seed})`: "
              f"{n_train:,} ratings{sub}. Each cell is one fit (`patience=None, "
              f"valid_fraction=0`, the model's other defaults) of 1 warm-up + {a.repeats} "
              "timed epochs; time per epoch is the device-synchronised `history_.epoch_s`, "
              "median [min, max] over the timed epochs; ratings/s = training ratings / "
              "median. The DataLoader peer is seed 000's loop (DataLoader over a "
              "TensorDataset, shuffle=True, per-sample indexing and collation; PublishedMLP, "
              "Adam 1e-3, MSE) on the same rows, run epoch by epoch interleaved with "
              "PublishedMLP000 at the same batch size; 'vs peer' = peer median / ours median "
              "(> 1: our slicing loop is faster), with the range of the per-epoch ratios.", "",
              "| device | model | batch | median s/epoch [min, max] | ratings/s | "
              "vs DataLoader peer |", "|---|---|---|---|---|---|"]
        for c in fit:
            model = PEER_LABEL if c.model == PEER_NAME else c.model
            if c.status != "ok":
                L.append(f"| {c.device} | {model} | {c.batch_size:,} | {c.status}: "
                         f"{c.reason} | | |")
                continue
            t = c.timing
            if c.model == PEER_NAME:
                vs = "reference"
            elif c.speedup is not None:
                lo, hi = c.speedup_range or (c.speedup, c.speedup)
                vs = f"**{c.speedup:.2f}x** [{lo:.2f}, {hi:.2f}]"
            else:
                vs = ""
            L.append(f"| {c.device} | {model} | {c.batch_size:,} | {t.median_s:.3f} "
                     f"[{t.min_s:.3f}, {t.max_s:.3f}] | {c.throughput:,.0f} | {vs} |")
        L.append("")
    pred = [c for c in ctx.cells if c.phase == "predict"]
    if pred:
        gu, gi = ctx.grid_shape
        full = (ctx.ptt.train.n_users, ctx.ptt.train.n_items)
        grid_text = (f"all {gu:,} x {gi:,} (user, movie) pairs of {PREDICT_DATASET}"
                     if (gu, gi) == full else
                     f"the first {gu:,} users x all {gi:,} movies of {PREDICT_DATASET} "
                     f"(--grid-users; the full grid is {full[0]:,} x {full[1]:,})")
        pbt = (f"{a.predict_batch:,}" if a.predict_batch
               else "1,024 on the CPU, 65,536 on CUDA (the estimators' defaults)")
        L += ["## Inference throughput (phase predict)", "",
              f"Each model fitted for 1 epoch at batch {a.predict_fit_batch:,} on the training "
              f"part of `holdout({PREDICT_DATASET}, 0.1, seed={a.seed})`, then "
              f"`predict_pairs(users, items, batch_size={pbt})` over {grid_text}: "
              f"1 warm-up + {a.repeats} timed calls, median [min, max]. The call includes the "
              "codes' transfer to the device, the forward passes (eval mode, no autograd) and "
              "the copy back as float64. The held-out RMSE after that single epoch is a "
              "sanity check only.", "",
              "| device | model | pairs | median s [min, max] | pairs/s | held-out RMSE "
              "(1 epoch) |", "|---|---|---|---|---|---|"]
        for c in pred:
            if c.status != "ok":
                L.append(f"| {c.device} | {c.model} | | {c.status}: {c.reason} | | |")
                continue
            t = c.timing
            L.append(f"| {c.device} | {c.model} | {c.n:,} | {t.median_s:.3f} [{t.min_s:.3f}, "
                     f"{t.max_s:.3f}] | {c.throughput:,.0f} | "
                     f"{c.extra['test_rmse_after_fit']:.4f} |")
        L.append("")
    L += ["Other processes share this machine, so absolute times wander between runs; the "
          "peer ratios come from interleaved epochs in one process and are the robust "
          "figures. Every epoch time, loss and per-epoch ratio is in the rows.", ""]
    return "\n".join(L)


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    doc = __doc__ or ""
    p = argparse.ArgumentParser(prog="bench/bench_nn.py", description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(doc.split("\n\n")[1:]))
    p.add_argument("--device", choices=("all", "auto", "cpu", "cuda"), default="all",
                   help="all (default): the CPU, plus CUDA when torch can use a GPU; auto: "
                        "CUDA if usable else the CPU; cpu; cuda (an error without a GPU)")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                   help="estimators to time (default: all three)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=None,
                   help="training batch sizes (default 32 1024 8192; quick 1024 8192)")
    p.add_argument("--peer-batch-sizes", nargs="+", type=int, default=list(PEER_BATCH_SIZES),
                   help="batch sizes at which the DataLoader peer runs, among --batch-sizes "
                        "(default 32 1024)")
    p.add_argument("--no-peer", action="store_true", help="skip the DataLoader peer")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed epochs per training cell and timed calls per inference cell, "
                        "each after 1 warm-up (default 3; quick 1)")
    p.add_argument("--subset", type=int, default=None,
                   help="train on a seeded random subset of this many training ratings "
                        "(default: all; quick 10000)")
    p.add_argument("--no-predict", action="store_true", help="skip the inference phase")
    p.add_argument("--no-fit", action="store_true", help="skip the training phase")
    p.add_argument("--grid-users", type=int, default=None,
                   help="score only the first N users of ml-100k against all its movies "
                        "(default: all 943; quick 100)")
    p.add_argument("--predict-batch", type=int, default=None,
                   help="predict_pairs batch size (default: the estimators' own, 1,024 rows "
                        "on the CPU and 65,536 on CUDA)")
    p.add_argument("--predict-fit-batch", type=int, default=1024,
                   help="batch size of the 1-epoch fit before inference (default 1024)")
    p.add_argument("--amp", action="store_true",
                   help="autocast our models on CUDA (bf16 if supported, else fp16); no "
                        "effect on the CPU or on the peer")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads(N) (default 1; 0 keeps torch's default of one "
                        "thread per core); recorded")
    p.add_argument("--seed", type=int, default=0,
                   help="split, subset, initialisation and shuffle seed (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: batches 1024 and 8192, 1 timed repeat, a 10k-row "
                        "training subset, 100 x 1682 inference pairs (explicit options win)")
    p.add_argument("--out", type=Path, default=ROOT / "results",
                   help="results folder: rows to <out>/runs/*.jsonl, summary to "
                        "<out>/bench/nn_throughput.md (default: the repo's results/)")
    p.add_argument("--md", type=Path, default=None,
                   help="summary path (default <out>/bench/nn_throughput.md)")
    a = p.parse_args(argv)
    q = a.quick
    a.batch_sizes = a.batch_sizes or (QUICK["batch_sizes"] if q else list(BATCH_SIZES))
    a.repeats = a.repeats or (QUICK["repeats"] if q else 3)
    a.subset = a.subset if a.subset is not None else (QUICK["subset"] if q else 0)
    a.grid_users = a.grid_users if a.grid_users is not None else (QUICK["grid_users"] if q
                                                                  else 0)
    if min(a.batch_sizes) < 1 or a.repeats < 1 or (a.predict_batch or 1) < 1 \
            or a.predict_fit_batch < 1 or a.subset < 0 or a.grid_users < 0:
        p.error("batch sizes and --repeats must be >= 1; --subset and --grid-users >= 0")
    if a.threads < 0:
        p.error("--threads must be >= 0")
    if a.no_peer:
        a.peer_batch_sizes = []
    a.md = a.md or a.out / "bench" / "nn_throughput.md"
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    env = ("KMREC_DATA_DIR=" + os.environ["KMREC_DATA_DIR"] + " "
           if os.environ.get("KMREC_DATA_DIR") else "")
    command = env + shlex.join(["python", "bench/bench_nn.py",
                                *(argv if argv is not None else sys.argv[1:])])
    load_start = os.getloadavg()
    devices, cuda_note = pick_devices(a.device)
    if cuda_note:
        log(cuda_note)
    fallback = (f"auto: no usable CUDA GPU ({cuda_status().summary})"
                if cuda_note and a.device == "auto" else None)
    backends = {k: backend_desc(k, fallback) for k in devices}
    writer = ResultWriter(a.out)
    ctx = Context(a, command, writer, backends)
    versions = library_versions()
    names = ", ".join(f"{k} ({v['device_name']})" for k, v in backends.items())
    log(f"bench_nn: devices {names}"
        f"; torch {torch.__version__}, {torch.get_num_threads()} threads; seed {a.seed}; "
        f"git {git_revision()}; numpy {versions.get('numpy')}; run id {writer.run_id}")
    log(f"rows -> {writer.path}")

    if not a.no_fit:
        r = load(TRAIN_DATASET)
        tt = holdout(r, 0.1, seed=a.seed)
        train = tt.train
        split = tt.summary()
        if a.subset and a.subset < len(train):
            keep = np.sort(seeding.rng(a.seed, "bench_nn", "subset").choice(
                len(train), a.subset, replace=False))
            train = train.subset(keep)
            split = {**TTSplit(train, tt.test, tt.method, tt.params).summary(),
                     "n_train_full": split["n_train"],
                     "subset": {"rows": len(train), "stream": "bench_nn/subset"}}
        ctx.train, ctx.train_split, ctx.train_data = train, split, dataset_desc(r)
        log(f"train: {TRAIN_DATASET} holdout 0.1 seed {a.seed}: {len(train):,} ratings")
    if not a.no_predict:
        r100 = load(PREDICT_DATASET)
        ctx.ptt = holdout(r100, 0.1, seed=a.seed)
        nu = min(a.grid_users, r100.n_users) if a.grid_users else r100.n_users
        ctx.grid_shape = (nu, r100.n_items)
        ctx.grid = (np.repeat(np.arange(nu, dtype=np.int64), r100.n_items),
                    np.tile(np.arange(r100.n_items, dtype=np.int64), nu))
        ctx.predict_data = dataset_desc(r100)
        log(f"predict: {PREDICT_DATASET} grid {nu:,} x {r100.n_items:,} = "
            f"{len(ctx.grid[0]):,} pairs")

    for kind in devices:
        if not a.no_fit:
            for bs in a.batch_sizes:
                peer_here = bs in a.peer_batch_sizes
                for name in a.models:
                    with_peer = peer_here and name == "PublishedMLP000"
                    guarded(ctx, "fit", kind, name, bs,
                            lambda k=kind, n=name, b=bs, w=with_peer: fit_cell(ctx, k, n, b, w))
                if peer_here and "PublishedMLP000" not in a.models:
                    guarded(ctx, "fit", kind, PEER_NAME, bs,
                            lambda k=kind, b=bs: peer_alone_cell(ctx, k, b))
        if not a.no_predict:
            for name in a.models:
                guarded(ctx, "predict", kind, name, a.predict_batch,
                        lambda k=kind, n=name: predict_cell(ctx, k, n))

    elapsed = time.perf_counter() - T0
    text = markdown(ctx, devices, cuda_note, elapsed, load_start)
    write_atomic(a.md, text)
    print(text, flush=True)
    n_failed = sum(c.status != "ok" for c in ctx.cells)
    log(f"{len(ctx.cells)} rows ({n_failed} failed) -> {writer.path}; summary -> {a.md}; "
        f"{elapsed / 60:.1f} min")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
