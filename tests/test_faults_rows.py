"""Nothing lost, nothing silently wrong: a malformed stored row line is reported (file and
line) and skipped, never failing a healthy cell or stopping a run; baselines that do not
cover a metric fail the check; the report shows NaN metrics as n/a, refuses a results
folder that does not exist, and lists interrupted cells (also after a real SIGKILL)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hydra import compose, initialize_config_dir
from rich.console import Console

from kmrec_gpu.cli import main
from kmrec_gpu.errors import KmrecError, SchemaError
from kmrec_gpu.harness import runner
from kmrec_gpu.harness.check import FAILING, BaselineError, compare, load_baselines, run_check
from kmrec_gpu.harness.runner import Harness
from kmrec_gpu.harness.spec import CellSpec, conf_dir
from kmrec_gpu.report import build_report
from kmrec_gpu.results import make_row, read_rows

ROOT = Path(__file__).resolve().parents[1]
SHA = "cd" * 32
CHECK_CELL = "bias_baseline@synthetic-ml-100k/holdout/cpu/seed0"
RMSE_TOL = {"rmse": {"abs": 0.005, "worse": "higher"}, "mae": {"abs": 0.005, "worse": "higher"}}


# ---- helpers -----------------------------------------------------------------------------

def hx(cell_key: str, model: str = "mf") -> dict:
    return {"cell_key": cell_key, "sweep": None, "task": "rating", "model_config": model,
            "dataset_config": "toy", "backend_config": "cpu", "split_config": "holdout",
            "role": "model", "peer_of": None, "kernels": "auto"}


def row(run_id: str, phase: str, *, cell_key: str | None = None, model: str = "mf",
        metrics: dict | None = None, seed: int = 0, **kw) -> dict:
    return make_row(
        run_id=run_id, dataset={"name": "toy", "sha256": SHA, "n_ratings": 1000},
        split=None if phase == "load" else {"method": "holdout",
                                            "params": {"test_fraction": 0.1, "seed": seed}},
        seed=seed, model={"name": model, "params": {}},
        backend={"name": "cpu", "library": "numpy", "device_name": "Test CPU"}, phase=phase,
        metrics=metrics, wall_time=None,
        extra={"harness": hx(cell_key, model)} if cell_key else {}, **kw)


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n"
                              for ln in lines))
    return path


def corrupt_runs(results: Path, name: str = "20200101T000000Z-oldrun.jsonl") -> Path:
    """An old run file: a good row, a truncated line, a non-UTF-8 line, a good row."""
    good = json.dumps(row("oldrun", "evaluate", cell_key="old-cell", metrics={"rmse": 0.9}))
    return write_lines(results / "runs" / name,
                       [good, '{"schema_version": 1, "run_id": "oldr', b"\xff\xfe\x00 junk",
                        good])


def cfg_for(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=["dataset=synthetic-small", "timing.warmup=0",
                                            "timing.repeats=1", "eval.n_boot=0",
                                            f"results={tmp_path}", *overrides])


def harness(tmp_path: Path, **kw) -> Harness:
    return Harness(tmp_path, out=Console(file=io.StringIO(), width=200), progress=False, **kw)


@pytest.fixture
def clean_revision(monkeypatch):
    monkeypatch.setattr("kmrec_gpu.results.git_revision", lambda: "b" * 40)
    monkeypatch.setattr(runner, "git_revision", lambda: "b" * 40)


# ---- the tolerant reader -----------------------------------------------------------------

def test_strict_reader_names_file_and_line_for_non_utf8(tmp_path):
    p = write_lines(tmp_path / "x.jsonl", [json.dumps(row("r", "load")), b"\xff\xfe oops"])
    with pytest.raises(SchemaError, match=r"x\.jsonl, line 2: .*UTF-8"):
        read_rows(p)


def test_warn_reader_skips_bad_lines_once_each_with_file_and_line(tmp_path, capsys):
    f = corrupt_runs(tmp_path)
    rows = read_rows(tmp_path / "runs", on_error="warn")
    assert len(rows) == 2
    err = capsys.readouterr().err
    assert f"{f}:2" in err and f"{f}:3" in err and "UTF-8" in err
    assert "repair" in err and "move" in err
    assert read_rows(tmp_path / "runs", on_error="warn") == rows
    assert capsys.readouterr().err == ""  # reported once


def test_a_line_that_is_not_an_object_is_a_schema_error(tmp_path):
    p = write_lines(tmp_path / "y.jsonl", ["3"])
    with pytest.raises(SchemaError, match=r"y\.jsonl, line 1"):
        read_rows(p)
    assert read_rows(p, on_error="warn") == []


# ---- kmrec-bench and kmrec check ---------------------------------------------------------

def test_corrupt_old_line_leaves_a_new_cell_ok(tmp_path, capsys):
    f = corrupt_runs(tmp_path)
    h = harness(tmp_path)
    res = h.run(CellSpec.from_config(cfg_for(tmp_path, "model=bias_baseline")))
    assert res.status == "ok", res.reason
    mine = read_rows(h.results_file)
    assert [r["status"] for r in mine] == ["ok"] * len(mine)
    assert mine[-1]["phase"] == "evaluate"
    assert f"{f}:2" in capsys.readouterr().err


def test_corrupt_old_line_does_not_stop_skip_if_done(tmp_path, clean_revision, capsys):
    cfg = cfg_for(tmp_path, "model=bias_baseline")
    assert harness(tmp_path).run(CellSpec.from_config(cfg)).status == "ok"
    corrupt_runs(tmp_path)
    h2 = harness(tmp_path)
    # the good rows are still read: the finished cell is found, the bad lines skipped
    assert h2.run(CellSpec.from_config(cfg)).status == "done"
    assert "oldrun.jsonl:2" in capsys.readouterr().err


@pytest.fixture(scope="module")
def check_base(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("check-faults")
    corrupt_runs(tmp / "results")
    c = Console(file=io.StringIO(), width=200)
    code = run_check(results_dir=tmp / "results", baselines_path=tmp / "check.json",
                     threads=1, console=c, update=True, only=[CHECK_CELL])
    assert code == 0, c.file.getvalue()
    return tmp


def _check(tmp: Path, data: dict | None = None) -> tuple[int, str]:
    if data is not None:
        (tmp / "mine.json").write_text(json.dumps(data))
    c = Console(file=io.StringIO(), width=200)
    code = run_check(results_dir=tmp / "results", baselines_path=tmp / "mine.json",
                     threads=1, console=c, only=[CHECK_CELL])
    return code, c.file.getvalue()


def test_check_passes_with_a_corrupt_unrelated_line(check_base):
    code, out = _check(check_base, json.loads((check_base / "check.json").read_text()))
    assert code == 0, out
    assert "check passed" in out


def test_check_fails_on_a_missing_baseline_metric(check_base):
    data = json.loads((check_base / "check.json").read_text())
    del data["cells"][CHECK_CELL]["metrics"]["rmse"]
    code, out = _check(check_base, data)
    assert code == 1, out
    assert any(CHECK_CELL in ln and " rmse " in ln and "no baseline" in ln
               for ln in out.splitlines()), out


def test_check_fails_on_a_baseline_cell_without_metrics(check_base):
    data = json.loads((check_base / "check.json").read_text())
    data["cells"][CHECK_CELL]["metrics"] = {}
    code, out = _check(check_base, data)
    assert code == 1, out
    assert "check FAILED" in out and any(CHECK_CELL in ln and "no baseline" in ln
                                         for ln in out.splitlines()), out


def _res(metrics: dict) -> SimpleNamespace:
    return SimpleNamespace(status="ok", reason=None, metrics=metrics,
                           rows=[{"dataset": {"name": "toy", "sha256": SHA}}])


def _base(metrics: dict | None) -> dict:
    cell = {"dataset": "toy", "key": "k", "metrics": metrics}
    if metrics is None:
        del cell["metrics"]
    return {"cells": {"m@toy/holdout/cpu/seed0": cell},
            "datasets": {"toy": {"sha256": SHA, "n_ratings": None, "n_users": None,
                                 "n_items": None}}}


def test_compare_fails_missing_metric_and_empty_cell():
    res = {"m@toy/holdout/cpu/seed0": _res({"rmse": 0.9, "mae": 0.7})}
    findings, passed, _ = compare(_base({"mae": 0.7}), res, RMSE_TOL)
    bad = [f for f in findings if f.status in FAILING]
    assert [(f.cell, f.metric) for f in bad] == [("m@toy/holdout/cpu/seed0", "rmse")]
    findings, passed, _ = compare(_base({}), {"m@toy/holdout/cpu/seed0": _res({})}, RMSE_TOL)
    assert passed == 0 and any(f.status in FAILING for f in findings)


@pytest.mark.parametrize("metrics, msg", [
    ({"rmse": "0.9"}, r"m@toy/holdout/cpu/seed0.*'rmse'.*'0\.9'"),
    ({"rmse": float("nan")}, r"m@toy/holdout/cpu/seed0.*'rmse'.*nan"),
    ({"rmse": True}, r"m@toy/holdout/cpu/seed0.*'rmse'"),
    (None, r"m@toy/holdout/cpu/seed0.*metrics"),
])
def test_bad_baseline_values_are_clear_errors(tmp_path, metrics, msg):
    p = tmp_path / "b.json"
    p.write_text(json.dumps(_base(metrics)))  # NaN is written as the literal NaN
    with pytest.raises(BaselineError, match=msg):
        load_baselines(p)


def test_null_baseline_still_means_a_stored_nan(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps(_base({"rmse": None})))
    assert load_baselines(p)["cells"]["m@toy/holdout/cpu/seed0"]["metrics"]["rmse"] is None


# ---- claims ------------------------------------------------------------------------------

def test_claims_stored_rows_skip_a_corrupt_line(tmp_path, capsys):
    from kmrec_gpu.claims.build import stored_rows

    f = corrupt_runs(tmp_path)
    stored = stored_rows(tmp_path)
    assert set(stored) == {"old-cell"} and stored["old-cell"].file == f"runs/{f.name}"
    assert f"{f}:2" in capsys.readouterr().err


# ---- report ------------------------------------------------------------------------------

def test_report_on_a_missing_folder_exits_2(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert main(["report", "--results", str(missing), "--out", str(tmp_path / "R.md")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not missing.exists() and not (tmp_path / "R.md").exists()
    with pytest.raises(KmrecError, match="nope"):
        build_report(missing)


def test_report_shows_nan_metrics_as_missing_and_counts_them(tmp_path):
    res = tmp_path / "results"
    rows = [row("r1", "evaluate", model="mf", seed=s, metrics={"rmse": v, "mae": 0.7})
            for s, v in ((0, 0.90), (1, float("nan")), (2, 0.94))]
    rows += [row("r1", "evaluate", model="broken", seed=0, metrics={"rmse": float("nan")})]
    write_lines(res / "runs" / "20200101T000000Z-r1.jsonl", [json.dumps(r) for r in rows])
    text = build_report(res, tmp_path / "R.md").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("| toy") and "| mf |" in ln)
    assert "0.9200" in line and "1 of 3 splits NaN" in line and "nan" not in line
    line = next(ln for ln in text.splitlines() if ln.startswith("| toy") and "| broken |" in ln)
    assert "n/a" in line and "1 of 1 splits NaN" in line and "nan" not in line


def test_report_skips_a_corrupt_line_and_says_so(tmp_path, capsys):
    res = tmp_path / "results"
    f = corrupt_runs(res)
    text = build_report(res, tmp_path / "R.md").read_text()
    assert f"{f}:2" in capsys.readouterr().err
    assert "2 malformed lines" in text and f"{f.name}:2" in text and f"{f.name}:3" in text


def test_report_lists_an_interrupted_cell(tmp_path):
    res = tmp_path / "results"
    rows = [row("run1", "load", cell_key="cut-cell", model="svd"),
            row("run1", "split", cell_key="cut-cell", model="svd"),
            row("run1", "evaluate", cell_key="whole-cell", model="nmf", metrics={"rmse": 0.9})]
    write_lines(res / "runs" / "20200101T000000Z-run1.jsonl", [json.dumps(r) for r in rows])
    text = build_report(res, tmp_path / "R.md").read_text()
    section = text.split("## Interrupted cells", 1)[1].split("\n## ", 1)[0]
    assert "| svd |" in section and "cut-cell" in section and "run1" in section
    assert "whole-cell" not in section


def test_sigkill_mid_cell_leaves_parseable_rows_and_a_reported_interruption(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a million warm-up fits: the cell is still fitting when it is killed
    cmd = [sys.executable, "-c", "from kmrec_gpu.harness.app import main; main()",
           "dataset=synthetic-small", "model=bias_baseline", "timing.warmup=1000000",
           "timing.repeats=1", "eval.n_boot=0", "threads=1", "progress=false",
           f"results={tmp_path}"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            files = list((tmp_path / "runs").glob("*.jsonl"))
            if files and len(files[0].read_bytes().splitlines()) >= 2:  # load and split
                break
            time.sleep(0.05)
        assert p.poll() is None, p.stderr.read().decode()[-3000:]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        p.stderr.close()
    assert p.returncode == -signal.SIGKILL
    rows = read_rows(tmp_path / "runs")  # strict: every line of every file parses
    assert [r["phase"] for r in rows] == ["load", "split"]
    out = tmp_path / "R.md"
    assert main(["report", "--results", str(tmp_path), "--out", str(out)]) == 0
    section = out.read_text().split("## Interrupted cells", 1)[1].split("\n## ", 1)[0]
    assert "| bias_baseline |" in section and rows[0]["run_id"] in section


_WRITER = """
import sys
from kmrec_gpu.results import ResultWriter, append_row, make_row
root, shared, tag = sys.argv[1], sys.argv[2], sys.argv[3]
w = ResultWriter(root)
for i in range(50):
    row = make_row(run_id=w.run_id, dataset={"name": "toy", "sha256": None}, split=None,
                   seed=i, model={"name": tag, "params": {}},
                   backend={"name": "cpu", "library": "numpy", "device_name": "cpu"},
                   phase="fit", wall_time=None)
    w.append(row)
    append_row(shared, row)
"""


def test_concurrent_writers_into_one_results_folder_lose_nothing(tmp_path):
    """Three processes append to their own run files and to one shared file at once."""
    import subprocess
    import sys

    shared = tmp_path / "bench" / "shared.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), str(shared),
                               f"w{k}"]) for k in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    runs = read_rows(tmp_path / "runs")
    assert len(runs) == 150 and len(list((tmp_path / "runs").glob("*.jsonl"))) == 3
    rows = read_rows(shared)
    assert sorted((r["model"]["name"], r["seed"]) for r in rows) == sorted(
        (f"w{k}", i) for k in range(3) for i in range(50))
