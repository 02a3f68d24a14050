"""The cell runner: rows per phase, skip-if-done per revision, failures recorded, peers,
the CPU-vs-GPU comparison, timing with a budget, peak memory, and the app end to end."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from rich.console import Console

from kmrec_gpu.backends import cuda_status
from kmrec_gpu.harness import runner
from kmrec_gpu.harness.app import cell_with_peers, run, run_grid
from kmrec_gpu.harness.memory import PeakMemory
from kmrec_gpu.harness.runner import Harness, timed_budget
from kmrec_gpu.harness.spec import CellSpec, conf_dir
from kmrec_gpu.results import read_rows


def cfg_for(tmp_path, *overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=["dataset=synthetic-small", "timing.warmup=0",
                                            "timing.repeats=2", "eval.n_boot=20",
                                            f"results={tmp_path}", *overrides])


def harness(tmp_path, **kw) -> Harness:
    return Harness(tmp_path, out=Console(file=io.StringIO(), width=200), progress=False, **kw)


def text(h: Harness) -> str:
    return h.console.file.getvalue()


def test_a_cell_writes_one_row_per_phase(tmp_path):
    h = harness(tmp_path)
    res = h.run(CellSpec.from_config(cfg_for(tmp_path, "model=svd")))
    assert res.status == "ok"
    rows = read_rows(h.results_file)
    assert [r["phase"] for r in rows] == ["load", "split", "fit", "predict", "evaluate"]
    fit, pred, ev = rows[2:]
    assert fit["wall_time"]["repeats"] == 2 and len(fit["wall_time"]["times_s"]) == 2
    assert fit["throughput"]["unit"] == "ratings/s" and fit["throughput"]["value"] > 0
    assert set(fit["peak_memory"]) == {"host_bytes", "host_delta_bytes", "device_bytes"}
    assert fit["peak_memory"]["device_bytes"] is None  # the CPU has no device memory
    assert 0.5 < ev["metrics"]["rmse"] < 2 and ev["metrics"]["n_test"] == rows[1]["split"]["n_test"]
    assert ev["metrics"]["rmse_ci_low"] <= ev["metrics"]["rmse"] <= ev["metrics"]["rmse_ci_high"]
    hx = ev["extra"]["harness"]
    assert hx["cell_key"] == res.spec.key and hx["model_config"] == "svd"
    assert hx["task"] == "rating" and hx["role"] == "model"
    assert ev["model"]["params"]["n_components"] == 16 and ev["seed"] == 0


def test_topk_cell_scores_rankings_and_keeps_cluster_facts(tmp_path):
    h = harness(tmp_path)
    res = h.run(CellSpec.from_config(cfg_for(tmp_path, "model=kmeans_liked")))
    assert res.status == "ok"
    assert {"precision@10", "ndcg@10", "recall@10", "inertia"} <= set(res.metrics)
    assert [r["phase"] for r in res.rows] == ["fit", "recommend", "evaluate"]


def test_finished_cell_is_skipped_at_the_same_clean_revision(tmp_path, clean_revision):
    cfg = cfg_for(tmp_path, "model=bias_baseline")
    assert harness(tmp_path).run(CellSpec.from_config(cfg)).status == "ok"
    h2 = harness(tmp_path)
    assert h2.run(CellSpec.from_config(cfg)).status == "done"
    assert "force=true" in text(h2) and h2.results_file is None  # nothing written
    assert harness(tmp_path, force=True).run(CellSpec.from_config(cfg)).status == "ok"
    other = CellSpec.from_config(cfg_for(tmp_path, "model=bias_baseline", "seed=1"))
    assert harness(tmp_path).run(other).status == "ok"


def test_a_dirty_tree_never_skips(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "git_revision", lambda: "a" * 40 + "-dirty")
    cfg = cfg_for(tmp_path, "model=global_mean")
    assert harness(tmp_path).run(CellSpec.from_config(cfg)).status == "ok"
    assert harness(tmp_path).run(CellSpec.from_config(cfg)).status == "ok"


class Exploding:
    def __init__(self, **kw):
        self.kw = kw

    def get_params(self, deep=True):
        return self.kw

    def fit(self, train):
        raise MemoryError("pretend the fit ran out of memory")


def test_a_failed_cell_is_recorded_and_the_grid_goes_on(tmp_path):
    bad = cfg_for(tmp_path, "model=global_mean")
    bad.model.name = "exploding"
    bad.model.estimator = OmegaConf.create({"_target_": f"{__name__}.Exploding"})
    good = cfg_for(tmp_path, "model=global_mean")
    h = harness(tmp_path)
    results = run_grid(h, [bad, good], "test")
    assert [r.status for r in results] == ["failed", "ok"]
    failed = [r for r in read_rows(h.results_file) if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["phase"] == "end-to-end"
    assert failed[0]["reason"].startswith("out of memory: MemoryError")
    assert "failed" in text(h) and "exploding" in text(h)


def test_cpu_only_peer_on_cuda_is_skipped_and_a_missing_gpu_fails(tmp_path):
    h = harness(tmp_path)
    res = h.run(CellSpec.from_config(cfg_for(tmp_path, "model=sklearn_svd", "backend=cuda")))
    assert res.status == "skipped" and "runs on ['cpu']" in res.reason
    res = h.run(CellSpec.from_config(cfg_for(tmp_path, "model=svd", "backend=cuda")))
    if cuda_status().usable:
        assert res.status == "ok"
    else:
        assert res.status == "failed" and "no usable backend" in res.reason
        assert res.rows[0]["backend"]["device_name"] == "not resolved"


def test_size_limit_skips_with_the_reason(tmp_path):
    cfg = cfg_for(tmp_path, "model=svd_dense", "model.limits.max_dense_cells=10")
    res = harness(tmp_path).run(CellSpec.from_config(cfg))
    assert res.status == "skipped" and "dense cells > 10" in res.reason
    assert "materialises" in res.reason


def test_peers_run_on_the_same_split_in_the_same_process(tmp_path):
    h = harness(tmp_path)
    out = cell_with_peers(h, cfg_for(tmp_path, "model=kmeans_liked", "with_peers=true"))
    assert [r.spec.model["name"] for r in out] == ["kmeans_liked", "sklearn_kmeans_liked"]
    assert all(r.status == "ok" for r in out)
    rows = read_rows(h.results_file)
    assert [r["phase"] for r in rows].count("split") == 1  # one split, shared
    peer = [r for r in rows if r["extra"]["harness"]["role"] == "peer"]
    assert peer and all(r["extra"]["harness"]["peer_of"] == "kmeans_liked" for r in peer)


def test_cpu_vs_gpu_compares_namespaces_without_a_gpu(tmp_path):
    cfg = cfg_for(tmp_path, "sweep=cpu_vs_gpu", "sweep.grid.dataset=[synthetic-small]",
                  "sweep.grid.model=[svd,kmeans_liked]", "progress=false")
    if cuda_status().usable:
        pytest.skip("a GPU is present: the fallback path is not taken")
    runner_h = harness(tmp_path)
    from kmrec_gpu.harness import app
    app._HARNESS[(str(cfg.results), False, None, False)] = runner_h
    try:
        run(cfg)
    finally:
        app._HARNESS.clear()
    rows = [r for r in read_rows(runner_h.results_file) if "comparison" in r["extra"]]
    assert len(rows) == 2
    by = {r["model"]["name"]: r["extra"]["comparison"] for r in rows}
    assert all(not c["gpu_found"] and "no GPU was found" in c["note"] for c in by.values())
    assert by["svd"]["a"]["library"] == "numpy" and by["svd"]["b"]["library"] == "torch"
    assert by["svd"]["parity"]["singular_values_max_rel"] < 1e-8
    assert by["kmeans_liked"]["parity"]["ari"] > 0.99
    assert abs(by["svd"]["parity"]["metric_deltas"]["rmse"]) < 1e-8
    assert by["svd"]["speedup"]["fit"] > 0
    assert "no GPU was found" in text(runner_h)


def test_timed_budget_runs_once_when_the_first_run_is_long():
    calls, syncs = [], []
    out, t = timed_budget(lambda: calls.append(1) or len(calls), warmup=1, repeats=3,
                          budget_s=None, sync=lambda: syncs.append(1))
    assert len(calls) == 4 and t.warmup == 1 and len(t.times_s) == 3 and out == 4
    assert len(syncs) == 8  # before and after every run
    calls.clear()
    out, t = timed_budget(lambda: calls.append(1), warmup=1, repeats=3, budget_s=0.0,
                          sync=lambda: None)
    assert len(calls) == 1 and t.warmup == 0 and len(t.times_s) == 1
    assert t.warmup_s == 0.0


def test_timed_budget_records_the_warm_up_runs_own_seconds():
    import time

    calls: list[int] = []

    def slow_first() -> None:  # a first call that imports or compiles: slower than the rest
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.001)

    _, t = timed_budget(slow_first, warmup=2, repeats=2, budget_s=None, sync=lambda: None)
    assert t.warmup_s >= 0.05 and max(t.times_s) < 0.05
    assert t.as_dict()["warmup_s"] == t.warmup_s


def test_peak_memory_sees_a_transient_allocation():
    with PeakMemory() as pm:
        a = np.ones(40_000_000)  # 320 MB, freed before the phase ends
        a[::4096] += 1
        del a
    d = pm.as_dict()
    assert d["host_delta_bytes"] > 200e6 and d["device_bytes"] is None


def test_app_runs_a_grid_over_datasets_models_and_cpu_backends(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-c", "from kmrec_gpu.harness.app import main; main()", "-m",
           "dataset=synthetic-small,synthetic-ml-100k", "model=bias_baseline,popularity",
           "backend=cpu,cpu_torch", "timing.warmup=0", "timing.repeats=1", "eval.n_boot=0",
           f"results={tmp_path}", "threads=1"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "results appended to" in p.stdout
    rows = read_rows(tmp_path / "runs")
    done = {(r["dataset"]["name"], r["model"]["name"], r["extra"]["harness"]["backend_config"])
            for r in rows if r["phase"] == "evaluate"}
    skipped = {(r["model"]["name"], r["extra"]["harness"]["backend_config"])
               for r in rows if r["status"] == "skipped"}
    assert len(done) == 4
    # NumPy-only models are not run a second time under another CPU namespace's label
    assert skipped == {("bias_baseline", "cpu_torch"), ("popularity", "cpu_torch")}
    assert len(list((tmp_path / "runs").glob("*.jsonl"))) == 1  # one process, one file


def test_an_absent_optional_peer_is_skipped_with_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "surprise", None)  # import surprise -> ImportError
    res = harness(tmp_path).run(CellSpec.from_config(cfg_for(tmp_path, "model=surprise_svd")))
    assert res.status == "skipped" and "scikit-surprise is not installed" in res.reason
    assert "[peers]" in res.reason


def test_recommendations_come_in_slices_equal_to_one_call(tmp_path, monkeypatch):
    from kmrec_gpu.data.synthetic import synthetic_preset
    from kmrec_gpu.harness import evaluate
    from kmrec_gpu.models.popularity import GlobalPopularity
    from kmrec_gpu.splits import holdout

    tt = holdout(synthetic_preset("synthetic-small", seed=0), 0.2, seed=0)
    model = GlobalPopularity().fit(tt.train)
    whole = evaluate.predict("topk", model, tt, 10)
    monkeypatch.setattr(evaluate, "SCORE_BLOCK_BYTES", 8 * tt.train.n_items * 7)  # 7 users
    assert np.array_equal(evaluate.predict("topk", model, tt, 10), whole)
    assert whole.shape == (len(np.unique(tt.test.users)), 10)
