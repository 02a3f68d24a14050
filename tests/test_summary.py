"""The table that ends a kmrec-bench run: every cell once, each peer under its model on the
same split with the time ratio, stored cells' figures, failures with their reason."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from kmrec_gpu.harness.runner import CellResult
from kmrec_gpu.harness.spec import CellSpec
from kmrec_gpu.harness.summary import print_summary, table_rows
from kmrec_gpu.timing import Timing
from tests.test_harness import cfg_for, harness


def _spec(tmp_path, model: str, *over: str, role: str = "model", peer_of: str | None = None):
    return CellSpec.from_config(cfg_for(tmp_path, f"model={model}", *over), role=role,
                                peer_of=peer_of)


def _ok(spec, fit_s: float, metrics: dict) -> CellResult:
    return CellResult(spec, "ok", metrics=metrics,
                      timings={"fit": Timing((fit_s, fit_s), 0), "predict": Timing((0.5,), 0)})


def test_peers_sit_under_their_model_with_the_fit_ratio(tmp_path):
    svd = _ok(_spec(tmp_path, "svd"), 2.0, {"rmse": 0.9, "rmse_ci_low": 0.88,
                                             "rmse_ci_high": 0.92, "mae": 0.7})
    peer = _ok(_spec(tmp_path, "sklearn_svd", role="peer", peer_of="svd"), 8.0,
               {"rmse": 0.91, "mae": 0.71})
    km = _ok(_spec(tmp_path, "kmeans_liked"), 1.0,
             {"ndcg@10": 0.12, "ndcg@10_ci_low": 0.1, "ndcg@10_ci_high": 0.14,
              "precision@10": 0.07})
    failed = CellResult(_spec(tmp_path, "nmf"), "failed", "out of memory")
    # run order: the peer finished last; the table puts it under its model
    rows = table_rows([svd, km, failed, peer])
    assert [r[2] for r in rows] == ["svd", "  peer sklearn_svd", "kmeans_liked", "nmf"]
    assert rows[0][:2] == ["synthetic-small", "holdout"] and rows[1][:2] == ["", ""]
    assert rows[0][3] == "RMSE 0.9000 [0.8800, 0.9200]; MAE 0.7000"
    assert rows[1][3] == "RMSE 0.9100; MAE 0.7100" and rows[1][6] == "0.25×"
    assert rows[0][4] == "2" and rows[0][5] == "0.5" and rows[0][6] == ""
    assert rows[2][3] == "nDCG@10 0.1200 [0.1000, 0.1400]; P@10 0.0700"
    assert rows[3][3] == "failed: out of memory"


def test_a_peer_on_another_seed_is_not_compared(tmp_path):
    svd = _ok(_spec(tmp_path, "svd"), 2.0, {"rmse": 0.9})
    peer = _ok(_spec(tmp_path, "sklearn_svd", "seed=1", role="peer", peer_of="svd"), 8.0,
               {"rmse": 0.91})
    rows = table_rows([svd, peer])
    assert rows[1][2] == "  peer sklearn_svd" and rows[1][6] == ""


def test_a_stored_cell_shows_its_stored_figures(tmp_path, clean_revision):
    cfg = cfg_for(tmp_path, "model=bias_baseline")
    first = harness(tmp_path).run(CellSpec.from_config(cfg))
    again = harness(tmp_path).run(CellSpec.from_config(cfg))
    assert again.status == "done" and again.metrics == first.metrics
    assert again.timings["fit"].times_s == first.timings["fit"].times_s
    assert again.timings["predict"].times_s == first.timings["predict"].times_s
    assert table_rows([again])[0][3].endswith("(stored)")


def test_the_closing_lines_name_the_rows_and_the_report_command(tmp_path):
    out = io.StringIO()
    res = _ok(_spec(tmp_path, "svd"), 2.0, {"rmse": 0.9})
    print_summary([res], where="R/runs/x.jsonl", results_dir="R",
                  console=Console(file=out, width=200))
    text = out.getvalue()
    assert "held-out metrics" in text and "RMSE 0.9000" in text
    assert text.strip().splitlines()[-1] == ("kmrec-bench: 1 ok; results appended to "
                                             "R/runs/x.jsonl; render the report with: "
                                             "kmrec report --results R")


def test_the_app_ends_with_the_table_and_quiet_leaves_it_out(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    base = [sys.executable, "-c", "from kmrec_gpu.harness.app import main; main()", "-m",
            "dataset=synthetic-small", "model=bias_baseline,svd", "with_peers=true",
            "timing.warmup=0", "timing.repeats=1", "eval.n_boot=0", f"results={tmp_path}",
            f"hydra.sweep.dir={tmp_path}/multirun"]
    p = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout
    assert out.count("results appended to") == 1  # once for the whole grid, not per job
    assert "bias_baseline" in out and "peer sklearn_svd" in out and "×" in out
    q = subprocess.run([*base, "--quiet"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert q.returncode == 0, q.stderr[-3000:]
    assert "held-out metrics" not in q.stdout and "results appended to" in q.stdout
