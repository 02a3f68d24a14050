"""Sampled dense-dense products (SDDMM) on a GPU (Triton): for listed (row, column) pairs,
``out[j] = a[rows[j]] · b[cols[j]] (+ row_bias[rows[j]] + col_bias[cols[j]] + offset)``.

This scores held-out ratings of a factor model (``μ + b_u + b_i + p_u·q_i``) and gives
the factor product on the observed cells for the sparse residual of the scalable
iterative SVD and soft-impute. Composed from library calls it gathers two nnz × r
matrices into memory, multiplies them into a third and reduces it; here each program
takes ``BLOCK_P`` pairs, gathers their factor rows ``BLOCK_R`` columns at a time into
registers, and writes one number per pair: memory traffic is the factor rows read once
per pair, the indices and the output.

Accumulation is in float32 for float16, bfloat16 and float32 factors, in float64 for
float64 (the factor models run in float64 by default, and elementwise products need no
tensor cores, so float64 costs only bandwidth). Biases and the offset are added in the
accumulation dtype; the offset is passed by pointer because Triton passes Python floats
as float32.

:func:`reference` is the same computation in plain PyTorch, the oracle of the tests.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton import knobs

from kernels import triton_type

# Decided when @triton.jit decorates: interpreted kernels run on CPU tensors.
INTERPRETED = bool(knobs.runtime.interpret)

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INDEX_DTYPES = (torch.int32, torch.int64)


@triton.jit
def _sddmm_kernel(a_ptr, b_ptr, rows_ptr, cols_ptr, rb_ptr, cb_ptr, off_ptr, out_ptr,
                  n, r, stride_a, stride_b,
                  BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr, HAS_ROW_BIAS: tl.constexpr,
                  HAS_COL_BIAS: tl.constexpr, HAS_OFFSET: tl.constexpr, ACC64: tl.constexpr):
    acc_ty = tl.float64 if ACC64 else tl.float32
    pid = tl.program_id(0)
    pairs = pid.to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    ok = pairs < n
    ri = tl.load(rows_ptr + pairs, mask=ok, other=0).to(tl.int64)
    ci = tl.load(cols_ptr + pairs, mask=ok, other=0).to(tl.int64)
    span = tl.arange(0, BLOCK_R)
    acc = tl.zeros((BLOCK_P,), dtype=acc_ty)
    for r0 in range(0, r, BLOCK_R):
        k = r0 + span
        m = ok[:, None] & (k < r)[None, :]
        av = tl.load(a_ptr + ri[:, None] * stride_a + k[None, :], mask=m, other=0.0).to(acc_ty)
        bv = tl.load(b_ptr + ci[:, None] * stride_b + k[None, :], mask=m, other=0.0).to(acc_ty)
        acc += tl.sum(av * bv, axis=1)
    if HAS_ROW_BIAS:
        acc += tl.load(rb_ptr + ri, mask=ok, other=0.0).to(acc_ty)
    if HAS_COL_BIAS:
        acc += tl.load(cb_ptr + ci, mask=ok, other=0.0).to(acc_ty)
    if HAS_OFFSET:
        acc += tl.load(off_ptr).to(acc_ty)
    tl.store(out_ptr + pairs, acc, mask=ok)


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check(a, b, rows, cols, row_bias, col_bias) -> None:
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-d factor matrices, got shapes {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a has rank {a.shape[1]} but b has rank {b.shape[1]}")
    if a.dtype not in FLOAT_DTYPES or b.dtype != a.dtype:
        raise ValueError(f"a and b must share a float dtype of {FLOAT_DTYPES}, got {a.dtype} "
                         f"and {b.dtype}")
    if rows.ndim != 1 or rows.shape != cols.shape:
        raise ValueError(f"rows and cols must be 1-d and equally long, got shapes "
                         f"{tuple(rows.shape)} and {tuple(cols.shape)}")
    if rows.dtype not in INDEX_DTYPES or cols.dtype not in INDEX_DTYPES:
        raise ValueError(f"rows and cols must be int32 or int64, got {rows.dtype} and "
                         f"{cols.dtype}")
    for name, bias, length in (("row_bias", row_bias, a.shape[0]),
                               ("col_bias", col_bias, b.shape[0])):
        if bias is not None and tuple(bias.shape) != (length,):
            raise ValueError(f"{name} has shape {tuple(bias.shape)}; expected ({length},)")


def sampled_dot(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, *,
                row_bias: torch.Tensor | None = None, col_bias: torch.Tensor | None = None,
                offset: float | None = None, block_p: int = 128,
                block_r: int | None = None) -> torch.Tensor:
    """``a[rows[j]] · b[cols[j]]`` plus the biases and offset given, in the accumulation
    dtype. Indices are not range-checked on the device (a GPU cannot raise); callers pass
    codes of the factors' own vocabularies."""
    _check(a, b, rows, cols, row_bias, col_bias)
    n, r = int(rows.shape[0]), int(a.shape[1])
    acc = accumulation_dtype(a.dtype)
    out = torch.empty(n, dtype=acc, device=a.device)
    if n == 0:
        return out
    a, b = a.contiguous(), b.contiguous()
    off = (torch.tensor([offset], dtype=acc, device=a.device) if offset is not None else out)
    meta = launch_meta(a.dtype, r, row_bias=row_bias is not None,
                       col_bias=col_bias is not None, offset=offset is not None,
                       block_p=block_p, block_r=block_r)
    _sddmm_kernel[(triton.cdiv(n, block_p),)](
        a, b, rows.contiguous(), cols.contiguous(),
        row_bias.contiguous() if row_bias is not None else out,
        col_bias.contiguous() if col_bias is not None else out, off, out, n, r,
        a.stride(0), b.stride(0), **meta)
    return out


def launch_meta(dtype: torch.dtype, r: int, *, row_bias: bool, col_bias: bool, offset: bool,
                block_p: int = 128, block_r: int | None = None) -> dict:
    """The constexprs of a launch: the specialization Triton compiles for it. The one rule
    :func:`sampled_dot` launches with and :func:`specializations` enumerates."""
    return {"BLOCK_P": block_p,
            "BLOCK_R": block_r or int(min(64, triton.next_power_of_2(max(r, 1)))),
            "HAS_ROW_BIAS": bool(row_bias), "HAS_COL_BIAS": bool(col_bias),
            "HAS_OFFSET": bool(offset), "ACC64": accumulation_dtype(dtype) == torch.float64}


# factor ranks of the harness's models: 10 to 20 components, 50 and 64 factors
HARNESS_RANKS = (16, 20, 64)


def signature(dtype: torch.dtype, index: torch.dtype, meta: dict) -> dict[str, str]:
    """Triton's type of every argument :func:`sampled_dot` passes: an absent bias passes
    the output (accumulation dtype), a present one the factors' dtype (the models keep
    biases with their factors); the offset is always made in the accumulation dtype."""
    t, acc, i = (triton_type(dtype), triton_type(accumulation_dtype(dtype)),
                 triton_type(index))
    rb, cb = (t if meta[f] else acc for f in ("HAS_ROW_BIAS", "HAS_COL_BIAS"))
    return {"a_ptr": f"*{t}", "b_ptr": f"*{t}", "rows_ptr": f"*{i}", "cols_ptr": f"*{i}",
            "rb_ptr": f"*{rb}", "cb_ptr": f"*{cb}", "off_ptr": f"*{acc}",
            "out_ptr": f"*{acc}", "n": "i32", "r": "i32", "stride_a": "i32", "stride_b": "i32"}


def specializations(ranks=HARNESS_RANKS) -> list[tuple[dict, dict]]:
    """(signature, constexprs) of every launch the dispatch can make at ``ranks``: each
    dtype, index dtype and bias/offset combination, with the blocks :func:`launch_meta`
    picks."""
    out, seen = [], set()
    for dtype in FLOAT_DTYPES:
        for index in INDEX_DTYPES:
            for flags in range(8):
                for r in ranks:
                    meta = launch_meta(dtype, r, row_bias=bool(flags & 1),
                                       col_bias=bool(flags & 2), offset=bool(flags & 4))
                    key = (dtype, index, tuple(meta.items()))
                    if key not in seen:
                        seen.add(key)
                        out.append((signature(dtype, index, meta), meta))
    return out


def reference(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, *,
              row_bias: torch.Tensor | None = None, col_bias: torch.Tensor | None = None,
              offset: float | None = None) -> torch.Tensor:
    """:func:`sampled_dot` in plain PyTorch: gather both factor rows, multiply, sum."""
    _check(a, b, rows, cols, row_bias, col_bias)
    acc = accumulation_dtype(a.dtype)
    out = (a.to(acc)[rows] * b.to(acc)[cols]).sum(dim=1)
    if row_bias is not None:
        out = out + row_bias.to(acc)[rows]
    if col_bias is not None:
        out = out + col_bias.to(acc)[cols]
    if offset is not None:
        out = out + offset
    return out
