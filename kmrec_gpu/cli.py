"""``kmrec``: datasets (list, info, verify), the baselines shorthand (``kmrec run``), the accuracy
regression check (``kmrec check``), the report (``kmrec report``), compaction of run files
(``kmrec compact``) and a tuned model's choice as a model option (``kmrec tuned``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from kmrec_gpu.errors import KmrecError


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _datasets_list(args) -> int:
    from kmrec_gpu.data import available

    rows = available()
    if args.json:
        _print_json(rows)
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "kind", "ratings", "description")
    for r in rows:
        t.add_row(r["name"], r["kind"], f"{r['ratings']:,}", r["description"])
    Console().print(t)
    return 0


def _datasets_info(args) -> int:
    from kmrec_gpu.data import load

    if args.name is None and args.path is None:
        raise SystemExit("kmrec datasets info: give a dataset name, or --path FILE for a "
                         "ratings file of your own")
    if args.name is None:  # a ratings file of the user's own, read as dataset=csv reads it
        from kmrec_gpu.data.user_file import load_user_csv

        names = args.columns.split(",")
        r = load_user_csv({"name": "csv", "path": args.path, "sep": args.sep,
                           "header": not args.no_header, "encoding": args.encoding,
                           "columns": dict(zip(("user", "item", "rating", "timestamp"), names)),
                           "scale": ([float(v) for v in args.scale.split(",")]
                                     if args.scale else None)})
    else:
        r = load(args.name, args.path, seed=args.seed, verify=not args.no_verify,
                 download=not args.no_download, progress=sys.stderr.isatty())
    info = r.summary()
    if args.json:
        _print_json(info)
        return 0
    for k, v in info.items():
        if k not in ("files", "genres"):
            print(f"{k:>16}: {v}")
    print(f"{'genres':>16}: {', '.join(info['genres']) or '-'}")
    return 0


def _datasets_verify(args) -> int:
    from kmrec_gpu.data import verify

    rep = verify(args.name, args.path, download=not args.no_download)
    if args.json:
        _print_json(rep)
    else:
        print(f"{rep['name']} at {rep['source']} ({rep['kind']})")
        for c in rep["checks"]:
            mark = {True: "ok", False: "FAILED", None: "unchecked"}[c["ok"]]
            print(f"  {mark:>9}  {c['algorithm']:>6}  {c['file']}: {c['actual']}"
                  + ("" if c["ok"] is not False else f" (expected {c['expected']})"))
        print("all checks passed" if rep["ok"] else "verification FAILED")
    return 0 if rep["ok"] else 1


def _run(args) -> int:
    from kmrec_gpu.jobs import run_baseline

    results = run_baseline(
        dataset=args.dataset, path=args.path, split=args.split,
        test_fraction=args.test_fraction, seed=args.seed,
        repeats=args.repeats, n_boot=args.n_boot, results_dir=args.results,
        command=" ".join(["kmrec", *sys.argv[1:]]),
    )
    return 0 if all(r.status == "ok" for r in results) else 1


def _check(args) -> int:
    from kmrec_gpu.harness.check import run_check

    return run_check(results_dir=args.results, baselines_path=args.baselines,
                     update=args.update, threads=args.threads, only=args.only)


def _claims(args) -> int:
    from kmrec_gpu.claims import build_claims, load_protocols, run_claims

    protocols = load_protocols(args.only)
    if args.action == "list":
        for p in protocols:
            print(f"{p.id}: {len(p.cells())} cells ({p.metric} on {p.dataset}, "
                  f"seeds {list(p.seeds)})")
        return 0
    if args.action == "run":
        results = run_claims(protocols, results_dir=args.results, threads=args.threads,
                             force=args.force, command=" ".join(["kmrec", *sys.argv[1:]]),
                             models=args.model)
        if any(r.status == "failed" for r in results):
            print("kmrec claims run: some cells failed (see above); claims.json not rebuilt",
                  file=sys.stderr)
            return 1
    path, claims = build_claims(args.results, args.out, only=args.only)
    for c in claims:
        if args.only and not c["id"].startswith(args.only):
            continue
        held = c["held_out"]
        fig = (f"{held['value']:.4f} [{held['ci_low']:.4f}, {held['ci_high']:.4f}]"
               if held else "no held-out figure")
        print(f"{c['id']}: {c['verdict']} (claimed {c['claimed']}; held out {fig}; "
              f"conclusion holds: {c['conclusion_holds']}; against tuned baselines: "
              f"{c['tuned_holds']})")
    print(f"claims written to {path}")
    if args.readme:
        from kmrec_gpu.claims.render import update_readme

        changed = update_readme(args.readme, claims)
        print(f"{args.readme}: claims table {'updated' if changed else 'unchanged'}")
    return 0


def _compact(args) -> int:
    from kmrec_gpu.results import compact_runs

    done = compact_runs(args.results, min_age_s=args.min_age_h * 3600)
    before, after = sum(b for _, b, _ in done), sum(a for _, _, a in done)
    for f, b, a in done:
        print(f"{f}: {b:,} -> {a:,} bytes")
    print(f"compacted {len(done)} run file(s): {before:,} -> {after:,} bytes")
    return 0


def _tuned(args) -> int:
    from pathlib import Path

    from kmrec_gpu.harness.tuned import export

    path = export(args.model, dataset=args.dataset, seed=args.seed, name=args.name,
                  results=Path(args.results), split=args.split,
                  out_dir=Path(args.out_dir) if args.out_dir else None)
    print(path.read_text(encoding="utf-8"), end="")
    from kmrec_gpu.harness.spec import conf_dir

    if path.parent.resolve() == (conf_dir() / "model").resolve():
        print(f"wrote {path}; run it with: kmrec-bench model={args.name} dataset=...")
    else:
        print(f"wrote {path}; kmrec-bench finds model options in {conf_dir() / 'model'} "
              "(or KMREC_BENCH_CONF's model/): copy it there to run it")
    return 0


def _report(args) -> int:
    from kmrec_gpu.report import build_report

    if args.html:
        from kmrec_gpu.report.html import build_html

        page = build_html(args.results, args.out, force=args.force)
        print(f"page written to {page}")
        return 0
    path = build_report(args.results, args.out, force=args.force)
    print(f"report written to {path}")
    return 0


# the same layout as kmrec-bench --help's examples (bench/conf/config.yaml, hydra.help)
EXAMPLES = """examples:
  kmrec datasets list                                               every dataset name
  kmrec datasets info ml-100k | --path my.csv                       counts, scale, sha256
  kmrec check [--only 'svd@*'] [--update]                           accuracy regression check
  kmrec claims run [--only 001]                                     the claims' cells
  kmrec report [--html]                                             REPORT.md, or the page
  kmrec tuned tuned_ease --dataset ml-100k --name ease_ml100k       a search's choice as an option
(benchmark cells, grids and sweeps: kmrec-bench --help)"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kmrec",
        description="kmrec: datasets, the accuracy check, the published claims and the "
        "report of kmrec_gpu, a benchmark harness for K-means-based movie recommenders. "
        "The benchmark cells themselves run through kmrec-bench (kmrec-bench --help).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    ds = sub.add_parser("datasets", help="list, describe and verify datasets",
                        description="List, describe and verify datasets. Files are found "
                        "through an explicit --path, KMREC_DATA_DIR (a path list), the user "
                        "cache (~/.cache/kmrec or $XDG_CACHE_HOME/kmrec), then GroupLens.")
    dsub = ds.add_subparsers(dest="action", required=True)
    lst = dsub.add_parser("list", help="every dataset name: MovieLens releases, seed-002, "
                          "synthetic presets", description="List every loadable dataset name.")
    lst.add_argument("--json", action="store_true", help="print JSON instead of a table")
    lst.set_defaults(fn=_datasets_list)

    for name, fn, hlp in (
        ("info", _datasets_info, "load a dataset and print its counts, scale, genres, "
         "sha256 and where it was read from"),
        ("verify", _datasets_verify, "check a dataset's checksums and counts against the "
         "registry; exit 1 on any mismatch or when the copy does not load (the failing "
         "file and line are listed with the checks)"),
    ):
        sp = dsub.add_parser(name, help=hlp, description=hlp[0].upper() + hlp[1:] + ".")
        if name == "info":
            sp.add_argument("name", nargs="?", help="dataset name (see `kmrec datasets "
                            "list`); leave it out to read --path FILE as your own ratings "
                            "file (as kmrec-bench dataset=csv dataset.path=FILE does)")
            sp.add_argument("--path", help="the official zip or its extracted folder; "
                            "without a name, your own ratings file")
            sp.add_argument("--columns", default="user,item,rating",
                            help="your file's user, item, rating[, timestamp] column names "
                            "(default user,item,rating)")
            sp.add_argument("--sep", default=",", help="your file's separator (default ,)")
            sp.add_argument("--no-header", action="store_true",
                            help="your file has no header: columns by position")
            sp.add_argument("--scale", help="MIN,MAX,STEP of your ratings (default: inferred "
                            "from the values, and printed)")
            sp.add_argument("--encoding", default="utf-8", help="your file's encoding")
        else:
            sp.add_argument("name", help="dataset name (see `kmrec datasets list`)")
            sp.add_argument("--path", help="the official zip or its extracted folder")
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.add_argument("--no-download", action="store_true",
                        help="never download; fail if no local copy is found")
        if name == "info":
            sp.add_argument("--no-verify", action="store_true",
                            help="read a copy whose checksums differ from the official ones")
            sp.add_argument("--seed", type=int, default=0,
                            help="seed for synthetic presets (default 0)")
        sp.set_defaults(fn=fn)

    run = sub.add_parser(
        "run", help="the global-mean and bias baselines on a held-out split, as harness cells",
        description="Shorthand for `kmrec-bench -m model=global_mean,bias_baseline "
        "dataset=D split=S seed=N ...`: the same harness cells (load, seeded split, fit on "
        "the training part with warm-up and repeats, predict, every rating metric with a "
        "user-bootstrap interval), rows appended to RESULTS/runs/, and the same closing "
        "table. Both baselines are NumPy models: they run on the CPU. Exit 1 if a cell "
        "failed, 2 without the data.")
    run.add_argument("--dataset", default="ml-latest-small",
                     help="dataset name (default ml-latest-small; synthetic-* presets work "
                     "offline)")
    run.add_argument("--path", help="the dataset's zip or folder, if not found otherwise")
    run.add_argument("--split", default="holdout",
                     choices=["holdout", "per_user", "temporal", "leave_last_k"],
                     help="split method (default holdout)")
    run.add_argument("--test-fraction", type=float, default=0.1,
                     help="test share for holdout/per_user/temporal (default 0.1)")
    run.add_argument("--seed", type=int, default=0, help="the one seed (default 0)")
    run.add_argument("--repeats", type=int, default=5, help="timed repeats (default 5)")
    run.add_argument("--n-boot", type=int, default=1000,
                     help="bootstrap resamples for confidence intervals (default 1000)")
    run.add_argument("--results", default="results",
                     help="results folder; rows go to RESULTS/runs/ (default results)")
    run.set_defaults(fn=_run)

    chk = sub.add_parser(
        "check", help="accuracy regression check: a fixed small suite against "
        "results/baselines/ (exit 1 on a regression)",
        description="Run the fixed check suite (bench/conf/sweep/check.yaml: ml-100k, "
        "ml-latest-small and a small synthetic set, every model family, fixed seeds) and "
        "compare each metric with the stored baselines within its tolerance. Prints a "
        "table; exits 1 when any metric regressed or a cell failed. --update rewrites the "
        "baselines deliberately.")
    chk.add_argument("--update", action="store_true",
                     help="rewrite the baselines from this run instead of comparing")
    chk.add_argument("--baselines", default="results/baselines/check.json",
                     help="baseline file (default results/baselines/check.json)")
    chk.add_argument("--results", default="results",
                     help="results folder; the check's rows go to RESULTS/runs/ "
                     "(default results)")
    chk.add_argument("--threads", type=int, default=1,
                     help="CPU threads for torch and BLAS (default 1)")
    chk.add_argument("--only", action="append", default=[], metavar="PATTERN",
                     help="only the cells whose id (model@dataset/split/backend/seedN, as "
                     "the table prints) matches this shell pattern, e.g. 'attention_mlp@*'; "
                     "repeatable. With --update the other cells keep their baselines")
    chk.set_defaults(fn=_check)

    cl = sub.add_parser(
        "claims", help="run the published claims' cells, or rebuild RESULTS/claims.json "
        "from the stored rows",
        description="Each claim is a protocol in bench/conf/claim/<id>.yaml. `kmrec claims` "
        "(build) rebuilds RESULTS/claims.json from the rows under RESULTS/runs/ only: "
        "figures pooled over seeds with a user bootstrap, one verdict rule (reproduced if "
        "the interval lies inside claimed +- margin, not reproduced if outside, "
        "inconclusive otherwise), the conclusion as paired differences. `kmrec claims run` "
        "first runs every cell the protocols name through the harness (cells done at this "
        "clean revision are skipped), then rebuilds. `kmrec claims list` lists them.")
    cl.add_argument("action", nargs="?", choices=("build", "run", "list"), default="build",
                    help="build (default), run then build, or list")
    cl.add_argument("--only", default=None,
                    help="claims whose id starts with this (e.g. 001 or 004-random-forest)")
    cl.add_argument("--results", default="results", help="results folder (default results)")
    cl.add_argument("--out", default=None, help="claims file (default RESULTS/claims.json)")
    cl.add_argument("--readme", default=None,
                    help="also rewrite the claims table between the claims markers of this "
                    "README (e.g. README.md)")
    cl.add_argument("--threads", type=int, default=1,
                    help="run: CPU threads for torch and BLAS (default 1)")
    cl.add_argument("--force", action="store_true",
                    help="run: run cells even when this revision already has their rows")
    cl.add_argument("--model", action="append", default=None, metavar="MODEL",
                    help="run: only the cells of this model option (repeatable), e.g. after "
                    "a change to one model; the other figures keep their newest rows")
    cl.set_defaults(fn=_claims)

    rep = sub.add_parser(
        "report", help="build RESULTS/REPORT.md and its plots from the stored rows only",
        description="Build the report (claims table, accuracy next to published anchors, "
        "scale plots, CPU-vs-GPU table, elbow plots, failed cells) from the rows and files "
        "already stored under RESULTS; nothing is re-run.")
    rep.add_argument("--results", default="results", help="results folder (default results)")
    rep.add_argument("--out", default=None,
                     help="report path (default RESULTS/REPORT.md); its figures go to a "
                     "report/ folder beside it")
    rep.add_argument("--html", action="store_true",
                     help="write one self-contained page instead (default RESULTS/report.html;"
                     " --out sets it): every row in a filterable table, RMSE against fit time"
                     " per dataset with the published anchors, scale plots, CPU vs GPU, the "
                     "claims; it opens without a network")
    rep.add_argument("--force", action="store_true",
                     help="overwrite the report and figure files even where they are not "
                     "provably the report's own (a user's file, or one changed since); "
                     "stale figures are still removed only when unchanged")
    rep.set_defaults(fn=_report)

    res = sub.add_parser(
        "compact", help="gzip finished run files in place (same rows, about 40%% of the space)",
        description="Replace each RESULTS/runs/X.jsonl not changed in the last --min-age-h "
        "hours by X.jsonl.gz holding the same bytes (checked before the plain file goes); "
        "every reader (report, claims, check, skip-if-done) reads both forms. Rows are "
        "never changed or dropped; a run still writing is left alone.")
    res.add_argument("--results", default="results", help="results folder (default results)")
    res.add_argument("--min-age-h", type=float, default=1.0,
                     help="leave files changed more recently than this (default 1 hour)")
    res.set_defaults(fn=_compact)

    tun = sub.add_parser(
        "tuned", help="write a tuned model's chosen configuration as a model option",
        description="From the newest fit row of a search option (e.g. tuned_ease) on "
        "DATASET at SEED, write bench/conf/model/NAME.yaml: the searched estimator with its "
        "fixed parameters and the values the search chose, the search's task, backends, "
        "peers and limits, and a header naming the row. `kmrec-bench model=NAME` then fits "
        "that configuration without searching; on the same cell its metrics are the tuned "
        "cell's. An existing option is never overwritten. Exit 2 when no row fits.")
    tun.add_argument("model", help="the search option whose row to export (e.g. tuned_ease)")
    tun.add_argument("--dataset", required=True, help="the dataset the search ran on")
    tun.add_argument("--seed", type=int, default=0, help="the cell's seed (default 0)")
    tun.add_argument("--split", default=None,
                     help="the split method, when the search ran on several")
    tun.add_argument("--name", required=True, help="the new model option's name")
    tun.add_argument("--results", default="results", help="results folder (default results)")
    tun.add_argument("--out-dir", default=None,
                     help="folder for NAME.yaml (default the model config group, "
                     "bench/conf/model)")
    tun.set_defaults(fn=_tuned)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from kmrec_gpu.log import for_cli

    args = build_parser().parse_args(argv)
    for_cli()
    try:
        return args.fn(args)
    except KmrecError as e:
        print(f"kmrec: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
