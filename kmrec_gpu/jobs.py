"""The main job: bias baselines on a held-out split, every metric, rows appended.

This is what ``kmrec run`` (and the README's first command) does. It is a real
benchmark cell: load (timed), split (seeded), fit on train only with warm-up and
repeats, predict the held-out rows, score them with bootstrap intervals, record.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.backends import get_backend
from kmrec_gpu.data import load
from kmrec_gpu.environment import peak_host_memory_bytes
from kmrec_gpu.metrics import bootstrap_ci, rating_metrics, rmse
from kmrec_gpu.models.baseline import BiasBaseline, GlobalMean
from kmrec_gpu.results import ResultWriter, make_row
from kmrec_gpu.splits import make_split
from kmrec_gpu.timing import timed

MODELS = {"global_mean": GlobalMean, "bias_baseline": BiasBaseline}


def run_baseline(*, dataset: str = "ml-latest-small", path: str | None = None,
                 split: str = "holdout", test_fraction: float = 0.1, seed: int = 0,
                 backend: str = "auto", repeats: int = 5, n_boot: int = 1000,
                 results_dir: str | Path = "results", command: str | None = None,
                 quiet: bool = False) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    # a pipe or CI log reports 80 columns; the table needs more to stay readable
    console = Console(stderr=False, quiet=quiet, width=None if sys.stdout.isatty() else 120)
    be = get_backend(backend)
    bdesc = be.describe()
    if bdesc.get("fallback_reason"):
        console.print(f"[yellow]backend:[/] {bdesc['fallback_reason']}")

    t0 = time.perf_counter()
    ratings = load(dataset, path, seed=seed)
    load_s = time.perf_counter() - t0
    console.print(f"loaded {ratings.name}: {len(ratings):,} ratings, {ratings.n_rated_users:,} "
                  f"users, {ratings.n_rated_items:,} items in {load_s:.2f} s "
                  f"(from {ratings.source.path if ratings.source else 'the generator'})")

    params = {"test_fraction": test_fraction} if split in ("holdout", "temporal") else (
        {"fraction": test_fraction} if split == "per_user" else {"k": 1})
    tt = make_split(ratings, split, seed=seed, **params)
    ssum = tt.summary()
    dset = {"name": ratings.name, "sha256": ratings.source.sha256 if ratings.source else None,
            "n_ratings": len(ratings), "source": ratings.source.path if ratings.source else None,
            **({"generator": ratings.meta} if ratings.source is None else {})}
    writer = ResultWriter(results_dir)
    common = dict(run_id=writer.run_id, dataset=dset, split=ssum, seed=seed, backend=bdesc,
                  command=command)
    writer.append(make_row(**common, model={"name": "loader", "params": {}}, phase="load",
                           wall_time={"median_s": load_s, "repeats": 1, "warmup": 0},
                           peak_memory={"host_bytes": peak_host_memory_bytes()}))

    table = Table("model", "RMSE [95% CI]", "MAE", "exact", "±0.5", "±1.0", "rel. acc.",
                  "fit median", title=f"{ratings.name}, {split} split, seed {seed}")
    summary: dict[str, Any] = {"results_file": str(writer.path), "models": {}}
    for name, cls in MODELS.items():
        model, t_fit = timed(lambda cls=cls: cls().fit(tt.train), repeats=repeats,
                             sync=be.synchronize)
        pred, t_pred = timed(lambda m=model: m.predict(tt.test), repeats=repeats,
                             sync=be.synchronize)
        y = tt.test.ratings.astype(np.float64)
        m = rating_metrics(y, pred, scale=ratings.scale)
        point, lo, hi = bootstrap_ci(rmse, y, pred, n_resamples=n_boot,
                                     seed=seeding.int_seed(seed, "bootstrap", name))
        metrics = {**m, "rmse_ci_low": lo, "rmse_ci_high": hi, "n_test": len(y)}
        mdesc = {"name": name, "params": model.get_params()}
        mem = {"host_bytes": peak_host_memory_bytes()}
        writer.append(make_row(**common, model=mdesc, phase="fit", wall_time=t_fit.as_dict(),
                               throughput={"value": len(tt.train) / t_fit.median_s,
                                           "unit": "ratings/s"}, peak_memory=mem))
        writer.append(make_row(**common, model=mdesc, phase="predict", metrics=metrics,
                               wall_time=t_pred.as_dict(),
                               throughput={"value": len(y) / t_pred.median_s,
                                           "unit": "predictions/s"}, peak_memory=mem))
        table.add_row(name, f"{point:.4f} [{lo:.4f}, {hi:.4f}]", f"{m['mae']:.4f}",
                      f"{m['exact_match']:.3f}", f"{m['within_0.5']:.3f}",
                      f"{m['within_1.0']:.3f}", f"{m['relative_accuracy']:.3f}",
                      f"{t_fit.median_s * 1e3:.2f} ms")
        summary["models"][name] = metrics
    console.print(table)
    console.print(f"split: {ssum['n_train']:,} train / {ssum['n_test']:,} test ratings, "
                  f"{ssum['cold_rows']} cold test rows; backend {bdesc['name']} "
                  f"({bdesc['library']}, {bdesc['device_name']})")
    console.print(f"results appended to {writer.path}")
    return summary
