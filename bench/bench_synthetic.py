"""Time the synthetic generator at several sizes; print a table, append result rows.

    python bench/bench_synthetic.py --sizes 1e6 1e7 2.5e7 --repeats 3

Each size runs in its own child process, so the peak RSS it reports belongs to that size
alone (a process's peak never goes down) and earlier sizes' memory cannot inflate it.
Generating is timed by kmrec_gpu.timing.timed_budget (--warmup untimed runs, then
--repeats timed ones; each run's output is dropped before the next, so two never share
the peak). One schema-checked row per size (kmrec_gpu.results.make_row, phase "load": the
harness's phase for making a synthetic set) is appended to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "results" / "bench" / "synthetic.jsonl"


def shape_for(n_ratings: int) -> tuple[int, int]:
    """(users, items) for a size: a preset's when one has it, else ml-25m/32m's shape
    (~160 ratings a user, ~0.4 items a user, at least 2,000 items)."""
    from kmrec_gpu.data.synthetic import SYNTHETIC_PRESETS

    for spec in SYNTHETIC_PRESETS.values():
        if spec.n_ratings == n_ratings and spec.n_users * 20 <= n_ratings:
            return spec.n_users, spec.n_items
    users = max(1, math.ceil(n_ratings / 160))
    return users, max(math.ceil(0.4 * users), min(n_ratings, 2_000))


def child(n_ratings: int, repeats: int, warmup: int, seed: int) -> dict:
    import numpy as np

    from kmrec_gpu.data.synthetic import synthetic
    from kmrec_gpu.environment import peak_host_memory_bytes
    from kmrec_gpu.timing import timed_budget

    n_users, n_items = shape_for(n_ratings)
    baseline = peak_host_memory_bytes()
    r, t = timed_budget(lambda: synthetic(n_users, n_items, n_ratings, seed=seed),
                        warmup=warmup, repeats=repeats, budget_s=None, sync=lambda: None)
    # a cheap fingerprint so runs can be compared across machines and revisions
    check = float(np.float64(r.ratings[:: max(1, len(r) // 100_000)].sum()))
    return {
        "n_ratings": n_ratings, "n_users": n_users, "n_items": n_items, "seed": seed,
        "name": r.name, "generator": r.meta, "timing": t.as_dict(),
        "ratings_per_s": n_ratings / t.median_s,
        "spread": (t.max_s - t.min_s) / t.median_s,
        "peak_rss_bytes": peak_host_memory_bytes(), "baseline_rss_bytes": baseline,
        "output_bytes": r.nbytes, "ratings_fingerprint": check,
    }


def device() -> dict:
    from kmrec_gpu.environment import cpu_name

    return {"kind": "cpu", "name": cpu_name(), "processor": platform.processor(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count()}


def make_result_row(res: dict, run_id: str, dev: dict, command: str) -> dict:
    """The schema-checked row of one size's measurement (``res`` from :func:`child`)."""
    from kmrec_gpu.results import make_row

    return make_row(
        run_id=run_id,
        dataset={"name": res["name"], "sha256": None, "n_ratings": res["n_ratings"],
                 "n_users": res["n_users"], "n_items": res["n_items"],
                 "generator": res["generator"]},
        split=None, seed=res["seed"],
        model={"name": "synthetic generator",
               "params": {k: res[k] for k in ("n_users", "n_items", "n_ratings")}},
        backend={"name": "cpu", "library": "numpy", "device_name": dev["name"]},
        phase="load",
        metrics={k: res[k] for k in ("ratings_per_s", "spread", "output_bytes",
                                     "ratings_fingerprint")},
        wall_time=res["timing"],
        throughput={"value": res["ratings_per_s"], "unit": "ratings/s"},
        peak_memory={"host_bytes": res["peak_rss_bytes"],
                     "host_baseline_bytes": res["baseline_rss_bytes"]},
        command=command, extra={"bench": "synthetic", "device": dev})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7, 2.5e7],
                   help="numbers of ratings (1e6 style accepted)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT}")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        p.error("need --repeats >= 1 and --warmup >= 0")
    sizes = [int(s) for s in args.sizes]

    if args.child:
        print(json.dumps(child(sizes[0], args.repeats, args.warmup, args.seed)))
        return 0

    from rich.console import Console
    from rich.table import Table

    from kmrec_gpu.results import append_row, new_run_id

    dev = device()
    run_id = new_run_id()
    command = shlex.join([sys.executable, *(sys.argv if argv is None
                                            else [sys.argv[0], *argv])])
    table = Table("ratings", "users", "items", "median s", "min-max s", "M/s",
                  "peak RSS GiB", "output GiB",
                  title=f"synthetic generator on {dev['name']} ({dev['threads']} threads)")
    for n in sizes:
        cmd = [sys.executable, __file__, "--child", "--sizes", str(n), "--repeats",
               str(args.repeats), "--warmup", str(args.warmup), "--seed", str(args.seed)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        append_row(args.out, make_result_row(res, run_id, dev, command))
        t = res["timing"]
        gib = 2.0**30
        table.add_row(f"{n:,}", f"{res['n_users']:,}", f"{res['n_items']:,}",
                      f"{t['median_s']:.2f}", f"{t['min_s']:.2f}-{t['max_s']:.2f}",
                      f"{res['ratings_per_s'] / 1e6:.2f}", f"{res['peak_rss_bytes'] / gib:.2f}",
                      f"{res['output_bytes'] / gib:.2f}")
    Console().print(table)
    print(f"appended {len(sizes)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
