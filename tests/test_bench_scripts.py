"""bench/bench_kmeans.py, bench/bench_synthetic.py and the other benchmark scripts: they
import the package as installed (no ``sys.path`` edits), time through
:mod:`kmrec_gpu.timing`, and append schema-checked result rows
(:func:`kmrec_gpu.results.make_row`) to their files without losing the lines already
there, which the report still reads (old records and new rows alike).

bench/ is not a package: a script is imported by path or run as a child process.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kmrec_gpu.errors import SchemaError
from kmrec_gpu.results import append_row, make_row, validate_row

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("bench_kmeans.py", "bench_synthetic.py", "bench_triton.py", "bench_nn.py",
           "bench_factor.py", "run_micro.py", "conftest.py")

# a line of bench/kmeans.jsonl as the benchmark wrote it before the row schema
LEGACY_KMEANS = {"bench": "kmeans", "time": "2026-01-01T00:00:00+00:00", "part": "scaling",
                 "curve": "liked matrix", "case": "liked synthetic-10000", "k": 15,
                 "x": 10_000, "x_name": "ratings", "iterations": 10, "n_iter": 10,
                 "fit": {"median_s": 0.01, "min_s": 0.01, "max_s": 0.01, "repeats": 1,
                         "times_s": [0.01]},
                 "seed": 0, "git": "0123456789abcdef", "device": {"name": "old cpu"}}


def _import(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up by name
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


@pytest.fixture(scope="module")
def bk():
    yield _import("bench_kmeans")
    sys.modules.pop("bench_kmeans", None)


class _Progress:
    def add_task(self, *a, **kw):
        return 0

    def advance(self, *a, **kw):
        pass

    def remove_task(self, *a, **kw):
        pass


def _row(**kw) -> dict:
    base = dict(run_id="r1", dataset={"name": "d", "sha256": None}, split=None, seed=0,
                model={"name": "m", "params": {}},
                backend={"name": "cpu", "library": "numpy", "device_name": "cpu"},
                phase="fit", metrics={"x": 1.0}, wall_time=None)
    return make_row(**{**base, **kw})


def test_scripts_do_not_edit_sys_path():
    for name in SCRIPTS:
        text = (ROOT / "bench" / name).read_text(encoding="utf-8")
        assert "sys.path" not in text, name


def test_timed_budget_lives_in_timing_and_the_harness_still_imports_it():
    from kmrec_gpu import timing
    from kmrec_gpu.harness import runner

    assert runner.timed_budget is timing.timed_budget
    outs = []
    out, t = timing.timed_budget(lambda: outs.append(1) or len(outs), warmup=2, repeats=2,
                                 budget_s=None, sync=lambda: None)
    assert out == 4 and t.warmup == 2 and len(t.times_s) == 2


def test_append_row_keeps_every_earlier_line(tmp_path):
    path = tmp_path / "sub" / "bench.jsonl"
    append_row(path, _row())  # creates the folder and the file
    legacy = json.dumps({"bench": "old", "no": "schema"})
    path.write_text(path.read_text() + legacy)  # and a last line without its newline
    append_row(path, _row(metrics={"x": 2.0}))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and lines[1] == legacy and path.read_text().endswith("\n")
    assert json.loads(lines[2])["metrics"] == {"x": 2.0}
    with pytest.raises(SchemaError):
        append_row(path, {**_row(), "phase": "nap"})
    with pytest.raises(ValueError):  # NaN is no JSON: nothing is written
        append_row(path, _row(metrics={"x": float("nan")}))
    assert path.read_text().splitlines() == lines
    # no temp file left; only the (empty) advisory lock file stays beside the rows
    left = sorted(p.name for p in path.parent.iterdir() if p.name != "bench.jsonl")
    assert left == ["bench.jsonl.lock"] and path.with_name("bench.jsonl.lock").stat().st_size == 0


def test_synthetic_bench_appends_rows(tmp_path):
    out = tmp_path / "synthetic.jsonl"
    out.write_text(json.dumps({"bench": "synthetic", "median_s": 1.0}) + "\n")
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_synthetic.py"),
                           "--sizes", "4e4", "5e4", "--repeats", "2", "--warmup", "1",
                           "--out", str(out)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"appended 2 rows to {out}" in proc.stdout
    lines = out.read_text().splitlines()
    assert json.loads(lines[0]) == {"bench": "synthetic", "median_s": 1.0}
    rows = [validate_row(json.loads(line)) for line in lines[1:]]
    assert [r["dataset"]["n_ratings"] for r in rows] == [40_000, 50_000]
    assert len({r["run_id"] for r in rows}) == 1
    for r in rows:
        assert r["phase"] == "load" and r["status"] == "ok" and r["extra"]["bench"] == "synthetic"
        assert r["model"]["name"] == "synthetic generator"
        assert r["wall_time"]["repeats"] == 2 and r["wall_time"]["warmup"] == 1
        assert r["throughput"]["value"] == pytest.approx(
            r["dataset"]["n_ratings"] / r["wall_time"]["median_s"])
        assert r["peak_memory"]["host_bytes"] >= r["peak_memory"]["host_baseline_bytes"]
        assert r["dataset"]["generator"]["seed"] == 0 and r["dataset"]["sha256"] is None


def test_kmeans_bench_rows_and_the_report_reads_old_and_new(bk, tmp_path):
    from kmrec_gpu.report.load import load_inputs
    from kmrec_gpu.report.scale import kmeans_bench_series

    results = tmp_path / "results"
    out = results / "bench" / "kmeans.jsonl"
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps(LEGACY_KMEANS) + "\n")
    env = bk.environment(0)
    rec = bk.Recorder(out, env)

    # part 1 on a toy input: ours (numba) and kernels=off against scikit-learn
    X = bk.dense_blobs(3_000, 4, "float64", 0)
    case = {"case": "dense 3,000x4 float64", "input": "dense blobs", "dtype": "float64",
            "shape": [3_000, 4]}
    recs = bk.per_iteration(rec, _Progress(), case, bk.blobs_dataset(3_000, 4, "float64", 0),
                            X, 4, 2, 1, 2, 0, with_off=True, with_torch=False,
                            skipped={"ours torch-cpu": "skipped: not in this test"},
                            warm_in=False)
    assert [r["peer"] for r in recs] == ["ours", "ours kernels=off", "sklearn",
                                         "ours torch-cpu"]
    # a scaling point, written as part 3 writes it
    t, m = bk._fit_times(X, 4, 3, 2, 0)
    point = {"part": "scaling", "curve": "liked matrix", "case": "liked synthetic-20000",
             "k": 4, "x": 20_000, "x_name": "ratings", "iterations": 3,
             "n_iter": int(m.n_iter_), "assign_path": m.assign_path_, "fit": bk.stats(t, 1)}
    rec.write(point, dataset={"name": "synthetic-20000", "sha256": None},
              model=bk.scaling_model(4, 3, 0), backend=bk.backend_of(env),
              wall_time=point["fit"], metrics={"n_iter": point["n_iter"], "nan": np.nan})

    lines = out.read_text().splitlines()
    assert json.loads(lines[0]) == LEGACY_KMEANS and len(lines) == 1 + len(recs) + 1
    rows = [validate_row(json.loads(line)) for line in lines[1:]]
    assert rows == rec.rows and len({r["run_id"] for r in rows}) == 1
    by_peer = {r["extra"].get("peer"): r for r in rows}
    ours, sk, skipped = by_peer["ours"], by_peer["sklearn"], by_peer["ours torch-cpu"]
    assert ours["model"]["name"] == "KMeans" and sk["model"]["name"] == "sklearn KMeans"
    assert ours["wall_time"] == ours["extra"]["per_iter"]
    assert ours["wall_time"]["repeats"] == 2 and ours["wall_time"]["warmup"] == 1
    assert ours["metrics"]["labels_agree_with_sklearn"] == 1.0
    assert ours["extra"]["n_iter_ok"] and ours["extra"]["bench"] == "kmeans"
    assert ours["dataset"]["name"] == "dense-blobs" and ours["split"] is None
    assert by_peer["ours kernels=off"]["model"]["params"]["kernels"] == "off"
    assert skipped["status"] == "skipped" and skipped["reason"] == "skipped: not in this test"
    assert "nan" not in rows[-1]["metrics"]  # NaN cannot be stored: left out

    inp = load_inputs(results)
    assert len(inp.kmeans) == 1 + len(rows)
    new = [r for r in inp.kmeans if r["git"] == rows[0]["git_revision"]]
    assert {r["case"] for r in new} == {case["case"], "liked synthetic-20000"}
    assert all(r["bench"] == "kmeans" for r in new)
    assert {r["time"] for r in new} <= {row["created_utc"] for row in rows}
    assert new[0]["per_iter"] == ours["extra"]["per_iter"]
    series = kmeans_bench_series(inp.kmeans)
    assert [s.name for s in series] == ["K-means liked matrix (k=15)",
                                        "K-means liked matrix (k=4)"]


# `python -X importtime` prints a module after the modules it imported, two spaces a level
IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   _io
import time:       300 |        300 |     numpy._core
import time:       900 |       1200 |   numpy
import time:       200 |       1500 | kmrec_gpu.backends
import time:       400 |        400 |     scipy.stats
import time:       500 |        900 |   sklearn.base
import time:        50 |        950 | kmrec_gpu.estimator
import time:        70 |         70 |   json
import time:        10 |         80 | surprise
import time:        20 |         20 | numpy
"""


def test_main_job_bench_counts_the_libraries_kmrec_gpu_asks_for_not_their_own_imports(
        monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # as `python bench/X.py` has it
    monkeypatch.delitem(sys.modules, "bench_main_job", raising=False)
    libs = _import("bench_main_job").imported_libraries(IMPORTTIME)
    # numpy under kmrec_gpu, sklearn.base under ours (not scipy.stats, sklearn's own),
    # surprise at the top; the stdlib and private modules are not libraries
    assert libs == ["numpy", "sklearn.base", "surprise"]


def test_mutation_report_scores_each_module_from_mutmuts_meta_files(tmp_path, monkeypatch):
    mr = _import("mutation_report")
    meta = tmp_path / "mutants" / "kmrec_gpu" / "metrics"
    meta.mkdir(parents=True)
    codes = {f"kmrec_gpu.metrics.rating.x_rmse__mutmut_{i}": c
             for i, c in enumerate([1, 1, 1, 0, 0, -24, 33, 3, None], 1)}
    (meta / "rating.py.meta").write_text(json.dumps({"exit_code_by_key": codes}))
    eq = tmp_path / "eq.yaml"
    eq.write_text("kmrec_gpu.metrics.rating.x_rmse__mutmut_4: 'a renamed local variable'\n")
    monkeypatch.setattr(mr, "diff_of", lambda name, module: f"change of {name}")
    monkeypatch.chdir(tmp_path)
    out, md = tmp_path / "m.jsonl", tmp_path / "m.md"
    args = ["--mutants", str(tmp_path / "mutants"), "--equivalent", str(eq), "--out", str(out),
            "--md", str(md)]
    assert mr.main(args) == 0
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    s = row["modules"]["kmrec_gpu/metrics/rating.py"]
    # 4 killed (exit 1 or 3) + 1 timeout detected; 1 equivalent survivor set aside;
    # 1 survivor, 1 without tests, 1 unchecked left: 5 of 8
    assert (s["mutants"], s["killed"], s["timeout"], s["survived"], s["no_tests"],
            s["other"], s["equivalent"]) == (9, 4, 1, 2, 1, 1, 1)
    assert s["score"] == pytest.approx(5 / 8)
    text = md.read_text()
    assert "62.5% (below goal)" in text and "a renamed local variable" in text
    assert "x_rmse__mutmut_5` | survived" in text and "**not equivalent**" in text
    assert mr.main(args) == 0  # a second run appends, the page shows both
    assert len(out.read_text().splitlines()) == 2 and text.count("## Run of") == 1
    assert md.read_text().count("## Run of") == 2
    # a reason edited afterwards: the view is rewritten from the stored rows, no row added
    eq.write_text("kmrec_gpu.metrics.rating.x_rmse__mutmut_4: 'a local variable renamed'\n")
    assert mr.main([*args, "--render-only"]) == 0
    assert len(out.read_text().splitlines()) == 2
    assert md.read_text().count("## Run of") == 2 and "a local variable renamed" in md.read_text()
    eq.write_text("- not a mapping\n")
    with pytest.raises(SystemExit, match="expected a mapping"):
        mr.main(args)
