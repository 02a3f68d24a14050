"""Seed 000's "81.19% -> 99.36% accuracy" and seed 003's hybrid network, checked.

    KMREC_DATA_DIR=/work/shared/datasets python bench/seed000_nn.py

Part 1, as published (CLAIMS.md, 000): ml-latest-small, the adjusted target (rating plus
half a point per tag the user put on the movie, 0 for tagged ratings <= 1), scikit-learn's
80/20 split of rating rows with seed 42, the network of ``BP_predicts_user.py`` (user
embedding 8 + 19 genre flags -> 64 -> 32 -> 1, ReLU; Adam 1e-3, batch 32, 10 epochs, MSE),
and the genre-only network of ``BP_predicts.py``. The seed left its torch RNG unseeded,
so the run repeats over ``--published-seeds``. Reported: the printed "Test Loss" (mean of
per-batch MSEs), test MSE and RMSE, every accuracy definition on the test part, and the
single printed pair (user 6, movie 2): its prediction with the seed's one-column-off
feature row (the as-published figure) and with the right one, its "accuracy"
``1 - |pred - 4| / 4``, and which side of the split that row lies on.

Part 2, held out: ml-latest-small and ml-100k, random 90/10 splits over ``--seeds``, the
plain rating target and (where the dataset has tags) the adjusted one. Models: the
published network (its settings, predictions clipped to the target's range as every model
here is), the network seed 000's text describes (embeddings, self-attention, attention
pooling, three LeakyReLU layers, dropout, weight decay), seed 003's hybrid (MF term + MLP
over [user, movie, genres]), the user/item bias baseline and the tuned biased MF of the
factorisation issue. Early stopping and tuning use a validation split carved from each
training set. Metrics: RMSE, MAE, exact match, within ±0.5/±1, relative accuracy, on the
pooled test rows of all seeds with (seed, user)-grouped bootstrap intervals. The leakage
check runs on every model (first seed, ml-latest-small, plain target).

Rows go to <out>/runs/*.jsonl, the summary to <out>/seed000_nn.md, the verdicts to
results/claims.json (000-accuracy-81-to-99, 000-user6-movie2-99, 003-hybrid-no-claim).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kmrec_gpu import data, splits  # noqa: E402
from kmrec_gpu.backends import get_backend  # noqa: E402
from kmrec_gpu.claims import DEFAULT_PATH, update_claim  # noqa: E402
from kmrec_gpu.environment import git_revision  # noqa: E402
from kmrec_gpu.leakage import check_leakage, fit_predict_estimator  # noqa: E402
from kmrec_gpu.metrics import pooled_bootstrap_ci, rating_metrics  # noqa: E402
from kmrec_gpu.metrics.rating import mae, relative_accuracy, rmse  # noqa: E402
from kmrec_gpu.models.baseline import BiasBaseline  # noqa: E402
from kmrec_gpu.models.tuning import TunedBiasedMF  # noqa: E402
from kmrec_gpu.neural import (  # noqa: E402
    SEED000_GENRES,
    AttentionMLP000,
    HybridNN003,
    PublishedMLP000,
    adjusted_target,
)
from kmrec_gpu.neural.seed000 import (  # noqa: E402
    LEAD_COLUMNS,
    PAIR,
    batch_mean_mse,
    pair_accuracy,
    pair_check,
    pair_features,
    published_split,
)
from kmrec_gpu.results import ResultWriter, make_row, write_atomic  # noqa: E402

CLAIMED_BEFORE, CLAIMED_AFTER, CLAIMED_PAIR = 0.8119, 0.9936, 0.99
VARIANTS = {"user+genres (BP_predicts_user.py)": 8, "genres only (BP_predicts.py)": 0}
# the MF baseline's grid: the point mf_baselines.py chose on every split (reg at 0.12)
MF_GRID = {"ml-latest-small": {"n_factors": [50], "reg": [0.12], "reg_bias": [2.0]},
           "ml-100k": {"n_factors": [100], "reg": [0.12], "reg_bias": [2.0]}}
CI_METRICS = {"rmse": rmse, "mae": mae, "relative_accuracy": relative_accuracy}


def dataset_meta(r) -> dict:
    return {"name": r.name, "sha256": r.source.sha256 if r.source else None,
            "n_ratings": len(r)}


# -- part 1 ------------------------------------------------------------------------------


def as_published(raw, args, emit, say) -> dict:
    """Seed 000's run, once per torch seed and network variant: ``{"runs", "check"}``."""
    target = adjusted_target(raw)
    split = published_split(target)
    check = pair_check(target)
    pu, pm = raw.user_codes(PAIR[0]), raw.item_codes(PAIR[1])
    feats = {"aligned": pair_features(raw, check.features_row, SEED000_GENRES, misaligned=False)}
    for lead in LEAD_COLUMNS:
        feats[f"misaligned ({lead})"] = pair_features(raw, check.features_row, SEED000_GENRES,
                                                      misaligned=True, lead=lead)
    out = []
    for variant, user_dim in VARIANTS.items():
        for seed in args.published_seeds:
            t0 = time.perf_counter()
            m = PublishedMLP000(user_dim=user_dim, random_state=seed, device=args.device)
            m.fit(split.train)
            wall = time.perf_counter() - t0
            p = m.predict(split.test)
            y = split.test.ratings
            met = rating_metrics(y, p, scale=target.scale)
            pair = {k: float(m.predict_with_genres(np.array([pu]), np.array([pm]), f)[0])
                    for k, f in feats.items()}
            res = {"variant": variant, "seed": seed, "test_loss": batch_mean_mse(y, p),
                   "mse": float(np.mean((p - y) ** 2)), **met, "fit_s": wall,
                   "pair_pred": pair,
                   "pair_acc": {k: pair_accuracy(v, check.true) for k, v in pair.items()},
                   "train_loss": m.history_.train_loss}
            out.append(res)
            emit("seed000-published-" + ("user-genres" if user_dim else "genres-only"),
                 m.get_params(), split, seed, met, wall, target,
                 {"protocol": "as published", "test_loss_batch_mean": res["test_loss"],
                  "pair": {"user": PAIR[0], "movie": PAIR[1], "true": check.true,
                           "row": check.row, "in_train": check.in_train,
                           "pred": pair, "accuracy": res["pair_acc"]},
                  "train_loss": m.history_.train_loss})
            say(f"  as published, {variant}, seed {seed}: test loss {res['test_loss']:.3f}, "
                f"RMSE {met['rmse']:.3f}, pair (6, 2) -> {pair['misaligned (rating)']:.4f} "
                f"(accuracy {res['pair_acc']['misaligned (rating)']:.4f}) [{wall:.0f} s]")
    return {"runs": out, "check": check}


# -- part 2 ------------------------------------------------------------------------------


def models_for(ds: str, seed: int, device: str) -> dict:
    genres = "seed000" if ds == "ml-latest-small" else "all"
    return {
        "bias-baseline": lambda: BiasBaseline(),
        "biased-mf": lambda: TunedBiasedMF(param_grid=MF_GRID[ds], random_state=seed),
        "seed000-published-mlp": lambda: PublishedMLP000(genres=genres, clip=True,
                                                         random_state=seed, device=device),
        "seed000-attention-mlp": lambda: AttentionMLP000(random_state=seed, device=device),
        "seed003-hybrid-nn": lambda: HybridNN003(random_state=seed, device=device),
    }


def held_out(ds: str, r, target_name: str, seed: int, args, emit, say) -> dict:
    split = splits.holdout(r, 0.1, seed=seed)
    out: dict = {"_test": split.test}
    for name, make in models_for(ds, seed, args.device).items():
        t0 = time.perf_counter()
        model = make().fit(split.train)
        wall = time.perf_counter() - t0
        p = model.predict(split.test)
        out[name] = p
        met = rating_metrics(split.test.ratings, p, scale=r.scale)
        extra = {"protocol": "held out", "target": target_name}
        if hasattr(model, "history_"):
            extra.update(best_epoch=model.history_.best_epoch,
                         epochs_run=len(model.history_.train_loss),
                         valid_rmse=model.history_.valid_rmse)
        if hasattr(model, "best_params_"):
            extra.update(best_params=model.best_params_)
        emit(name, model.get_params(), split, seed, met, wall, r, extra)
        say(f"  {r.name} {target_name} seed {seed} {name:24s} RMSE {met['rmse']:.4f} "
            f"rel.acc {met['relative_accuracy']:.4f} [{wall:.0f} s]")
    return out


def leakage(ds: str, r, seed: int, args, say) -> dict[str, dict]:
    split = splits.holdout(r, 0.1, seed=seed)
    out = {}
    for name, make in models_for(ds, seed, args.device).items():
        rep = check_leakage(fit_predict_estimator(make), split)
        out[name] = {"n_rows": rep.n_rows, "n_moved": rep.n_moved,
                     "max_abs_delta": rep.max_abs_delta}
        say(f"  leakage {r.name} {name}: {rep.n_moved} of {rep.n_rows} moved")
    return out


def pooled(per_seed: list[dict], name: str, metric: str, n_boot: int, seed: int):
    return pooled_bootstrap_ci(CI_METRICS[metric], [(p["_test"].ratings, p[name],
                                                     p["_test"].users) for p in per_seed],
                               n_resamples=n_boot, seed=seed)


def pooled_metrics(per_seed: list[dict], name: str, scale) -> dict:
    y = np.concatenate([p["_test"].ratings for p in per_seed])
    yhat = np.concatenate([p[name] for p in per_seed])
    return rating_metrics(y, yhat, scale=scale)


# -- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[1:]))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                   help="seeds of the held-out splits and models (default 0 1 2)")
    p.add_argument("--published-seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                   help="torch seeds for the as-published run (its split stays seed 42)")
    p.add_argument("--datasets", nargs="+", default=["ml-latest-small", "ml-100k"])
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (networks only)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: on a shared 2-core machine more "
                        "threads oversubscribe the cores and run many times slower)")
    p.add_argument("--skip-published", action="store_true", help="skip part 1")
    p.add_argument("--skip-leakage", action="store_true", help="skip the leakage check")
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--claims", type=Path, default=DEFAULT_PATH,
                   help="claims file to update (default: results/claims.json)")
    p.add_argument("--no-claims", action="store_true", help="do not touch the claims file")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: one seed, one published seed, ml-100k held out, "
                        "100 resamples, no claims")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.published_seeds, args.bootstrap = [0], [0], 100
        args.datasets, args.no_claims, args.skip_leakage = ["ml-100k"], True, True
    if any(s < 0 for s in args.seeds + args.published_seeds):
        p.error("seeds must be >= 0")

    from rich.console import Console

    console = Console()
    say = console.print
    env = (f"KMREC_DATA_DIR={os.environ['KMREC_DATA_DIR']} "
           if os.environ.get("KMREC_DATA_DIR") else "")
    command = env + shlex.join(["python", "bench/seed000_nn.py",
                                *(argv if argv is not None else sys.argv[1:])])
    writer = ResultWriter(args.out)
    import torch

    torch.set_num_threads(args.threads)
    be = get_backend(args.device, library="torch")
    backend, device_name = be.describe(), f"{be.device_name} ({be.name.upper()})"

    def emit(name, params, split, seed, met, wall, r, extra):
        writer.append(make_row(
            run_id=writer.run_id, dataset=dataset_meta(r), split=split.summary(), seed=seed,
            model={"name": name, "params": params}, backend=backend, phase="evaluate",
            metrics=met, wall_time={"fit_s": wall}, command=command, extra=extra))

    t0 = time.perf_counter()
    published = None
    if not args.skip_published:
        say("[bold]Part 1[/]: seed 000 as published (ml-latest-small, adjusted target)")
        published = as_published(data.load("ml-latest-small"), args, emit, say)

    say("[bold]Part 2[/]: held out")
    results: dict[tuple[str, str], list[dict]] = {}
    scales: dict[tuple[str, str], object] = {}
    leaks: dict[str, dict] = {}
    notes: list[str] = []
    for ds in args.datasets:
        r = data.load(ds)
        targets = {"plain": r}
        adj = adjusted_target(r)
        if np.array_equal(adj.ratings, r.ratings):
            notes.append(f"{ds}: the adjusted target equals the rating on every row "
                         f"({'no tags file' if r.tags is None else 'no qualifying tags'}); "
                         "only the plain target is run.")
        else:
            targets["adjusted"] = adj
        for tname, rt in targets.items():
            results[(ds, tname)] = [held_out(ds, rt, tname, s, args, emit, say)
                                    for s in args.seeds]
            scales[(ds, tname)] = rt.scale
        if not args.skip_leakage and ds == "ml-latest-small":
            leaks = leakage(ds, r, args.seeds[0], args, say)
    elapsed = time.perf_counter() - t0

    table = {key: {m: {"metrics": pooled_metrics(per, m, scales[key]),
                       **{k: pooled(per, m, k, args.bootstrap, args.seeds[0])
                          for k in CI_METRICS}}
                   for m in per[0] if not m.startswith("_")}
             for key, per in results.items()}
    per_seed = {key: {m: [rmse(p["_test"].ratings, p[m]) for p in per]
                      for m in per[0] if not m.startswith("_")}
                for key, per in results.items()}
    md = report(args, command, device_name, published, table, per_seed, leaks, notes, elapsed)
    name = "seed000_nn_quick.md" if args.quick else "seed000_nn.md"
    write_atomic(args.out / name, md)
    say(md)
    if not args.no_claims and published and ("ml-latest-small", "adjusted") in table:
        write_claims(args, published, table, writer.path)
    say(f"rows: {writer.path}")
    return 0


def _ci(t) -> str:
    return f"{t[0]:.4f} [{t[1]:.4f}, {t[2]:.4f}]"


def _published_table(published: list[dict]) -> list[str]:
    keys = ["misaligned (rating)", "misaligned (tag_count)", "aligned"]
    lines = ["| network | torch seed | test loss (printed) | test MSE | RMSE | MAE | "
             "relative acc. | pair pred, as published | its \"accuracy\" | pair pred, lead "
             "= tag count | pair pred, aligned features | fit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for res in published:
        pp, pa = res["pair_pred"], res["pair_acc"]
        lines.append(
            f"| {res['variant']} | {res['seed']} | {res['test_loss']:.3f} | {res['mse']:.3f} | "
            f"{res['rmse']:.4f} | {res['mae']:.4f} | {res['relative_accuracy']:.4f} | "
            f"{pp[keys[0]]:.4f} | {pa[keys[0]]:.2%} | {pp[keys[1]]:.4f} | {pp[keys[2]]:.4f} | "
            f"{res['fit_s']:.0f} s |")
    return lines


def report(args, command, device_name, published, table, per_seed, leaks, notes,
           elapsed) -> str:
    lines = [
        "# Seed 000's attention MLP and seed 003's hybrid network",
        "",
        f"Command: `{command}`  ",
        f"Device: {device_name}; torch backend, {args.threads} CPU thread(s). "
        f"Git revision: {git_revision()}. "
        f"Held-out seeds: {args.seeds}; as-published torch seeds: {args.published_seeds}. "
        f"Run time: {elapsed / 60:.1f} min.",
        "",
    ]
    if published:
        check = published["check"]
        in_train = "training" if check.in_train else "test"
        accs = [r["pair_acc"]["misaligned (rating)"] for r in published["runs"]
                if r["variant"].startswith("user")]
        lines += [
            "## 1. As published",
            "",
            "ml-latest-small, adjusted target (range 0 to 91.5; 317 rows above 5, 28 zeros), "
            "scikit-learn's `train_test_split(test_size=0.2, random_state=42)` over the "
            "100,836 rating rows in file order (80,668 train / 20,168 test), 19 genre "
            "columns (IMAX dropped, as the seed's code does), 10 epochs of batch 32, Adam "
            "1e-3, MSE, no clipping. *Test loss (printed)* is the seed's own figure: the "
            "mean of per-batch MSEs over test batches of 32.",
            "",
            f"The printed pair (user 6, movie 2): true adjusted rating {check.true}; row "
            f"{check.row} of ratings.csv, which the seed's split puts in the "
            f"**{in_train}** part (computed from the split, not assumed). *As published* "
            "scores it with the seed's feature row sliced `[2:-2]` instead of `[3:-1]`: the "
            "column before the genres lands in the Action slot and the last genre is "
            "dropped. That column is not in any published file; the rating (4.0) is assumed, "
            "and the tag count (0) is shown beside it.",
            "",
            *_published_table(published["runs"]),
            "",
            f"The pair's \"accuracy\" `1 - |pred - 4| / 4` across torch seeds (user+genres "
            f"network): {', '.join(f'{a:.2%}' for a in accs)} (median "
            f"{statistics.median(accs):.2%}); claimed 81.19% before and 99.36% after. One "
            "training row's ratio swings by seeds alone; it is not a measure of the model.",
            "",
        ]
    lines += [
        "## 2. Held out",
        "",
        "Random 90/10 splits of rating rows (`splits.holdout`), pooled test rows of all "
        "seeds, 95% bootstrap intervals resampling (seed, user) groups. Relative accuracy "
        "= mean of `1 - |pred - true| / true` over rows with a non-zero truth. Every model "
        "clips predictions to the target's range. Early stopping (networks) and the MF "
        "tuning use a 10% validation split carved from each training set.",
        "",
    ]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    for (ds, tname), rows in table.items():
        lines += [f"### {ds}, {tname} target", "",
                  "| model | RMSE | MAE | relative accuracy | exact | within ±0.5 | "
                  "within ±1 | RMSE per seed |", "|---|---|---|---|---|---|---|---|"]
        for m, t in rows.items():
            met = t["metrics"]
            ps = ", ".join(f"{v:.4f}" for v in per_seed[(ds, tname)][m])
            lines.append(f"| {m} | {_ci(t['rmse'])} | {_ci(t['mae'])} | "
                         f"{_ci(t['relative_accuracy'])} | {met['exact_match']:.4f} | "
                         f"{met['within_0.5']:.4f} | {met['within_1.0']:.4f} | {ps} |")
        lines.append("")
    if leaks:
        lines += ["## Leakage check", "",
                  "Every test rating changed, every model refitted from scratch (ml-latest-"
                  f"small, plain target, seed {args.seeds[0]}): " + ", ".join(
                      f"{m}: {v['n_moved']} of {v['n_rows']} predictions moved"
                      for m, v in leaks.items()) + ".", ""]
    return "\n".join(lines) + "\n"


def verdict(claimed: float, *intervals) -> str:
    """Reproduced only if some held-out interval reaches within 0.01 of the claim."""
    reach = max(hi for _, _, hi in intervals)
    return "reproduced" if reach >= claimed - 0.01 else "not reproduced"


def write_claims(args, published, table, rows_path) -> None:
    ds = "ml-latest-small"
    evidence = [str(Path("results") / rows_path.relative_to(args.out)), "results/seed000_nn.md",
                "python bench/seed000_nn.py"]
    user_runs = [r for r in published["runs"] if r["variant"].startswith("user")]
    genre_runs = [r for r in published["runs"] if r["variant"].startswith("genres")]
    acc_user = [r["pair_acc"]["misaligned (rating)"] for r in user_runs]
    acc_genre = [r["pair_acc"]["misaligned (rating)"] for r in genre_runs]
    adj = table[(ds, "adjusted")]
    att, pub = adj["seed000-attention-mlp"], adj["seed000-published-mlp"]
    held = lambda t: {"value": round(t[0], 4), "ci_low": round(t[1], 4),  # noqa: E731
                      "ci_high": round(t[2], 4), "n_seeds": len(args.seeds), "dataset": ds,
                      "split": "random 90/10 of rating rows, adjusted target"}
    in_train = ("in the training part" if published["check"].in_train
                else "in the test part")
    pair_text = (f"the (user 6, movie 2) row is {in_train} of the seed's own split; with the "
                 f"seed's one-column-off feature row its \"accuracy\" 1-|pred-4|/4 over torch "
                 f"seeds {args.published_seeds} is "
                 + ", ".join(f"{a:.4f}" for a in acc_user)
                 + " (user+genres network) and " + ", ".join(f"{a:.4f}" for a in acc_genre)
                 + " (genres-only network)")
    rmse_line = "; ".join(f"{m} RMSE {_ci(t['rmse'])}" for m, t in adj.items())
    plain = table[(ds, "plain")]
    plain_line = "; ".join(f"{m} {t['relative_accuracy'][0]:.4f}" for m, t in plain.items())
    update_claim(
        "000-accuracy-81-to-99", args.claims, source="000_618dcf963d3af9e7.txt",
        statement="The optimized model (more hidden layers, attention) achieved an accuracy "
                  "of 99.36% compared to the original accuracy of 81.19%.",
        metric="relative accuracy 1-|pred-true|/true (inferred definition), adjusted target",
        claimed=CLAIMED_AFTER, as_published=round(statistics.median(acc_user), 4),
        held_out=held(att["relative_accuracy"]),
        protocol=("No code computes 81.19% or 99.36% (CLAIMS.md, 000); the inferred "
                  "definition is one pair's 1-|pred-4|/4. As published = median over torch "
                  f"seeds of that figure for the seed's network on its 80/20 seed-42 split: "
                  f"{pair_text}. Held out = the described attention MLP's relative accuracy "
                  f"on ml-latest-small's adjusted target, pooled over seeds {args.seeds} "
                  f"(published network: {_ci(pub['relative_accuracy'])}; on the plain "
                  f"rating target: {plain_line}). Adjusted target, held out: {rmse_line}. "
                  f"Verdict rule: reproduced only if a held-out interval reaches within 0.01 "
                  f"of 0.9936."),
        verdict=verdict(CLAIMED_AFTER, att["relative_accuracy"], pub["relative_accuracy"]),
        evidence=evidence)
    update_claim(
        "000-user6-movie2-99", args.claims, source="000_618dcf963d3af9e7.txt",
        statement="The optimized model achieves 99% accuracy when predicting the corrected "
                  "rating for User 6 on Movie 2.",
        metric="1-|pred-true|/true for the single pair (user 6, movie 2), true = 4.0",
        claimed=CLAIMED_PAIR, as_published=round(statistics.median(acc_user), 4),
        held_out=held(pub["relative_accuracy"]),
        protocol=(f"Computed, not asserted: {pair_text}. A single training row cannot "
                  "measure accuracy; held out = the same network's relative accuracy over "
                  f"every held-out row of the adjusted target (pooled over seeds "
                  f"{args.seeds}). Verdict rule: reproduced only if the held-out interval "
                  f"reaches within 0.01 of 0.99."),
        verdict=verdict(CLAIMED_PAIR, pub["relative_accuracy"]), evidence=evidence)
    hyb = plain["seed003-hybrid-nn"]
    others = "; ".join(f"{m} {_ci(t['rmse'])}" for m, t in plain.items()
                       if m != "seed003-hybrid-nn")
    other_ds = "; ".join(f"{k[0]} ({k[1]}) {_ci(v['seed003-hybrid-nn']['rmse'])}"
                         for k, v in table.items() if k != (ds, "plain"))
    update_claim(
        "003-hybrid-no-claim", args.claims, metric="RMSE on held-out ratings (0.5-5 scale)",
        held_out={"value": round(hyb["rmse"][0], 4), "ci_low": round(hyb["rmse"][1], 4),
                  "ci_high": round(hyb["rmse"][2], 4), "n_seeds": len(args.seeds),
                  "dataset": ds, "split": "random 90/10 of rating rows"},
        protocol=("The document gives no code, no split and no figure (steps 3-4 'under "
                  "construction'; CLAIMS.md, 003). The harness's implementation of the "
                  "described model (user and movie embeddings, an MF term mu+b_u+b_i+p.q "
                  "plus an MLP over [user, movie, genres], early stopping on a validation "
                  f"split carved from train) measured held out, pooled over seeds {args.seeds}"
                  f". Same splits: {others}. Other datasets/targets: {other_ds}."),
        verdict="no claim", evidence=evidence)


if __name__ == "__main__":
    sys.exit(main())
