"""The results report: built from stored rows only, labelled, deterministic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kmrec_gpu.claims import write_claims
from kmrec_gpu.environment import git_revision
from kmrec_gpu.report import build_report
from kmrec_gpu.report.build import MANIFEST
from kmrec_gpu.report.scale import loglog_slope
from kmrec_gpu.report.tables import NO_GPU
from kmrec_gpu.results import ResultWriter, make_row

REPO_RESULTS = Path(__file__).resolve().parent.parent / "results"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHA = "ab" * 32
DEVICE = "Test CPU 9000"
SIZES = (10_000, 100_000, 1_000_000)
TIME_EXPONENT, MEMORY_EXPONENT = 1.5, 1.0


def _cpu(library: str = "numpy") -> dict:
    return {"name": "cpu", "library": library, "device_name": DEVICE}


def _harness(model: str, *, sweep: str | None = "scale", role: str = "model",
             backend: str = "cpu-numpy") -> dict:
    return {"cell_key": f"{model}-{backend}", "sweep": sweep, "task": "cluster",
            "model_config": model, "dataset_config": "synthetic", "backend_config": backend,
            "split_config": "holdout", "role": role, "peer_of": None}


def _fit_row(w: ResultWriter, n: int, library: str) -> dict:
    t = 2e-6 * n ** TIME_EXPONENT
    return make_row(
        run_id=w.run_id, dataset={"name": f"synthetic-{n}", "sha256": None, "n_ratings": n},
        split=None, seed=0, model={"name": "kmeans-liked", "params": {"k": 15}},
        backend=_cpu(library), phase="fit",
        wall_time={"median_s": t, "min_s": t, "max_s": t * 1.1, "repeats": 3, "warmup": 1,
                   "times_s": [t, t, t * 1.1]},
        throughput={"value": n / t, "unit": "ratings/s"},
        peak_memory={"host_bytes": 10**9, "host_delta_bytes": 100 * n ** MEMORY_EXPONENT,
                     "device_bytes": None},
        extra={"harness": _harness("kmeans-liked", backend=f"cpu-{library}")})


@pytest.fixture
def fake_results(tmp_path: Path) -> Path:
    return make_fake_results(tmp_path / "results")


def make_fake_results(root: Path) -> Path:
    """A results folder of rows of every kind the report reads, and a claims file."""
    w = ResultWriter(root)
    for seed, rmse in zip((0, 1, 2), (0.90, 0.92, 0.94)):
        w.append(make_row(
            run_id=w.run_id, dataset={"name": "toy", "sha256": SHA, "n_ratings": 1000},
            split={"method": "holdout", "params": {"test_fraction": 0.1, "seed": seed}},
            seed=seed, model={"name": "mf", "params": {}}, backend=_cpu(), phase="evaluate",
            metrics={"rmse": rmse, "mae": rmse - 0.2}, wall_time=None))
    for library in ("numpy", "torch"):
        for n in SIZES:
            w.append(_fit_row(w, n, library))
    w.append(make_row(
        run_id=w.run_id, dataset={"name": "toy", "sha256": SHA, "n_ratings": 1000},
        split={"method": "holdout", "params": {"test_fraction": 0.1, "seed": 0}}, seed=0,
        model={"name": "kmeans-liked", "params": {}}, backend=_cpu("torch"), phase="evaluate",
        metrics={"speedup_fit": 1.7, "ari": 1.0, "delta_rmse": 0.0},
        wall_time=None,
        extra={"harness": _harness("kmeans-liked", sweep=None),
               "comparison": {"a": _cpu("numpy"), "b": _cpu("torch"), "gpu_found": False,
                              "note": "CPU namespaces only", "speedup": {"fit": 1.7,
                                                                        "predict": None},
                              "parity": {"metric_deltas": {"rmse": 0.0}, "ari": 1.0,
                                         "inertia_rel": 1e-9,
                                         "singular_values_max_rel": None}}}))
    w.append(make_row(
        run_id=w.run_id, dataset={"name": "synthetic-25m", "sha256": None}, split=None,
        seed=0, model={"name": "biased-mf", "params": {}}, backend=_cpu(),
        phase="end-to-end", status="failed", reason="out of memory at 25M ratings",
        wall_time=None, extra={"harness": _harness("biased-mf", sweep=None)}))
    w.append(make_row(
        run_id=w.run_id, dataset={"name": "toy", "sha256": SHA}, split=None, seed=1,
        model={"name": "liked-clusters-elbow", "params": {"n_clusters": 4}}, backend=_cpu(),
        phase="fit", wall_time=None,
        extra={"elbow_k": 4, "elbow_ks": [2, 4, 6, 8], "elbow_wcss": [10.0, 6.0, 5.0, 4.5]}))
    evidence = [f"runs/{w.path.name}"]
    held = {"metric": "rmse", "value": 0.92, "ci_low": 0.9, "ci_high": 0.94, "model": "mf",
            "kind": "held-out", "dataset": "toy", "split": "holdout", "seeds": [0, 1, 2],
            "per_seed": [0.9, 0.92, 0.94], "note": None}
    write_claims(root / "claims.json", [
        {"id": cid, "source": f"{cid}.txt", "statement": "A claim.", "metric": "rmse",
         "unit": "stars", "claimed": claimed, "claimed_all": {}, "margin": 0.01,
         "margin_reason": "test", "held_out": held, "as_published": None, "figures": [held],
         "comparison": [], "verdict": verdict, "verdict_note": "fake", "conclusion": None,
         "conclusion_holds": None, "conclusion_evidence": [], "tuned_holds": None,
         "tuned_evidence": [], "context": [], "protocol": "fake",
         "bootstrap": {"unit": "user", "n_resamples": 10, "seed": 0},
         "evidence": evidence}
        for cid, verdict, claimed in (("t-1-rmse", "reproduced", 0.92),
                                      ("t-2-accuracy", "not reproduced", 0.99))])
    return root


def _table_line(md: str, *cells: str) -> str:
    lines = [ln for ln in md.splitlines() if ln.startswith("|")
             and all(f"| {c} |" in ln for c in cells)]
    assert len(lines) == 1, (cells, lines)
    return lines[0]


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC


def test_loglog_slope_recovers_a_power_law():
    xs = [1e3, 1e4, 1e5, 1e6]
    assert loglog_slope([(x, 3 * x ** 1.25) for x in xs]) == pytest.approx(1.25)
    assert loglog_slope([(1e3, 1.0)]) is None
    assert loglog_slope([(1e3, 1.0), (1e3, 2.0)]) is None


def test_report_from_fake_rows(fake_results: Path):
    stale = fake_results / "report" / "gone.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PNG_MAGIC)
    out = build_report(fake_results)
    assert out == fake_results / "REPORT.md"
    md = out.read_text(encoding="utf-8")

    assert "`kmrec report`" in md and "from stored rows only" in md
    assert f"`results/runs/{next((fake_results / 'runs').glob('*.jsonl')).name}`" in md
    # claims: verdicts and the held-out interval
    claims = md.split("## Claims", 1)[1]  # the summary above names each claim too
    assert "**reproduced**" in _table_line(claims, "t-1-rmse")
    line = _table_line(claims, "t-2-accuracy")
    assert "**not reproduced**" in line
    assert "0.9200 [0.9000, 0.9400] (mf, toy/holdout, seeds 0,1,2)" in line
    # accuracy: rows without per-user statistics show the mean of three seeds, counted
    line = _table_line(md, "mf", "holdout test_fraction=0.1")
    assert "| 3 | 0, 1, 2 | 0.9200 (mean) | 0.9000 to 0.9400 | 0.7200 |" in line
    assert "no anchor for this dataset" in line
    # scale: the fitted slopes of the power laws, in the table and the legend's source
    for library in ("numpy", "torch"):
        line = _table_line(md, f"kmeans-liked [{library}] on {DEVICE}")
        assert f"| {TIME_EXPONENT:.2f} | {MEMORY_EXPONENT:.2f} |" in line
        assert "harness fit rows of sweep 'scale'" in line
    assert "No harness rows are stored yet" not in md
    # CPU vs GPU, failed cells
    assert NO_GPU in md
    line = _table_line(md, f"numpy on {DEVICE}", f"torch on {DEVICE}")
    assert "| kmeans-liked | synthetic |" in line and "| no | 1.7 | n/a | rmse 0 |" in line
    line = _table_line(md, "biased-mf", "out of memory at 25M ratings")
    assert "| failed |" in line and "synthetic" in line
    # labels: device, checksum / generator seed, seeds, revision
    assert f"_Device: {DEVICE}; data: toy {SHA[:12]};" in md
    assert "synthetic-10000 generator seed 0" in md
    assert f"`{git_revision()[:10]}" in md
    # coverage
    assert ("Triton kernels | kernels/ | none: no stored row ran a Triton kernel (they run on "
            "CUDA; no stored run found a GPU)") in md
    assert "Peer: cuML | peers (GPU) | none: cuML is not installed" in md

    figures = sorted((fake_results / "report").glob("*.png"))
    names = [p.name for p in figures]
    # a PNG the report did not write is the user's: kept (it used to be deleted)
    assert names == ["elbow_liked-clusters-elbow_toy_wcss.png", "gone.png", "scale_harness.png"]
    assert stale.read_bytes() == PNG_MAGIC
    figures.remove(stale)
    assert all(_is_png(p) and p.stat().st_size > 1000 for p in figures)
    assert "![Harness: fit time and peak memory vs ratings](report/scale_harness.png)" in md


def test_report_is_deterministic(fake_results: Path, tmp_path: Path):
    first = build_report(fake_results).read_text(encoding="utf-8")
    second = build_report(fake_results).read_text(encoding="utf-8")
    assert first == second
    # elsewhere: the figures go beside the report, linked relative to it
    out = build_report(fake_results, tmp_path / "elsewhere" / "R.md")
    assert (tmp_path / "elsewhere" / "report" / "scale_harness.png").exists()
    assert "](report/scale_harness.png)" in out.read_text(encoding="utf-8")
    leftovers = [p.name for p in (fake_results / "report").iterdir() if p.suffix != ".png"]
    assert leftovers == [MANIFEST]  # and no temporary file


def test_report_without_harness_rows_draws_the_benchmark_files(tmp_path: Path):
    root = tmp_path / "results"
    (root / "bench").mkdir(parents=True)
    records = [{"bench": "kmeans", "time": f"2026-01-01T00:00:0{i}+00:00", "part": "scaling",
                "curve": "liked matrix", "case": f"liked synthetic-{x}", "k": 15, "x": x,
                "x_name": "ratings", "fit": {"median_s": 1e-7 * x}, "seed": 3,
                "git": "0123456789abcdef", "device": {"name": DEVICE}}
               for i, x in enumerate((10**4, 10**5, 10**6))]
    (root / "bench" / "kmeans.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    md = build_report(root).read_text(encoding="utf-8")
    assert "No harness rows are stored yet" in md
    assert "| 1.00 | n/a |" in _table_line(md, "K-means liked matrix (k=15)")
    assert "synthetic-10000 generator seed 3" in md and "`0123456789`" in md
    assert "No claims are recorded" in md and "No CPU-vs-GPU comparison rows" in md
    assert _is_png(root / "report" / "scale_bench_kmeans.png")


def test_report_on_the_stored_results(tmp_path: Path):
    if not (REPO_RESULTS / "claims.json").exists():
        pytest.skip("no stored results in this checkout")
    root = tmp_path / "results"
    shutil.copytree(REPO_RESULTS, root, ignore=shutil.ignore_patterns("REPORT.md", "report"))
    md = build_report(root).read_text(encoding="utf-8")
    claims = json.loads((root / "claims.json").read_text(encoding="utf-8"))
    for c in claims:
        assert f"| {c['id']} |" in md and f"**{c['id']}**" in md
    assert "Surprise README" in md and "Rendle, Zhang & Koren 2019" in md
    pngs = sorted((root / "report").glob("*.png"))
    assert pngs and all(_is_png(p) for p in pngs)
    assert all(p.stat().st_size > 1000 for p in pngs)


def test_a_slope_never_spans_two_machines(tmp_path: Path):
    from kmrec_gpu.report.scale import harness_series

    w = ResultWriter(tmp_path / "results")
    rows = []
    # linear on each machine; the second is 10x slower and measured the larger sizes, so
    # one line through both would read as slope 1.5
    for device, sizes, per in (("CPU A", (10**4, 10**5), 1e-6), ("CPU B", (10**6, 10**7), 1e-5)):
        for n in sizes:
            r = _fit_row(w, n, "numpy")
            r["backend"] = dict(r["backend"], device_name=device)
            r["wall_time"] = dict(r["wall_time"], median_s=per * n)
            rows.append(r)
    series, _ = harness_series(rows)
    assert sorted(s.name for s in series) == ["kmeans-liked [numpy] on CPU A",
                                              "kmeans-liked [numpy] on CPU B"]
    assert all(s.time_slope == pytest.approx(1.0) for s in series)


def test_the_report_opens_with_its_summary_and_ends_with_the_files(fake_results: Path):
    md = build_report(fake_results).read_text(encoding="utf-8")
    heads = [ln for ln in md.splitlines() if ln.startswith("## ")]
    assert heads[0] == "## Summary" and heads[1] == "## Claims" and heads[-1] == "## Files read"
    summary = md.split("## Summary", 1)[1].split("## Claims", 1)[0]
    assert ("| t-2-accuracy | 0.9900 ± 0.0100 | 0.9200 [0.9000, 0.9400] | **not reproduced** |"
            in summary)
    line = _table_line(summary, "mf (numpy)")
    assert "| 0.9200 |" in line  # the pooled held-out figure the accuracy table shows
    # the two libraries were timed on one device at one revision: ranked, fastest first
    line = _table_line(summary, "kmeans-liked", "synthetic-10000")
    assert f"numpy on {DEVICE}" in line and "| numpy, torch |" in line
    run_file = next((fake_results / "runs").glob("*.jsonl")).name
    assert run_file not in md.split("## Summary", 1)[0]  # the list moved to the end
    assert run_file in md.split("## Files read", 1)[1]


def test_backends_are_ranked_only_on_one_machine_at_one_revision(tmp_path: Path):
    from kmrec_gpu.report.summary import fastest_backend

    w = ResultWriter(tmp_path / "results")
    rows = []
    for device, library, t, rev in (("CPU A", "numpy", 1.0, "r1"), ("CPU B", "torch", 0.5, "r1"),
                                    ("CPU A", "torch", 2.0, "r2")):
        r = _fit_row(w, 1000, library)
        r["backend"] = dict(r["backend"], device_name=device)
        r["wall_time"] = dict(r["wall_time"], median_s=t)
        r["git_revision"] = rev
        rows.append(r)
    assert "nothing to rank" in fastest_backend(rows)
    r = _fit_row(w, 1000, "numpy")
    r["backend"] = dict(r["backend"], device_name="CPU A")
    r["wall_time"] = dict(r["wall_time"], median_s=1.0)
    r["git_revision"] = "r2"
    table = fastest_backend([*rows, r])
    line = _table_line(table, "kmeans-liked")
    assert "| numpy on CPU A | 1 | 2.00× | numpy, torch | `r2` |" in line


def test_no_slope_over_less_than_a_decade_of_sizes():
    from kmrec_gpu.report.scale import loglog_slope

    assert loglog_slope([(100_000, 1.0), (100_836, 30.0)]) is None
    assert abs(loglog_slope([(1e5, 1.0), (1e6, 10.0)]) - 1.0) < 1e-12


def test_kernels_tag_names_a_non_default_switch_and_the_path_taken():
    from kmrec_gpu.report.load import kernels_tag

    row = {"extra": {"harness": {"kernels": "on"},
                     "facts": {"assign_path": "triton", "sddmm_path": None}}}
    assert kernels_tag(row) == "kernels=on (triton)"
    assert kernels_tag({"extra": {"harness": {"kernels": "off"}}}) == "kernels=off"
    assert kernels_tag({"extra": {"harness": {"kernels": "auto"}}}) == ""
    assert kernels_tag({"extra": {}}) == ""


def test_accuracy_groups_keep_older_rows_that_lack_a_later_parameter():
    # one name, one configuration: a row whose recorded parameters disagree with the newest
    # row's is left out; a row that only lacks a parameter added later is kept (the claims
    # select rows by cell key, which such an addition does not change either)
    from kmrec_gpu.report.accuracy import _groups

    def row(seed: int, params: dict, day: int) -> dict:
        return make_row(
            run_id=f"r{day}", dataset={"name": "toy", "sha256": SHA, "n_ratings": 1000},
            split={"method": "holdout", "params": {"test_fraction": 0.1, "seed": seed}},
            seed=seed, model={"name": "toy_mf", "params": params}, backend=_cpu(),
            phase="evaluate", metrics={"rmse": 0.9}, created_utc=f"2026-12-0{day}T00:00:00+00:00")

    rows = [row(0, {"reg": 0.1}, 1), row(1, {"reg": 0.1}, 1), row(2, {"reg": 0.5}, 1),
            row(0, {"reg": 0.1, "solver": "exact"}, 2)]
    (kept,) = _groups(rows).values()
    assert sorted(r["seed"] for r in kept) == [0, 1]
    assert kept[0]["model"]["params"] == {"reg": 0.1, "solver": "exact"}  # newest per split
