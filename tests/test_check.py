"""``kmrec check``: baselines written then met, a degraded or failing model caught, missing
baselines refused clearly, tolerance directions, and the committed baselines covering the
whole suite."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from kmrec_gpu.cli import main
from kmrec_gpu.harness.check import BaselineError, compare_metric, run_check, suite
from kmrec_gpu.results import read_rows

ROOT = Path(__file__).resolve().parents[1]
SVD = "svd@ml-100k/holdout/cpu/seed0"
BIAS = "bias_baseline@ml-100k/holdout/cpu/seed0"
ONLY = ["bias_baseline@ml-100k/*", "svd@ml-100k/*"]


def console() -> Console:
    return Console(file=io.StringIO(), width=200)


def check(tmp: Path, **kw) -> tuple[int, str]:
    c = console()
    code = run_check(results_dir=tmp / "results", baselines_path=tmp / "check.json",
                     threads=1, console=c, **kw)
    return code, c.file.getvalue()


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, ml100k):
    tmp = tmp_path_factory.mktemp("check")
    code, out = check(tmp, update=True, only=ONLY)
    assert code == 0, out
    return tmp


def fresh(baseline: Path, tmp_path: Path) -> Path:
    (tmp_path / "check.json").write_text((baseline / "check.json").read_text())
    return tmp_path


def test_update_then_check_passes(baseline, tmp_path, clean_revision):
    data = json.loads((baseline / "check.json").read_text())
    assert sorted(data["cells"]) == [BIAS, SVD]
    assert data["seed"] == 0 and data["revision"] and data["device"]
    assert data["datasets"]["ml-100k"]["sha256"]
    assert 0.85 < data["cells"][SVD]["metrics"]["rmse"] < 1.1
    code, out = check(fresh(baseline, tmp_path), only=ONLY)
    assert code == 0, out
    assert "check passed" in out and "0 regressed or failed" in out
    # forced: the check's cells ran again and their rows were appended
    rows = read_rows(tmp_path / "results" / "runs")
    assert {r["model"]["name"] for r in rows if r["phase"] == "evaluate"} == {"svd",
                                                                               "bias_baseline"}
    assert {r["command"] for r in rows} == {"kmrec check --threads 1"}
    assert "check: rows appended to " in out and "svd on ml-100k" in out  # this console's
    # a second check in the same folder runs the cells again: never "done at this revision"
    code, out = check(tmp_path, only=ONLY)
    assert code == 0, out
    again = read_rows(tmp_path / "results" / "runs")
    assert sum(r["phase"] == "evaluate" for r in again) == 2 * sum(
        r["phase"] == "evaluate" for r in rows)


def test_filtered_update_keeps_other_cells(baseline, tmp_path):
    code, out = check(fresh(baseline, tmp_path), update=True, only=[BIAS])
    assert code == 0, out
    assert "no metric changed" in out
    assert sorted(json.loads((tmp_path / "check.json").read_text())["cells"]) == [BIAS, SVD]


def test_degraded_model_fails_and_is_named(baseline, tmp_path):
    # one component instead of 16: the SVD's RMSE moves far beyond 0.005
    code, out = check(fresh(baseline, tmp_path), only=[SVD],
                      overrides=["model.estimator.n_components=1"])
    assert code == 1
    line = next(ln for ln in out.splitlines() if SVD in ln and " rmse " in ln)
    assert "regressed" in line
    assert "check FAILED" in out


def test_failed_cell_fails(baseline, tmp_path):
    code, out = check(fresh(baseline, tmp_path), only=[SVD],
                      overrides={"model.estimator.solver": "no-such-solver"})
    assert code == 1
    assert any(SVD in ln and "failed" in ln for ln in out.splitlines()), out


def test_baseline_cell_not_run_fails(baseline, tmp_path):
    data = json.loads((baseline / "check.json").read_text())
    data["cells"][BIAS.replace("seed0", "seed7")] = data["cells"][BIAS]
    (tmp_path / "check.json").write_text(json.dumps(data))
    code, out = check(tmp_path, only=["bias_baseline@ml-100k/*"])
    assert code == 1
    assert any("seed7" in ln and "missing" in ln for ln in out.splitlines()), out


def test_other_data_fails(baseline, tmp_path):
    data = json.loads((baseline / "check.json").read_text())
    data["datasets"]["ml-100k"]["sha256"] = "0" * 64
    (tmp_path / "check.json").write_text(json.dumps(data))
    code, out = check(tmp_path, only=[BIAS])
    assert code == 1
    assert any(BIAS in ln and "dataset sha256" in ln and "dataset changed" in ln
               for ln in out.splitlines()), out


def test_missing_file_and_cell_are_clear_errors(baseline, tmp_path, capsys):
    with pytest.raises(BaselineError, match=r"kmrec check --update"):
        check(tmp_path, only=[SVD])
    assert main(["check", "--baselines", str(tmp_path / "none.json"),
                 "--results", str(tmp_path / "r")]) == 2
    assert "kmrec check --update" in capsys.readouterr().err
    data = json.loads((baseline / "check.json").read_text())
    del data["cells"][SVD]
    (tmp_path / "check.json").write_text(json.dumps(data))
    with pytest.raises(BaselineError, match=SVD.replace("/", ".")):
        check(tmp_path, only=ONLY)
    assert not (tmp_path / "results").exists()  # refused before fitting anything


def test_update_refuses_overrides(tmp_path):
    with pytest.raises(Exception, match="overrides"):
        check(tmp_path, update=True, only=[SVD], overrides=["model.estimator.n_components=1"])


def test_tolerance_directions():
    higher = {"abs": 0.005, "worse": "higher"}
    assert compare_metric("c", "rmse", 0.90, 0.904, higher) is None
    assert compare_metric("c", "rmse", 0.90, 0.906, higher).status == "regressed"
    assert compare_metric("c", "rmse", 0.90, 0.89, higher).status == "improved"
    lower = {"abs": 0.01, "worse": "lower"}
    assert compare_metric("c", "ndcg@10", 0.20, 0.185, lower).status == "regressed"
    assert compare_metric("c", "ndcg@10", 0.20, 0.215, lower).status == "improved"
    exact = {"abs": 0, "worse": "any"}
    assert compare_metric("c", "n_test", 10000, 10000, exact) is None
    assert compare_metric("c", "n_test", 10000, 10001, exact).status == "regressed"
    assert compare_metric("c", "n_test", 10000, 9999, exact).status == "regressed"
    rel = {"rel": 0.01, "worse": "higher"}
    assert compare_metric("c", "inertia", 36000.0, 36300.0, rel) is None
    assert compare_metric("c", "inertia", 36000.0, 36400.0, rel).status == "regressed"
    assert compare_metric("c", "inertia", 14.0, 14.2, rel).status == "regressed"
    # a metric turning NaN (stored as null) is a change; null to null is not
    assert compare_metric("c", "rmse", 0.9, None, higher).status == "regressed"
    assert compare_metric("c", "rmse", None, None, higher) is None


def test_committed_baselines_cover_the_suite():
    cells, tolerances = suite()
    data = json.loads((ROOT / "results" / "baselines" / "check.json").read_text())
    assert set(data["cells"]) == set(cells)
    assert {c["dataset"] for c in data["cells"].values()} <= set(data["datasets"])
    assert {"rmse", "ndcg@10", "precision@10"} <= set(tolerances)
    # every metric the baselines hold is compared (none silently ignored)
    assert {m for c in data["cells"].values() for m in c["metrics"]} <= set(tolerances)
