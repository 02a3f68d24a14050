"""The ``kmrec`` console script: help, datasets list/info/verify, and the main job."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from kmrec_gpu.cli import main
from kmrec_gpu.results import read_rows
from tests.conftest import load_real


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv", [[], ["datasets"], ["datasets", "list"], ["datasets", "info"],
                                  ["datasets", "verify"], ["run"]])
def test_help_everywhere(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    assert "usage: kmrec" in capsys.readouterr().out


def test_console_script_is_installed():
    exe = shutil.which("kmrec") or str(__import__("pathlib").Path(sys.executable).parent / "kmrec")
    out = subprocess.run([exe, "datasets", "list", "--json"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    names = {r["name"] for r in json.loads(out.stdout)}
    assert {"ml-100k", "ml-1m", "ml-32m", "seed-002", "synthetic-ml-25m"} <= names


def test_unknown_dataset_is_a_clean_error(capsys):
    code, out, err = run_cli(capsys, "datasets", "info", "ml-7m")
    assert code == 2 and "unknown dataset 'ml-7m'" in err and "Traceback" not in err


def test_info_of_a_synthetic_preset(capsys):
    code, out, _ = run_cli(capsys, "datasets", "info", "synthetic-small", "--json", "--seed", "0")
    info = json.loads(out)
    assert code == 0 and info["n_ratings"] > 0 and info["rating_step"] == 0.5


@pytest.mark.data
@pytest.mark.parametrize("name, counts", [
    ("ml-100k", (100_000, 943, 1_682)),
    ("ml-latest-small", (100_836, 610, 9_724)),
])
def test_info_json_counts(capsys, name, counts):
    load_real(name)
    code, out, _ = run_cli(capsys, "datasets", "info", name, "--json")
    info = json.loads(out)
    assert code == 0
    assert (info["n_ratings"], info["n_users"], info["n_items"]) == counts
    assert len(info["sha256"]) == 64 and info["source"]
    assert {"rating_min", "rating_max", "rating_step", "n_genres"} <= set(info)


@pytest.mark.data
def test_verify_ok_and_failure_exit_codes(capsys, tmp_path):
    r = load_real("ml-100k")
    code, out, _ = run_cli(capsys, "datasets", "verify", "ml-100k")
    assert code == 0 and "all checks passed" in out
    bad = tmp_path / "ml-100k"
    shutil.copytree(r.source.path, bad)
    with open(bad / "u.data", "r+b") as f:  # same size, one rating changed
        first = f.readline()
        f.seek(0)
        f.write(first.replace(b"\t3\t", b"\t4\t", 1))
    code, out, _ = run_cli(capsys, "datasets", "verify", "ml-100k", "--path", str(bad))
    assert code == 1 and "FAILED" in out and "u.data" in out


def test_run_is_the_harness_cells_of_the_two_baselines(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", "--dataset", "synthetic-small", "--results",
                           str(tmp_path), "--repeats", "1", "--n-boot", "50", "--seed", "3")
    assert code == 0 and "results appended to" in out and "bias_baseline" in out
    rows = read_rows(tmp_path)
    phases = [(r["model"]["name"], r["phase"]) for r in rows]
    assert ("global_mean", "load") in phases and ("bias_baseline", "evaluate") in phases
    ev = next(r for r in rows if r["model"]["name"] == "bias_baseline"
              and r["phase"] == "evaluate")
    assert ev["seed"] == 3 and ev["dataset"]["generator"]["seed"] == 3
    assert ev["metrics"]["rmse_ci_low"] <= ev["metrics"]["rmse"] <= ev["metrics"]["rmse_ci_high"]
    assert ev["backend"]["name"] == "cpu" and ev["backend"]["device_name"]
    # the same cell as kmrec-bench's: one key, so one figure whichever command ran it
    from kmrec_gpu.harness.spec import CellSpec
    from tests.test_harness import cfg_for

    bench = CellSpec.from_config(cfg_for(tmp_path, "model=bias_baseline", "seed=3",
                                         "timing.repeats=1", "timing.warmup=1",
                                         "eval.n_boot=50", "progress=false"))
    assert ev["extra"]["harness"]["cell_key"] == bench.key


def test_run_refuses_a_bad_value_before_any_row(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--dataset", "synthetic-small", "--results",
                           str(tmp_path), "--test-fraction", "1.5")
    assert code == 2 and "split.params.test_fraction=1.5" in err
    code, _, err = run_cli(capsys, "run", "--dataset", "ml-1b", "--results", str(tmp_path))
    assert code == 2 and "--dataset ml-1b" in err
    assert not (tmp_path / "runs").exists()


def test_run_without_data_says_how_to_get_it_and_the_synthetic_alternative(capsys, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("KMREC_DATA_DIR", str(tmp_path))
    code, _, err = run_cli(capsys, "run", "--results", str(tmp_path))
    assert code == 2 and "ml-latest-small.zip" in err and "synthetic-ml-latest-small" in err
    assert not (tmp_path / "runs").exists()
