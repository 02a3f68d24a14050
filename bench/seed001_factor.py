"""Seed 001's RMSE claims (0.918 truncated SVD and NMF, 0.898 iterative SVD), checked.

    KMREC_DATA_DIR=/work/shared/datasets python bench/seed001_factor.py --seeds 0 1 2

The paper's split and code are unknown; the protocol is inferred (CLAIMS.md, 001): a
random 90/10 split of rating cells, missing cells filled with the *training* user mean,
min-max scaling fitted on train, RMSE on the held-out cells on the 0.5–5 scale.

Per dataset and seed: truncated SVD (16) and NMF (15), ours (scalable) and scikit-learn's
defaults on the dense matrix; iterative SVD (16) with every iteration's held-out RMSE,
the iteration count chosen on a validation split carved from train, and — labelled as
optimistic — the count that is best on the test set; soft-impute with its shrinkage and
iterations chosen on the validation split; the user/item bias baseline for context.

"As published" = seed 0 on ml-latest-small: scikit-learn's TruncatedSVD/NMF (what the
paper's authors would have called) and iterative SVD at its best-on-test iteration.
"Held out" = our models over all seeds, iteration counts from validation, RMSE on the
pooled test rows of all seeds with a (seed, user)-grouped bootstrap interval.
Verdict rule (the harness's, as for 004): it rests on the held-out figure — *reproduced*
when the claimed RMSE lies inside the held-out interval on ml-latest-small or within 0.01
of its point estimate; otherwise *not reproduced*, with the direction stated.

Rows go to <out>/runs/*.jsonl, the summary to <out>/seed001_factor.md, the verdicts to
results/claims.json (001-truncated-svd, 001-nmf, 001-iterative-svd).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kmrec_gpu import data, splits  # noqa: E402
from kmrec_gpu.backends import get_backend  # noqa: E402
from kmrec_gpu.claims import DEFAULT_PATH, update_claim  # noqa: E402
from kmrec_gpu.environment import cpu_name, git_revision  # noqa: E402
from kmrec_gpu.factor import IterativeSVDModel, NMFModel, TruncatedSVDModel  # noqa: E402
from kmrec_gpu.factor.segments import latent_segments  # noqa: E402
from kmrec_gpu.metrics import pooled_bootstrap_ci, rating_metrics, rmse  # noqa: E402
from kmrec_gpu.models.baseline import BiasBaseline  # noqa: E402
from kmrec_gpu.results import ResultWriter, make_row, write_atomic  # noqa: E402

CLAIMED = {"truncated-svd": 0.918, "nmf": 0.918, "iterative-svd": 0.898}
SOFT_GRID = (1.5, 3.0)  # shrinkage on the min-max scale; chosen on validation


def _curve(model, X) -> list[float]:
    return [rmse(X.ratings, p) for p in model.staged_predict(X)]


def run_seed(r, seed: int, args, emit) -> dict[str, np.ndarray]:
    """Test predictions of every model for one split (and rows via ``emit``)."""
    split = splits.holdout(r, 0.1, seed=seed)
    inner = splits.validation_split(split.train, 0.1, seed=seed)
    train, test = split.train, split.test
    preds: dict[str, np.ndarray] = {}
    base = dict(minmax=True, random_state=seed)

    def fit(name, model, params, **extra):
        t = time.perf_counter()
        model.fit(train)
        wall = time.perf_counter() - t
        preds[name] = model.predict(test)
        emit(name, params, split, seed, preds[name], test, wall, extra)
        return model

    tsvd = fit("truncated-svd-16", TruncatedSVDModel(16, **base), {"n_components": 16, **base},
               n_iter=None)
    fit("truncated-svd-16-sklearn", TruncatedSVDModel(16, solver="sklearn", **base),
        {"n_components": 16, "solver": "sklearn", **base})
    fit("nmf-15", NMFModel(15, **base), {"n_components": 15, **base})
    fit("nmf-15-sklearn", NMFModel(15, solver="sklearn", **base),
        {"n_components": 15, "solver": "sklearn", **base})
    fit("bias-baseline", BiasBaseline(), {})

    k = args.max_iter
    it_params = dict(n_components=16, max_iter=k, tol=0.0, keep_history=True, **base)
    t = time.perf_counter()
    val_curve = _curve(IterativeSVDModel(**it_params).fit(inner.train), inner.test)
    full = IterativeSVDModel(**it_params).fit(train)
    wall = time.perf_counter() - t
    staged = list(full.staged_predict(test))
    test_curve = [rmse(test.ratings, p) for p in staged]
    chosen, oracle = int(np.argmin(val_curve)), int(np.argmin(test_curve))
    preds["iterative-svd-16"] = staged[chosen]
    preds["iterative-svd-16-test-selected"] = staged[oracle]
    curves = {"validation": val_curve, "test": test_curve}
    emit("iterative-svd-16", {**it_params, "n_iter_chosen_on": "validation"}, split, seed,
         staged[chosen], test, wall, {"n_iter": chosen + 1, "curves": curves,
                                      "power_iters": full.power_iters_})
    emit("iterative-svd-16-test-selected", {**it_params, "n_iter_chosen_on": "test"}, split,
         seed, staged[oracle], test, wall,
         {"n_iter": oracle + 1, "optimistic": "iteration count picked on the test set"})

    t = time.perf_counter()
    best = None
    for lam in SOFT_GRID:
        c = _curve(IterativeSVDModel(**it_params, shrinkage=lam).fit(inner.train), inner.test)
        j = int(np.argmin(c))
        if best is None or c[j] < best[0]:
            best = (c[j], lam, j)
    _, lam, j = best
    soft = IterativeSVDModel(**{**it_params, "max_iter": j + 1, "keep_history": False},
                             shrinkage=lam).fit(train)
    preds["soft-impute-16"] = soft.predict(test)
    emit("soft-impute-16", {**it_params, "shrinkage": lam, "max_iter": j + 1,
                            "chosen_on": "validation", "grid": list(SOFT_GRID)},
         split, seed, preds["soft-impute-16"], test, time.perf_counter() - t,
         {"n_iter": j + 1})

    if seed == args.seeds[0]:
        _, seg = latent_segments(tsvd, train, args.segments, random_state=seed)
        preds["_segments"] = seg  # for the report only
    preds["_curves"] = curves
    preds["_test"] = test
    return preds


def pooled(per_seed: list[dict], name: str, n_boot: int, seed: int) -> tuple[float, float, float]:
    return pooled_bootstrap_ci(rmse, [(p["_test"].ratings, p[name], p["_test"].users)
                                      for p in per_seed], n_resamples=n_boot, seed=seed)


def verdict(claimed: float, published: float, held: tuple[float, float, float]) -> tuple[str, str]:
    inside = held[1] <= claimed <= held[2]
    if inside or abs(held[0] - claimed) <= 0.01:
        return "reproduced", ("the claimed value lies inside the held-out interval" if inside
                              else "the held-out figure is within 0.01 of the claim")
    side = "lower (better)" if held[0] < claimed else "higher (worse)"
    return "not reproduced", (f"our figures are {side} than the claim: as published "
                              f"{published:.4f}, held out {held[0]:.4f} [{held[1]:.4f}, "
                              f"{held[2]:.4f}]")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--datasets", nargs="+", default=["ml-latest-small", "ml-100k"])
    p.add_argument("--max-iter", type=int, default=25,
                   help="iterations recorded for iterative SVD and soft-impute")
    p.add_argument("--segments", type=int, default=6, help="K-means segments of latent users")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--claims", type=Path, default=DEFAULT_PATH,
                   help="claims file to update (default: results/claims.json)")
    p.add_argument("--no-claims", action="store_true", help="do not touch the claims file")
    p.add_argument("--quick", action="store_true",
                   help="one seed, ml-100k, 5 iterations, 100 resamples (smoke test)")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.datasets, args.max_iter, args.bootstrap = [0], ["ml-100k"], 5, 100
        args.no_claims = True
    if any(s < 0 for s in args.seeds) or args.max_iter < 1:
        p.error("seeds must be >= 0 and --max-iter >= 1")

    from rich.console import Console

    console = Console()
    env = (f"KMREC_DATA_DIR={os.environ['KMREC_DATA_DIR']} "
           if os.environ.get("KMREC_DATA_DIR") else "")
    command = env + shlex.join(["python", "bench/seed001_factor.py",
                                *(argv if argv is not None else sys.argv[1:])])
    writer = ResultWriter(args.out)
    backend = get_backend("cpu").describe()

    def emitter(r):
        ds = {"name": r.name, "sha256": r.source.sha256 if r.source else None,
              "n_ratings": len(r)}

        def emit(name, params, split, seed, pred, test, wall, extra):
            m = rating_metrics(test.ratings, pred)
            writer.append(make_row(
                run_id=writer.run_id, dataset=ds, split=split.summary(), seed=seed,
                model={"name": name, "params": params}, backend=backend, phase="evaluate",
                metrics=m, wall_time={"fit_s": wall}, command=command, extra=extra or {}))
            console.print(f"  {r.name} seed {seed} {name:32s} RMSE {m['rmse']:.4f} "
                          f"({wall:.1f} s)")
        return emit

    t0 = time.perf_counter()
    results: dict[str, list[dict]] = {}
    for name in args.datasets:
        r = data.load(name)
        console.print(f"[bold]{name}[/]: {len(r):,} ratings, {r.n_rated_users} users")
        results[name] = [run_seed(r, s, args, emitter(r)) for s in args.seeds]
    elapsed = time.perf_counter() - t0

    models = [k for k in results[args.datasets[0]][0] if not k.startswith("_")]
    table = {ds: {m: pooled(per, m, args.bootstrap, args.seeds[0]) for m in models}
             for ds, per in results.items()}
    per_seed = {ds: {m: [rmse(p["_test"].ratings, p[m]) for p in per] for m in models}
                for ds, per in results.items()}
    md = report(args, command, table, per_seed, results, elapsed)
    write_atomic(args.out / "seed001_factor.md", md)
    console.print(md)
    if not args.no_claims and "ml-latest-small" in results:
        write_claims(args, table, per_seed, writer.path)
    console.print(f"rows: {writer.path}")
    return 0


def _fmt(t) -> str:
    return f"{t[0]:.4f} [{t[1]:.4f}, {t[2]:.4f}]"


def report(args, command, table, per_seed, results, elapsed) -> str:
    first = args.datasets[0]
    lines = [
        "# Seed 001: truncated SVD, NMF and iterative SVD on the mean-filled matrix",
        "",
        f"Command: `{command}`  ",
        f"Device: {cpu_name()} (CPU, NumPy backend). Git revision: {git_revision()}. "
        f"Seeds: {args.seeds}. Run time: {elapsed / 60:.1f} min.",
        "",
        "Protocol (inferred; the paper's split is unknown): random 90/10 split of rating "
        "cells, missing cells = the user's mean over the training ratings, min-max scaling "
        "fitted on train, RMSE on the held-out cells on the original scale. Iterative SVD and "
        f"soft-impute record {args.max_iter} iterations; their iteration counts (and "
        f"soft-impute's shrinkage from {list(SOFT_GRID)}) are chosen on a 10% validation "
        "split carved from train. The *test-selected* row picks the iteration on the test set "
        "itself: optimistic, shown because it is a common way such numbers are produced.",
        "",
        "RMSE on the pooled test rows of all seeds, with a 95% bootstrap interval "
        "(resampling (seed, user) groups); per-seed RMSEs after.",
        "",
        "| model | " + " | ".join(table) + " | per seed (" + first + ") |",
        "|---|" + "---|" * len(table) + "---|",
    ]
    for m in table[first]:
        cells = " | ".join(_fmt(table[ds][m]) for ds in table)
        ps = ", ".join(f"{v:.4f}" for v in per_seed[first][m])
        lines.append(f"| {m} | {cells} | {ps} |")
    lines += ["", "Claimed: truncated SVD 0.918, NMF 0.918, iterative SVD 0.898.", ""]
    for ds, per in results.items():
        c = per[0]["_curves"]
        lines += [f"Iterative SVD held-out RMSE by iteration, {ds}, seed {args.seeds[0]} "
                  "(validation / test):", "",
                  "| iteration | " + " | ".join(str(i + 1) for i in range(len(c["test"])))
                  + " |", "|---|" + "---|" * len(c["test"]),
                  "| validation | " + " | ".join(f"{v:.4f}" for v in c["validation"]) + " |",
                  "| test | " + " | ".join(f"{v:.4f}" for v in c["test"]) + " |", ""]
        seg = per[0].get("_segments")
        if seg:
            lines += [f"K-means ({len(seg)} segments) on the truncated-SVD user factors, {ds}, "
                      f"seed {args.seeds[0]}:", "",
                      "| segment | users | ratings | mean rating | top genres (lift) |",
                      "|---|---|---|---|---|"]
            for s in seg:
                g = ", ".join(f"{n} {v:.2f}" for n, v in s.get("top_genres", []))
                lines.append(f"| {s['segment']} | {s['users']} | {s['ratings']} | "
                             f"{s['mean_rating']:.3f} | {g} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def write_claims(args, table, per_seed, rows_path) -> None:
    ds = "ml-latest-small"
    s0 = args.seeds[0]
    pub = {"truncated-svd": ("truncated-svd-16-sklearn", "truncated-svd-16"),
           "nmf": ("nmf-15-sklearn", "nmf-15"),
           "iterative-svd": ("iterative-svd-16-test-selected", "iterative-svd-16")}
    text = {"truncated-svd": "Truncated SVD with 16 components on the user-mean-filled rating "
                             "matrix reaches RMSE 0.918.",
            "nmf": "NMF with 15 components on the user-mean-filled rating matrix reaches "
                   "RMSE 0.918.",
            "iterative-svd": "Iterative SVD (re-impute missing cells from the rank-r "
                             "reconstruction, repeat) reaches RMSE 0.898."}
    evidence = [str(Path("results") / rows_path.relative_to(args.out)), "results/seed001_factor.md",
                "python bench/seed001_factor.py --seeds " + " ".join(map(str, args.seeds))]
    for key, (published_model, held_model) in pub.items():
        published = per_seed[ds][published_model][0]
        held = table[ds][held_model]
        word, why = verdict(CLAIMED[key], published, held)
        other = "; ".join(f"{d} {_fmt(table[d][held_model])}" for d in table if d != ds)
        context = (f"For context on the same splits (held out, {ds}): user/item bias "
                   f"baseline {_fmt(table[ds]['bias-baseline'])}, soft-impute "
                   f"{_fmt(table[ds]['soft-impute-16'])}.")
        update_claim(
            f"001-{key}", args.claims, source="001_b75808987be9316f.txt", statement=text[key],
            metric="RMSE on held-out ratings (0.5-5 scale)", claimed=CLAIMED[key],
            as_published=round(published, 4),
            held_out={"value": round(held[0], 4), "ci_low": round(held[1], 4),
                      "ci_high": round(held[2], 4), "n_seeds": len(args.seeds),
                      "dataset": ds, "split": "random 90/10 of rating cells"},
            protocol=(f"Inferred protocol (the paper's split and code are unknown): "
                      f"ml-latest-small, random 90/10 split, training-user-mean fill, "
                      f"min-max scaling fitted on train. As published = seed {s0} with "
                      f"{published_model}; held out = {held_model} pooled over seeds "
                      f"{args.seeds}, iteration counts chosen on a validation split. "
                      f"Other datasets (held out): {other}. {context} Verdict: {why}."),
            verdict=word, evidence=evidence)


if __name__ == "__main__":
    sys.exit(main())
