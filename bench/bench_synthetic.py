"""Time the synthetic generator at several sizes; print a table, append JSON lines.

    python bench/bench_synthetic.py --sizes 1e6 1e7 2.5e7 --repeats 3

Each size runs in its own child process, so the peak RSS it reports belongs to that size
alone (a process's peak never goes down) and earlier sizes' memory cannot inflate it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
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
    from kmrec_gpu.timing import Timing

    n_users, n_items = shape_for(n_ratings)
    baseline = peak_host_memory_bytes()
    times, nbytes, check = [], 0, None
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        r = synthetic(n_users, n_items, n_ratings, seed=seed)
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
        nbytes = r.nbytes
        # a cheap fingerprint so runs can be compared across machines and revisions
        check = float(np.float64(r.ratings[:: max(1, len(r) // 100_000)].sum()))
        del r  # before the next run, or two outputs would share the peak
    t = Timing(tuple(times), warmup)
    return {
        "n_ratings": n_ratings, "n_users": n_users, "n_items": n_items, "seed": seed,
        **t.as_dict(), "ratings_per_s": n_ratings / t.median_s,
        "spread": (t.max_s - t.min_s) / t.median_s,
        "peak_rss_bytes": peak_host_memory_bytes(), "baseline_rss_bytes": baseline,
        "output_bytes": nbytes, "ratings_fingerprint": check,
    }


def device() -> dict:
    from kmrec_gpu.environment import cpu_name, git_revision, library_versions

    return {"kind": "cpu", "name": cpu_name(), "processor": platform.processor(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "threads": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "git": git_revision(), "versions": library_versions()}


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

    dev = device()
    args.out.parent.mkdir(parents=True, exist_ok=True)
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
        row = {"bench": "synthetic", "time": datetime.now(timezone.utc).isoformat(),
               **json.loads(proc.stdout.strip().splitlines()[-1]), "device": dev}
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        gib = 2.0**30
        table.add_row(f"{n:,}", f"{row['n_users']:,}", f"{row['n_items']:,}",
                      f"{row['median_s']:.2f}", f"{row['min_s']:.2f}-{row['max_s']:.2f}",
                      f"{row['ratings_per_s'] / 1e6:.2f}", f"{row['peak_rss_bytes'] / gib:.2f}",
                      f"{row['output_bytes'] / gib:.2f}")
    Console().print(table)
    print(f"appended {len(sizes)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
