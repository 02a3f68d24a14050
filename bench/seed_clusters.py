"""Seeds 000/002/004's clusterings reproduced, and their recommenders evaluated held out.

    KMREC_DATA_DIR=/work/shared/datasets python bench/seed_clusters.py --seeds 0 1 2

(a) seed 002 as published on its 447-row file (scikit-learn KMeans with the article's
settings, then our engine); (b) seed 004's k scan and k = 7 sizes on ml-latest-small;
(c) seed 000's movie clusters on the genre one-hot; (d) held-out ranking metrics of the
clustering recommenders against popularity and random, per-user 80/20 splits, several
seeds, user-level bootstrap intervals. Rows go to <out>/runs/*.jsonl, a summary to
<out>/seed_clusters.md, verdicts to results/claims.json.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from seed_clusters_parts import (Context, evaluate_held_out, seed000_movies,  # noqa: E402
                                 seed002_article, seed004_pivot, summarise_held_out)
from seed_clusters_report import write_claims, write_markdown  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--datasets", nargs="+",
                   default=["ml-latest-small", "ml-100k", "synthetic-ml-100k"],
                   help="datasets for the held-out evaluation (d)")
    p.add_argument("--out", type=Path, default=ROOT / "results",
                   help="results folder: runs/*.jsonl and seed_clusters.md go here")
    p.add_argument("--claims", type=Path, default=None,
                   help="claims file to update (default results/claims.json)")
    p.add_argument("--no-claims", action="store_true", help="do not touch the claims file")
    p.add_argument("--k", type=int, default=10, help="list length for the ranking metrics")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    args = p.parse_args(argv)
    if any(s < 0 for s in args.seeds):
        p.error(f"seeds must be non-negative, got {args.seeds}")
    if args.k < 1 or args.bootstrap < 10:
        p.error("need --k >= 1 and --bootstrap >= 10")

    from rich.console import Console
    from rich.progress import Progress

    from kmrec_gpu.results import ResultWriter

    env = "KMREC_DATA_DIR=" + os.environ.get("KMREC_DATA_DIR", "") + " " \
        if os.environ.get("KMREC_DATA_DIR") else ""
    command = env + shlex.join(["python", "bench/seed_clusters.py", *(argv if argv is not None
                                                                       else sys.argv[1:])])
    console = Console()
    writer = ResultWriter(args.out)
    ctx = Context(writer=writer, command=command, seeds=args.seeds, k=args.k,
                  n_boot=args.bootstrap, out_dir=args.out)
    t0 = time.perf_counter()
    with Progress(console=console, transient=False) as prog:
        a = seed002_article(ctx, prog)
        b = seed004_pivot(ctx, prog)
        c = seed000_movies(ctx, prog)
        d = evaluate_held_out(ctx, prog, args.datasets)
    summary = summarise_held_out(ctx, d)
    md = write_markdown(args.out / "seed_clusters.md", ctx, a, b, c, summary,
                        time.perf_counter() - t0)
    console.print(md)
    if not args.no_claims:
        write_claims(args.claims, ctx, a, b, summary, writer.path, args.out / "seed_clusters.md")
    console.print(f"rows: {writer.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
