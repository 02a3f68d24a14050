"""Bad kmrec-bench overrides are refused before any cell runs: exit 2, one line per bad
value, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kmrec_gpu.harness.validate import problems


def bench(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "kmrec-bench"), "dataset=synthetic-small",
         "progress=false", f"results={tmp_path / 'out'}", *overrides],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "HYDRA_FULL_ERROR": "0"})


@pytest.mark.parametrize("override, says", [
    ("seed=abc", "seed='abc': expected a non-negative integer"),
    ("seed=-1", "seed=-1: expected a non-negative integer"),
    ("threads=0", "threads=0: expected null or an integer >= 1"),
    ("timing.budget_s=abc", "timing.budget_s='abc': expected null or a number > 0"),
    ("timing.repeats=0", "timing.repeats=0: expected an integer >= 1"),
    ("split.params.test_fraction=1.5",
     "split.params.test_fraction=1.5: expected a number in (0, 1)"),
    ("eval.threshold=abc", "eval.threshold='abc': expected a number"),
])
def test_a_bad_override_exits_2_before_any_cell(tmp_path, override, says):
    res = bench(tmp_path, override)
    assert res.returncode == 2, res.stderr
    assert f"kmrec-bench: error: {says}" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()  # no row, no folder


def test_every_bad_value_is_listed_once(tmp_path):
    res = bench(tmp_path, "seed=abc", "threads=0", "eval.k=0")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("kmrec-bench: error:")]
    assert len(lines) == 3


def test_results_that_is_a_file_or_read_only_is_refused(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from kmrec_gpu.harness import validate

    f = tmp_path / "afile"
    f.write_text("x")
    cfg = OmegaConf.create({"results": str(f / "sub")})
    assert problems(cfg) == [f"results={f / 'sub'}: {f} is a file, not a folder"]
    (tmp_path / "r" / "runs").mkdir(parents=True)
    assert problems(OmegaConf.create({"results": str(tmp_path / "r")})) == []
    # root ignores permission bits (CI runs as root): ask the check as a plain user would
    monkeypatch.setattr(validate.os, "access", lambda *a: False)
    assert problems(OmegaConf.create({"results": str(tmp_path / "r")})) == [
        f"results={tmp_path / 'r'}: {tmp_path / 'r' / 'runs'} is not writable"]


def test_the_default_configuration_has_no_problem(tmp_path):
    from hydra import compose, initialize_config_dir

    from kmrec_gpu.harness.spec import conf_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose("config", overrides=[f"results={tmp_path}"])
    assert problems(cfg) == []
