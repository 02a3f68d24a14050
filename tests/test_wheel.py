"""Installed like a library: the wheel (not an editable install) carries the harness's
configuration, and kmrec-bench and kmrec report run from another folder, writing only
where the user says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.mark.slow
def test_the_wheel_runs_a_cell_and_a_report_outside_the_checkout(tmp_path):
    pytest.importorskip("hatchling")
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    b = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist),
                        str(ROOT)], capture_output=True, text=True, timeout=300)
    assert b.returncode == 0, b.stderr[-3000:]
    (wheel,) = dist.glob("kmrec_gpu-*.whl")
    i = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert i.returncode == 0, i.stderr[-3000:]
    assert (site / "kmrec_gpu" / "bench_conf" / "config.yaml").is_file()
    before = _files(site)
    # the wheel's package first on the path; the dependencies from this environment
    env = {k: v for k, v in os.environ.items() if k != "KMREC_BENCH_CONF"}
    env["PYTHONPATH"] = str(site)

    def run(*args: str) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                           cwd=work, timeout=300)
        assert p.returncode == 0, (args, p.stdout[-2000:], p.stderr[-3000:])
        return p

    where = run("-c", "import kmrec_gpu, kernels; print(kmrec_gpu.__file__, kernels.__file__)")
    assert all(Path(f).is_relative_to(site) for f in where.stdout.split())
    bench = [str(site / "bin" / "kmrec-bench")] if (site / "bin" / "kmrec-bench").is_file() \
        else ["-c", "from kmrec_gpu.harness.app import main; main()"]
    assert "dataset: " in run(*bench, "--help").stdout  # the packaged config groups
    out = run(*bench, "dataset=synthetic-small", "model=bias_baseline", "timing.warmup=0",
              "timing.repeats=1", "results=mine").stdout
    assert "results appended to mine/runs/" in out and "bias_baseline" in out
    run("-m", "kmrec_gpu.cli", "report", "--results", "mine")
    assert (work / "mine" / "REPORT.md").is_file()
    assert {p.name for p in (work / "mine" / "runs").glob("*.jsonl")}
    assert _files(site) == before  # nothing written into the installed package
    rows = (next((work / "mine" / "runs").glob("*.jsonl"))).read_text()
    assert '"git_revision": "unknown"' in rows  # no checkout's revision for a wheel's code
