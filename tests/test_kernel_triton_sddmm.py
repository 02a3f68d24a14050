"""kernels/triton_sddmm.py against its PyTorch reference.

Interpreted on CPU tensors without a GPU (``tests/conftest.py`` sets ``TRITON_INTERPRET=1``
before triton is imported), compiled on CUDA tensors with one. Small sizes, with partial
blocks of pairs and of rank, rank 1, and empty input.
"""

from __future__ import annotations

import os

os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton: see tests/conftest.py

import pytest
import torch

from kernels import triton_sddmm as ts

DEVICE = "cpu" if ts.INTERPRETED else "cuda"
# relative to the size of the terms: the sums run in another order on each side
TOL = {torch.float32: 2e-6, torch.float64: 1e-14, torch.float16: 2e-6, torch.bfloat16: 2e-6}


def factors(n, m, q, r, dtype, seed=0, index=torch.int64):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(m, r, generator=g).to(dtype)
    b = torch.randn(q, r, generator=g).to(dtype)
    rows = torch.randint(0, m, (n,), generator=g).to(index)
    cols = torch.randint(0, q, (n,), generator=g).to(index)
    bu = torch.randn(m, generator=g).to(dtype)
    bi = torch.randn(q, generator=g).to(dtype)
    return [t.to(DEVICE) for t in (a, b, rows, cols, bu, bi)]


def assert_close(got, want, a, b, rows, cols, dtype):
    assert got.dtype == ts.accumulation_dtype(dtype) and got.shape == want.shape
    size = (a.double()[rows].abs() * b.double()[cols].abs()).sum(1) + 10.0
    assert torch.all((got.double() - want.double()).abs() <= TOL[dtype] * size)


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("n, r", [(300, 1), (301, 70), (129, 16)])
@pytest.mark.parametrize("bias", ["none", "rows", "both+offset"])
def test_sampled_dot_matches_the_reference(dtype, n, r, bias):
    a, b, rows, cols, bu, bi = factors(n, 23, 41, r, dtype)
    kw = {"none": {}, "rows": {"row_bias": bu},
          "both+offset": {"row_bias": bu, "col_bias": bi, "offset": 3.53}}[bias]
    got = ts.sampled_dot(a, b, rows, cols, **kw)
    assert_close(got, ts.reference(a, b, rows, cols, **kw), a, b, rows, cols, dtype)


def test_small_blocks_and_int32_indices():
    a, b, rows, cols, bu, bi = factors(77, 9, 11, 37, torch.float32, seed=1, index=torch.int32)
    got = ts.sampled_dot(a, b, rows, cols, col_bias=bi, block_p=16, block_r=16)
    assert_close(got, ts.reference(a, b, rows, cols, col_bias=bi), a, b, rows, cols,
                 torch.float32)


def test_float64_offset_keeps_its_digits():
    # Triton passes a Python float as float32; the kernel takes the offset by pointer
    a, b, rows, cols, _, _ = factors(5, 3, 3, 2, torch.float64)
    mu = 3.501234567890123
    got = ts.sampled_dot(a, b, rows, cols, offset=mu) - ts.sampled_dot(a, b, rows, cols)
    assert torch.allclose(got, torch.full_like(got, mu), rtol=0, atol=1e-14)


def test_non_contiguous_factors():
    a, b, rows, cols, _, _ = factors(50, 8, 9, 6, torch.float32)
    at = a.T.contiguous().T  # same values, column-major strides
    assert not at.is_contiguous()
    assert torch.allclose(ts.sampled_dot(at, b, rows, cols), ts.reference(a, b, rows, cols),
                          rtol=1e-6, atol=1e-6)


def test_empty_input():
    a, b, rows, cols, bu, _ = factors(0, 4, 5, 3, torch.float32)
    got = ts.sampled_dot(a, b, rows, cols, row_bias=bu, offset=1.0)
    assert got.shape == (0,) and got.dtype == torch.float32


@pytest.mark.parametrize("change, msg", [
    (dict(b=torch.ones(5, 4)), "a has rank 3 but b has rank 4"),
    (dict(b=torch.ones(5, 3, dtype=torch.float64)), "must share a float dtype"),
    (dict(cols=torch.zeros(6, dtype=torch.int64)), "equally long"),
    (dict(rows=torch.zeros(7, dtype=torch.float32)), "int32 or int64"),
    (dict(row_bias=torch.ones(3)), r"row_bias has shape \(3,\); expected \(4,\)"),
])
def test_bad_input_is_refused(change, msg):
    args = dict(a=torch.ones(4, 3), b=torch.ones(5, 3), rows=torch.zeros(7, dtype=torch.int64),
                cols=torch.zeros(7, dtype=torch.int64), row_bias=None)
    args.update(change)
    args = {k: None if v is None else v.to(DEVICE) for k, v in args.items()}
    with pytest.raises(ValueError, match=msg):
        ts.sampled_dot(args.pop("a"), args.pop("b"), args.pop("rows"), args.pop("cols"), **args)
