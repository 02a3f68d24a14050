"""``make gpu-check`` (bench/gpu_check.py): without a GPU it says so and exits 0 writing
nothing; its steps name files and options that exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "bench" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the check itself is what runs")
    p = subprocess.run([sys.executable, "bench/gpu_check.py", "--out", str(tmp_path / "g")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("gpu-check: no CUDA GPU here (")
    assert not (tmp_path / "g").exists()


def test_every_step_names_what_exists():
    from kmrec_gpu.harness.spec import options

    gpu_check = _module()
    for step in gpu_check.steps():
        for arg in step.argv:
            if arg.startswith(("tests/", "bench/")):
                assert (ROOT / arg).is_file(), (step.name, arg)
            if arg.startswith("model="):
                for m in arg.split("=")[1].split(","):
                    assert m in options("model"), m
            if arg.startswith("sweep="):
                assert (ROOT / "bench" / "conf" / "sweep" / f"{arg[6:]}.yaml").is_file()
    assert Path(gpu_check.steps()[2].argv[0]).name == "kmrec-bench"
