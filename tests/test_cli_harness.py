"""The harness's command lines: `kmrec report`, `kmrec check --help`, `kmrec-bench --help`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from kmrec_gpu.cli import build_parser, main
from kmrec_gpu.harness.spec import options

ROOT = Path(__file__).resolve().parents[1]


def test_kmrec_report_rebuilds_the_report_from_stored_rows(tmp_path, capsys):
    res = tmp_path / "results"
    # temporary files of a run writing right now are not results
    shutil.copytree(ROOT / "results", res, ignore=shutil.ignore_patterns(".*"))
    (res / "REPORT.md").unlink(missing_ok=True)
    assert main(["report", "--results", str(res)]) == 0
    assert f"report written to {res / 'REPORT.md'}" in capsys.readouterr().out
    assert (res / "REPORT.md").read_text().startswith("# kmrec_gpu results report")


def test_check_and_report_are_documented_in_help():
    sub = build_parser()._subparsers._group_actions[0].choices
    assert "--update" in sub["check"].format_help()
    assert "re-run" in " ".join(sub["report"].format_help().split())


def test_check_only_reaches_run_check(monkeypatch):
    import kmrec_gpu.harness.check as check

    seen = {}
    monkeypatch.setattr(check, "run_check", lambda **kw: seen.update(kw) or 0)
    assert main(["check", "--update", "--only", "attention_mlp@*", "--only", "svd@*"]) == 0
    assert seen["only"] == ["attention_mlp@*", "svd@*"] and seen["update"] is True
    assert main(["check"]) == 0 and seen["only"] == []


def test_kmrec_bench_help_lists_every_group_option():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", "from kmrec_gpu.harness.app import main; main()",
                        "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("kmrec-bench:")
    assert "--quiet leaves out the table" in p.stdout  # the one flag Hydra does not own
    for group in ("dataset", "model", "backend", "split", "sweep"):
        line = next(ln for ln in p.stdout.splitlines() if ln.startswith(f"{group}: "))
        assert line.split(": ", 1)[1].split(", ") == options(group)


def test_kmrec_help_examples_parse_and_the_two_helps_point_to_each_other():
    import shlex

    from kmrec_gpu.cli import EXAMPLES, build_parser

    parser = build_parser()
    lines = [ln.strip() for ln in EXAMPLES.splitlines() if ln.strip().startswith("kmrec ")]
    assert len(lines) >= 5
    for ln in lines:
        command = ln.split("  ")[0].split(" | ")[0].replace("[", "").replace("]", "")
        parser.parse_args(shlex.split(command)[1:])  # every flag shown exists
    assert "kmrec-bench --help" in parser.format_help()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-c", "from kmrec_gpu.harness.app import main; main()",
                        "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert "kmrec --help" in p.stdout
