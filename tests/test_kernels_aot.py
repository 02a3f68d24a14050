"""Every Triton kernel specialization compiles for sm_80, sm_89 and sm_90 within the target's
shared memory, without a GPU (``kernels/aot.py``, in its own process: this one interprets
kernels); and the enumeration is the launchers' own rule, so nothing they can launch
escapes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from kernels import triton_kmeans as tk
from kernels import triton_sddmm as ts

ROOT = Path(__file__).resolve().parents[1]


def test_the_kmeans_specializations_cover_every_dtype_flag_and_precision():
    specs = tk.specializations()
    assert {s["x_ptr"] for s, _ in specs} == {"*fp16", "*bf16", "*fp32", "*fp64"}
    assert {m["UPDATE"] for _, m in specs} == {False, True}
    assert {m["PRECISION"] for _, m in specs} == set(tk.PRECISIONS)
    for dtype in tk.FLOAT_DTYPES:
        for k, d in tk.HARNESS_SHAPES:
            for update in (False, True):
                meta = tk.launch_meta(dtype, k, d, update=update, precision="ieee")
                assert (tk.signature(dtype, update), meta) in specs
    # float64 tiles stay within sm_89's 99 KB (64-wide slices need 128 KB there)
    assert {m["BLOCK_D"] for s, m in specs if s["x_ptr"] == "*fp64"} <= {16, 32}


def test_the_sddmm_specializations_cover_every_dtype_index_and_flag():
    specs = ts.specializations()
    assert {s["a_ptr"] for s, _ in specs} == {"*fp16", "*bf16", "*fp32", "*fp64"}
    assert {s["rows_ptr"] for s, _ in specs} == {"*i32", "*i64"}
    flags = {(m["HAS_ROW_BIAS"], m["HAS_COL_BIAS"], m["HAS_OFFSET"]) for _, m in specs}
    assert len(flags) == 8
    assert {m["BLOCK_R"] for _, m in specs} == {16, 32, 64}


def test_the_launchers_launch_with_the_enumerated_rule(monkeypatch):
    """assign() and sampled_dot() take their constexprs from launch_meta, whose results the
    enumeration lists."""
    calls = []
    for mod in (tk, ts):
        orig = mod.launch_meta
        monkeypatch.setattr(mod, "launch_meta", lambda *a, _o=orig, **kw: calls.append(
            _o(*a, **kw)) or calls[-1])
    if not tk.INTERPRETED:
        pytest.skip("the launch itself is tested on CUDA by the kernel tests")
    x = torch.randn(40, 20, dtype=torch.float64)
    tk.assign(x, x[:8], update=True)
    a, b = torch.randn(5, 16), torch.randn(6, 16)
    ts.sampled_dot(a, b, torch.tensor([0, 4]), torch.tensor([1, 5]), offset=1.0)
    km, sd = calls
    assert (tk.signature(torch.float64, True), km) in tk.specializations()
    assert (ts.signature(torch.float32, torch.int64, sd), sd) in ts.specializations()


def test_every_specialization_compiles_for_every_target_within_its_limits():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    p = subprocess.run([sys.executable, "-m", "kernels.aot", "--jobs", str(os.cpu_count() or 1)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    n = 3 * (len(tk.specializations()) + len(ts.specializations()))
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-4000:]
    assert (f"aot: {n} of {n} specializations compiled within their target's limits "
            "(sm_80, sm_89, sm_90)") in p.stdout
