"""Fused K-means assignment on a GPU (Triton): labels, distances and, optionally, the
update step's per-cluster sums and counts, in one pass that never writes the n × k
distance matrix.

Composed from library calls, an assignment writes ``X·Cᵀ`` (n × k) to memory, reads it
back for ``argmin``, again for ``min``, and builds an n × k one-hot for the update's
product. Here each program takes ``BLOCK_N`` rows: it computes their squared norms, walks
the centres ``BLOCK_K`` at a time with ``tl.dot`` over ``BLOCK_D``-wide slices of the
features, keeps the running minimum and its index in registers, and stores one label and
one distance per row. With ``update`` it then forms the tile's one-hot in registers and
adds ``onehotᵀ·X_tile`` (a ``tl.dot`` again) into the sums with one atomic add per
(centre, feature) per tile rather than one per row, so contention on a few centres stays
low.

Precision: products accumulate in float32 for float16, bfloat16 and float32 inputs (in
float64 for float64). ``precision="ieee"`` (default) keeps float32 products exact; TF32
("tf32") is faster on tensor cores but rounds inputs to 10 mantissa bits, enough to flip
near-tied labels, so it is opt-in. Ties go to the lowest centre index, as ``argmin``
does. Sums are added atomically, so on a GPU their last bits depend on the order the
tiles finish in.

:func:`reference` is the same computation in plain PyTorch, the oracle of the tests.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl
from triton import knobs

from kernels import triton_type

# Decided when @triton.jit decorates: interpreted kernels run on CPU tensors.
INTERPRETED = bool(knobs.runtime.interpret)

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
PRECISIONS = ("ieee", "tf32")


class Assignment(NamedTuple):
    labels: torch.Tensor  # (n,) int64: nearest centre, lowest index on ties
    min_dist: torch.Tensor  # (n,) squared distance to it, in the accumulation dtype
    sums: torch.Tensor | None  # (k, d) per-centre sum of its rows (``update``)
    counts: torch.Tensor | None  # (k,) int64 rows per centre (``update``)


@triton.jit
def _assign_kernel(x_ptr, c_ptr, cn_ptr, labels_ptr, mind_ptr, sums_ptr, counts_ptr,
                   n, k, d, stride_x, stride_c,
                   BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
                   UPDATE: tl.constexpr, ACC64: tl.constexpr, PRECISION: tl.constexpr,
                   UPCAST: tl.constexpr):
    acc_ty = tl.float64 if ACC64 else tl.float32
    # the dot's operand type: the input's, or float32 where UPCAST (see _upcast)
    op_ty = tl.float32 if UPCAST else x_ptr.dtype.element_ty
    pid = tl.program_id(0)
    rows = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n
    row_off = rows.to(tl.int64)[:, None] * stride_x
    span_d = tl.arange(0, BLOCK_D)

    x_sq = tl.zeros((BLOCK_N,), dtype=acc_ty)
    for d0 in range(0, d, BLOCK_D):
        cols = d0 + span_d
        xt = tl.load(x_ptr + row_off + cols[None, :],
                     mask=row_ok[:, None] & (cols < d)[None, :], other=0.0).to(acc_ty)
        x_sq += tl.sum(xt * xt, axis=1)

    best = tl.full((BLOCK_N,), float("inf"), dtype=acc_ty)
    arg = tl.zeros((BLOCK_N,), dtype=tl.int32)
    for k0 in range(0, k, BLOCK_K):
        centres = k0 + tl.arange(0, BLOCK_K)
        c_ok = centres < k
        dots = tl.zeros((BLOCK_N, BLOCK_K), dtype=acc_ty)
        for d0 in range(0, d, BLOCK_D):
            cols = d0 + span_d
            d_ok = cols < d
            xt = tl.load(x_ptr + row_off + cols[None, :],
                         mask=row_ok[:, None] & d_ok[None, :], other=0.0).to(op_ty)
            ct = tl.load(c_ptr + centres.to(tl.int64)[None, :] * stride_c + cols[:, None],
                         mask=c_ok[None, :] & d_ok[:, None], other=0.0).to(op_ty)
            dots = tl.dot(xt, ct, dots, input_precision=PRECISION, out_dtype=acc_ty)
        c_norm = tl.load(cn_ptr + centres, mask=c_ok, other=0.0)
        dist = tl.where(c_ok[None, :], c_norm[None, :] - 2.0 * dots, float("inf"))
        tile_min, tile_arg = tl.min(dist, axis=1, return_indices=True,
                                    return_indices_tie_break_left=True)
        better = tile_min < best  # strict: an earlier block keeps its tie
        best = tl.where(better, tile_min, best)
        arg = tl.where(better, tile_arg + k0, arg)

    tl.store(labels_ptr + rows, arg.to(tl.int64), mask=row_ok)
    tl.store(mind_ptr + rows, best + x_sq, mask=row_ok)

    if UPDATE:
        for k0 in range(0, k, BLOCK_K):
            centres = k0 + tl.arange(0, BLOCK_K)
            c_ok = centres < k
            member = (arg[:, None] == centres[None, :]) & row_ok[:, None]  # (BLOCK_N, BLOCK_K)
            count = tl.sum(member.to(tl.int32), axis=0)
            tl.atomic_add(counts_ptr + centres, count, mask=c_ok & (count > 0))
            onehot_t = tl.trans(member.to(op_ty))  # 0 and 1: exact in any float
            for d0 in range(0, d, BLOCK_D):
                cols = d0 + span_d
                d_ok = cols < d
                xt = tl.load(x_ptr + row_off + cols[None, :],
                             mask=row_ok[:, None] & d_ok[None, :], other=0.0).to(op_ty)
                part = tl.dot(onehot_t, xt, input_precision=PRECISION, out_dtype=acc_ty)
                tl.atomic_add(sums_ptr + centres.to(tl.int64)[:, None] * d + cols[None, :], part,
                              mask=(c_ok & (count > 0))[:, None] & d_ok[None, :])


def _upcast(dtype: torch.dtype) -> bool:
    """Triton 3.9's interpreter keeps bfloat16 as raw uint16 bits and computes on the bits,
    so interpreted bfloat16 operands go to float32 before ``tl.dot``: a product of two
    bfloat16 numbers is exact in float32, as in the tensor cores' float32 accumulation."""
    return INTERPRETED and dtype == torch.bfloat16


def _block(size: int, cap: int) -> int:
    # tl.dot needs every block dimension >= 16 on a GPU
    return int(min(cap, max(16, triton.next_power_of_2(max(size, 1)))))


# float64 tiles of 64 x 64 x 64 need 128 KB of shared memory (kernels/aot.py compiles
# them), more than the 99 KB a block gets on sm_86/sm_89 (L4, A10, RTX 30/40): 32-wide
# feature slices keep float64 at 80 KB
_MAX_BLOCK_D = {torch.float64: 32}


def launch_meta(dtype: torch.dtype, k: int, d: int, *, update: bool, precision: str,
                block_n: int = 64, block_k: int | None = None, block_d: int | None = None
                ) -> dict:
    """The constexprs of a launch: the specialization Triton compiles for it. The one rule
    :func:`assign` launches with and :func:`specializations` enumerates."""
    return {"BLOCK_N": _block(block_n, block_n), "BLOCK_K": block_k or _block(k, 64),
            "BLOCK_D": block_d or _block(d, _MAX_BLOCK_D.get(dtype, 64)),
            "UPDATE": bool(update), "ACC64": accumulation_dtype(dtype) == torch.float64,
            "PRECISION": precision, "UPCAST": _upcast(dtype)}


# (k, d) of the harness's K-means cells: 7, 8 and 15 clusters (tuned searches up to 40) over
# genre profiles (19, 20 genres) and liked-movie matrices (1,682 and 9,742 movies)
HARNESS_SHAPES = ((15, 9742), (8, 20), (40, 1682), (7, 19))


def signature(dtype: torch.dtype, update: bool) -> dict[str, str]:
    """Triton's type of every argument :func:`assign` passes (pointers by their tensors)."""
    t, acc = triton_type(dtype), triton_type(accumulation_dtype(dtype))
    return {"x_ptr": f"*{t}", "c_ptr": f"*{t}", "cn_ptr": f"*{acc}", "labels_ptr": "*i64",
            "mind_ptr": f"*{acc}", "sums_ptr": f"*{acc}",
            "counts_ptr": "*i32" if update else "*i64",  # the labels stand in without update
            "n": "i32", "k": "i32", "d": "i32", "stride_x": "i32", "stride_c": "i32"}


def specializations(shapes=HARNESS_SHAPES) -> list[tuple[dict, dict]]:
    """(signature, constexprs) of every launch the dispatch can make on ``shapes``: each
    dtype, update flag and precision, with the blocks :func:`launch_meta` picks."""
    out, seen = [], set()
    for dtype in FLOAT_DTYPES:
        for update in (False, True):
            for precision in PRECISIONS:
                for k, d in shapes:
                    meta = launch_meta(dtype, k, d, update=update, precision=precision)
                    key = (dtype, tuple(meta.items()))
                    if key not in seen:
                        seen.add(key)
                        out.append((signature(dtype, update), meta))
    return out


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check(x: torch.Tensor, centers: torch.Tensor) -> None:
    if x.ndim != 2 or centers.ndim != 2:
        raise ValueError(f"x and centers must be 2-d, got shapes {tuple(x.shape)} and "
                         f"{tuple(centers.shape)}")
    if x.shape[1] != centers.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but centers have {centers.shape[1]}")
    if centers.shape[0] < 1:
        raise ValueError("centers is empty; expected at least one centre")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"x has dtype {x.dtype}; expected one of {FLOAT_DTYPES}")


def assign(x: torch.Tensor, centers: torch.Tensor, *, update: bool = False,
           precision: str = "ieee", block_n: int = 64, block_k: int | None = None,
           block_d: int | None = None) -> Assignment:
    """Nearest centre of every row of ``x`` (n × d), its squared distance, and with
    ``update`` the per-centre sums and counts. ``centers`` are cast to ``x``'s dtype."""
    _check(x, centers)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}; expected one of {PRECISIONS}")
    n, d = x.shape
    k = centers.shape[0]
    acc = accumulation_dtype(x.dtype)
    x = x.contiguous()
    c = centers.to(device=x.device, dtype=x.dtype).contiguous()
    c_norm = (c.to(acc) * c.to(acc)).sum(dim=1)  # of the centres the products see
    labels = torch.empty(n, dtype=torch.int64, device=x.device)
    min_dist = torch.empty(n, dtype=acc, device=x.device)
    sums = torch.zeros((k, d), dtype=acc, device=x.device) if update else None
    counts = torch.zeros(k, dtype=torch.int32, device=x.device) if update else None
    if n:
        meta = launch_meta(x.dtype, k, d, update=update, precision=precision, block_n=block_n,
                           block_k=block_k, block_d=block_d)
        _assign_kernel[(triton.cdiv(n, meta["BLOCK_N"]),)](
            x, c, c_norm, labels, min_dist, sums if update else min_dist,
            counts if update else labels, n, k, d, x.stride(0), c.stride(0), **meta)
    return Assignment(labels, min_dist, sums,
                      counts.to(torch.int64) if counts is not None else None)


def reference(x: torch.Tensor, centers: torch.Tensor, *, update: bool = False) -> Assignment:
    """:func:`assign` in plain PyTorch: the distance matrix, ``argmin``, ``index_add``."""
    _check(x, centers)
    acc = accumulation_dtype(x.dtype)
    xa = x.to(acc)
    ca = centers.to(device=x.device, dtype=x.dtype).to(acc)
    dist = (ca * ca).sum(dim=1)[None, :] - 2.0 * (xa @ ca.T)
    labels = torch.argmin(dist, dim=1) if len(x) else torch.empty(0, dtype=torch.int64)
    best = dist.gather(1, labels[:, None])[:, 0]
    min_dist = best + (xa * xa).sum(dim=1)
    if not update:
        return Assignment(labels, min_dist, None, None)
    k = centers.shape[0]
    sums = torch.zeros((k, x.shape[1]), dtype=acc, device=x.device).index_add_(0, labels, xa)
    counts = torch.bincount(labels, minlength=k)
    return Assignment(labels, min_dist, sums, counts)
