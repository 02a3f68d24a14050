"""A ratings file of the user's own through the harness (``dataset=csv``): read with
load_csv's checks, its checksum in every row, an edited file a new cell, bad options named
before any cell runs, and ``kmrec datasets info --path`` for a first look."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kmrec_gpu.data import load
from kmrec_gpu.data.user_file import options
from kmrec_gpu.errors import InvalidArgument
from kmrec_gpu.harness.spec import CellSpec
from kmrec_gpu.harness.validate import problems
from kmrec_gpu.results import read_rows
from tests.test_harness import cfg_for, harness

ROOT = Path(__file__).resolve().parents[1]
CSV_ARGS = ["dataset=csv", "dataset.sep=';'", "dataset.columns.user=uid",
            "dataset.columns.item=mid", "dataset.columns.rating=stars"]


def _write(path: Path, n: int | None = None) -> Path:
    r = load("synthetic-small")
    lines = ["uid;mid;stars;note"]
    for u, i, x in list(zip(r.user_ids[r.users], r.item_ids[r.items], r.ratings))[:n]:
        lines.append(f"{u};{i};{x:g};x")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_small_grid_runs_on_a_csv_of_ones_own(tmp_path):
    f = _write(tmp_path / "mine.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = tmp_path / "res"
    cmd = [sys.executable, "-c", "from kmrec_gpu.harness.app import main; main()", "-m",
           *CSV_ARGS, f"dataset.path={f}", "model=bias_baseline,svd,kmeans_liked,popularity",
           "split=holdout,per_user", "timing.warmup=0", "timing.repeats=1", "eval.n_boot=20",
           f"results={res}", f"hydra.sweep.dir={tmp_path}/mr"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "mine.csv" in p.stdout and "8 ok" in p.stdout
    rows = read_rows(res / "runs")
    ev = [r for r in rows if r["phase"] == "evaluate"]
    assert len(ev) == 8 and all(r["status"] == "ok" for r in ev)
    sha = hashlib.sha256(f.read_bytes()).hexdigest()
    assert {r["dataset"]["sha256"] for r in rows} == {sha}
    assert {r["dataset"]["name"] for r in rows} == {"mine"}
    assert {r["dataset"]["n_ratings"] for r in rows} == {3000}
    # the report reads them like any other rows
    q = subprocess.run([sys.executable, "-m", "kmrec_gpu.cli", "report", "--results", str(res)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert q.returncode == 0, q.stderr[-3000:]
    assert "mine" in (res / "REPORT.md").read_text(encoding="utf-8")


def test_an_edited_file_is_a_new_cell(tmp_path):
    f = _write(tmp_path / "mine.csv")
    spec = CellSpec.from_config(cfg_for(tmp_path, *CSV_ARGS, f"dataset.path={f}",
                                        "model=bias_baseline"))
    before = spec.key
    _write(f, n=2000)
    assert CellSpec.from_config(cfg_for(tmp_path, *CSV_ARGS, f"dataset.path={f}",
                                        "model=bias_baseline")).key != before


def test_the_harness_reports_a_bad_line_with_its_number(tmp_path):
    f = _write(tmp_path / "mine.csv")
    lines = f.read_text().splitlines()
    lines[5] = "7;abc;4;x"
    f.write_text("\n".join(lines) + "\n")
    h = harness(tmp_path)
    res = h.run(CellSpec.from_config(cfg_for(tmp_path, *CSV_ARGS, f"dataset.path={f}",
                                             "model=bias_baseline")))
    assert res.status == "failed" and "line 6" in res.reason and "mine.csv" in res.reason


@pytest.mark.parametrize("over, msg", [
    (["dataset.path=???"], "dataset.path is required"),
    (["dataset.path=/nonexistent/r.csv"], "no such file"),
    (["dataset.path=X", "dataset.scale=[1,5]"], "expected [minimum, maximum, step]"),
    (["dataset.path=X", "+dataset.columns.movie=m"], "expected keys among"),
])
def test_bad_options_are_named_before_any_cell(tmp_path, over, msg):
    (tmp_path / "X").write_text("user,item,rating\n1,1,4\n")
    over = [o.replace("=X", f"={tmp_path / 'X'}") for o in over]
    found = problems(cfg_for(tmp_path, "dataset=csv", *over))
    assert any(msg in line for line in found), found


def test_options_read_the_scale_and_columns():
    o = options({"name": "csv", "path": "r.csv", "scale": [0.5, 5, 0.5],
                 "columns": {"user": "u", "timestamp": "ts"}})
    assert (o["scale"].minimum, o["scale"].maximum, o["scale"].step) == (0.5, 5.0, 0.5)
    assert (o["user_col"], o["item_col"], o["timestamp_col"]) == ("u", "item", "ts")
    with pytest.raises(InvalidArgument, match="dataset.scale"):
        options({"name": "csv", "path": "r.csv", "scale": [5, 1, 0.5]})


def test_datasets_info_reads_a_file_of_ones_own(tmp_path):
    f = _write(tmp_path / "mine.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "kmrec_gpu.cli", "datasets", "info", "--path",
                        str(f), "--sep", ";", "--columns", "uid,mid,stars", "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert '"n_ratings": 3000' in p.stdout
    assert hashlib.sha256(f.read_bytes()).hexdigest() in p.stdout
    assert "inferred 0.5 to 5 in steps of 0.5" in p.stderr


def _parquet(path: Path, **cols) -> Path:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table(cols), path)
    return path


def test_a_parquet_file_runs_through_the_same_cell(tmp_path):
    r = load("synthetic-small")
    f = _parquet(tmp_path / "mine.parquet", uid=r.user_ids[r.users].astype("int64"),
                 mid=r.item_ids[r.items].astype("int64"), stars=r.ratings.astype("float64"))
    h = harness(tmp_path)
    res = h.run(CellSpec.from_config(cfg_for(tmp_path, *CSV_ARGS, f"dataset.path={f}",
                                             "model=bias_baseline")))
    assert res.status == "ok", res.reason
    ev = res.rows[-1]
    assert ev["dataset"]["sha256"] == hashlib.sha256(f.read_bytes()).hexdigest()
    assert ev["dataset"]["n_ratings"] == 3000


@pytest.mark.parametrize("cols, msg", [
    ({"user": [1, 1], "item": [1, 1], "rating": [4.0, 3.0]},
     "rows 0 and 1: user 1 rated item 1 twice"),
    ({"user": [1, 2], "item": [1, 1], "rating": [4.0, None]}, "row 1: rating is missing"),
    ({"user": ["a", "b"], "item": [1, 1], "rating": [4.0, 3.0]}, "column user holds object"),
    ({"user": [1, 2], "item": [1, 1], "rating": [4.0, 3.3]}, "row 1: rating 3.3"),
    ({"uid": [1, 2], "item": [1, 1], "rating": [4.0, 3.0]}, "lack ['user']"),
])
def test_a_bad_parquet_file_is_named_with_the_row(tmp_path, cols, msg):
    from kmrec_gpu.data.user_file import load_parquet
    from kmrec_gpu.errors import MalformedInput
    from kmrec_gpu.ratings import RatingScale

    f = _parquet(tmp_path / "bad.parquet", **cols)
    with pytest.raises(MalformedInput, match=re.escape(msg)):
        load_parquet(f, scale=RatingScale(0.5, 5.0, 0.5))
