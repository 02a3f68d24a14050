"""The Triton kernels against their composed PyTorch equivalents, on a CUDA GPU.

    python bench/bench_triton.py                # every shape (minutes on an H100)
    python bench/bench_triton.py --quick        # small shapes, about a minute
    python bench/bench_triton.py --only sddmm   # one kernel: assign or sddmm

Why: both kernels exist to cut memory traffic. The composed K-means assignment writes and
re-reads an n x k distance matrix; the composed SDDMM materialises two gathered nnz x r
matrices and their product. If that traffic is what costs, a kernel's time approaches the
minimal-traffic model at the device's copy bandwidth while the composed path stays above
it, so each measurement is given as time, as FLOP/s and bytes/s under a stated model, and
as fractions of peaks measured in the same run and of the vendor's figures. Peers run
interleaved in one process, so their speedups hold when absolute times wander.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "results" / "kernels"
CORRECTNESS_TESTS = ("tests/test_kernel_triton_kmeans.py tests/test_kernel_triton_sddmm.py "
                     "tests/test_kernel_dispatch.py")
# ML-32M: 200,948 users and 87,585 movies (its README)
ML32M_USERS, ML32M_ITEMS = 200_948, 87_585
GLOBAL_MEAN = 3.5  # about ML-32M's mean rating: the offset of a biased MF
INDEX_ITEMSIZE = 8  # pairs carry int64 codes, as the library's and the CSR's indices are
LABEL_ITEMSIZE = 8  # assign writes int64 labels
TERA = 1e12

# -- vendor peaks -------------------------------------------------------------------------
# Dense rates (no 2:4 sparsity) in TFLOP/s and memory bandwidth in GB/s. Where a data sheet
# gives tensor-core figures "with sparsity" only, the dense rate is half of it, as its
# footnote says. fp64/fp32 are the vector (CUDA-core) rates; *_tensor the tensor cores'.
# Sources:
#   H100 SXM, PCIe, NVL: NVIDIA H100 Tensor Core GPU data sheet
#     (nvidia.com/en-us/data-center/h100)
#   H200 SXM, NVL: NVIDIA H200 Tensor Core GPU data sheet (nvidia.com/en-us/data-center/h200)
#   A100 40/80GB SXM, PCIe: NVIDIA A100 Tensor Core GPU data sheet
#     (nvidia.com/en-us/data-center/a100)
#   L4: NVIDIA L4 Tensor Core GPU data sheet (nvidia.com/en-us/data-center/l4)
#   RTX 4090: NVIDIA Ada Lovelace GPU Architecture whitepaper, appendix table (GeForce RTX
#     4090; tensor rates with FP32 accumulate, the kernels' accumulation)
#   L4 and RTX 4090 fp64: not in their sheets; Ada runs FP64 at 1/64 of FP32 (the Ada
#     whitepaper), so FP32 / 64.
_HOPPER_SXM = {"fp64": 34.0, "fp64_tensor": 67.0, "fp32": 67.0, "tf32_tensor": 494.5,
               "fp16_tensor": 989.5, "bf16_tensor": 989.5}
_HOPPER_NVL = {"fp64": 30.0, "fp64_tensor": 60.0, "fp32": 60.0, "tf32_tensor": 417.5,
               "fp16_tensor": 835.5, "bf16_tensor": 835.5}
_AMPERE_A100 = {"fp64": 9.7, "fp64_tensor": 19.5, "fp32": 19.5, "tf32_tensor": 156.0,
                "fp16_tensor": 312.0, "bf16_tensor": 312.0}
H100_SHEET = "NVIDIA H100 Tensor Core GPU data sheet"
H200_SHEET = "NVIDIA H200 Tensor Core GPU data sheet"
A100_SHEET = "NVIDIA A100 Tensor Core GPU data sheet"
VENDOR_PEAKS: dict[str, dict[str, Any]] = {
    "H100 SXM": {**_HOPPER_SXM, "hbm_GBps": 3350.0, "source": H100_SHEET},
    "H100 PCIe": {"fp64": 26.0, "fp64_tensor": 51.0, "fp32": 51.0, "tf32_tensor": 378.0,
                  "fp16_tensor": 756.5, "bf16_tensor": 756.5, "hbm_GBps": 2000.0,
                  "source": H100_SHEET},
    "H100 NVL": {**_HOPPER_NVL, "hbm_GBps": 3900.0, "source": H100_SHEET},
    "H200 SXM": {**_HOPPER_SXM, "hbm_GBps": 4800.0, "source": H200_SHEET},
    "H200 NVL": {**_HOPPER_NVL, "hbm_GBps": 4800.0, "source": H200_SHEET},
    "A100 40GB SXM": {**_AMPERE_A100, "hbm_GBps": 1555.0, "source": A100_SHEET},
    "A100 40GB PCIe": {**_AMPERE_A100, "hbm_GBps": 1555.0, "source": A100_SHEET},
    "A100 80GB SXM": {**_AMPERE_A100, "hbm_GBps": 2039.0, "source": A100_SHEET},
    "A100 80GB PCIe": {**_AMPERE_A100, "hbm_GBps": 1935.0, "source": A100_SHEET},
    "L4": {"fp64": 30.3 / 64, "fp32": 30.3, "tf32_tensor": 60.0, "fp16_tensor": 121.0,
           "bf16_tensor": 121.0, "hbm_GBps": 300.0,
           "source": "NVIDIA L4 Tensor Core GPU data sheet; fp64 = fp32 / 64 (Ada)"},
    "RTX 4090": {"fp64": 82.6 / 64, "fp32": 82.6, "tf32_tensor": 82.6,
                 "fp16_tensor": 165.2, "bf16_tensor": 165.2, "hbm_GBps": 1008.0,
                 "source": "NVIDIA Ada Lovelace GPU Architecture whitepaper (GeForce RTX "
                           "4090, FP32 accumulate); fp64 = fp32 / 64"},
}


def vendor_model(device_name: str) -> str | None:
    """The :data:`VENDOR_PEAKS` entry for a ``torch.cuda.get_device_name`` string, or None
    for a device not in the table (its vendor fractions are then left empty)."""
    s = device_name.lower()
    if re.search(r"\bh200\b", s):  # not the GH200 superchip: other memory
        return "H200 NVL" if "nvl" in s else "H200 SXM"
    if re.search(r"\bh100\b", s):
        if "nvl" in s:
            return "H100 NVL"
        return "H100 PCIe" if "pcie" in s else "H100 SXM"  # SXM reports "H100 80GB HBM3"
    if re.search(r"\ba100\b", s):
        mem = "80GB" if "80gb" in s else "40GB"
        return f"A100 {mem} {'PCIe' if 'pcie' in s else 'SXM'}"
    if re.search(r"\bl4\b", s):  # not the L40 or L40S
        return "L4"
    if re.search(r"rtx 4090(?!\s*d)", s):  # the 4090 D has fewer SMs
        return "RTX 4090"
    return None


def vendor_peaks(device_name: str) -> dict[str, Any] | None:
    model = vendor_model(device_name)
    return None if model is None else {"model": model, **VENDOR_PEAKS[model]}


def vendor_flops(peaks: dict[str, Any] | None, key: str) -> float | None:
    """FLOP/s of unit ``key``; fp64_tensor falls back to fp64 on chips without it."""
    if peaks is None:
        return None
    tf = peaks.get(key)
    if tf is None and key == "fp64_tensor":
        tf = peaks.get("fp64")
    return None if tf is None else tf * TERA


def short_device_name(name: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``h100-80gb-hbm3``: for file names."""
    s = re.sub(r"\b(nvidia|geforce|tesla)\b", " ", name.lower())
    s = re.sub(r"[^a-z0-9]+", "-", s).strip("-")
    return s[:40].strip("-") or "gpu"


# -- the models: FLOPs and minimal bytes --------------------------------------------------


def assign_flops(n: int, k: int, d: int, update: bool) -> int:
    """The products ``X·Cᵀ`` (2nkd), and with the update the one-hot product (2nkd more)."""
    return 2 * n * k * d * (2 if update else 1)


def assign_bytes(n: int, k: int, d: int, itemsize: int, acc_itemsize: int,
                 update: bool) -> int:
    """Minimal traffic of an assignment: read X once and the centres once, write one label
    (int64) and one distance (accumulation dtype) per row; with the update also write the
    k x d sums (accumulation dtype) and k counts (int64)."""
    total = n * d * itemsize + k * d * itemsize + n * (LABEL_ITEMSIZE + acc_itemsize)
    if update:
        total += k * d * acc_itemsize + k * 8
    return total


def sddmm_flops(nnz: int, r: int) -> int:
    """A multiply and an add per rank per pair (the biases' adds are not counted)."""
    return 2 * nnz * r


def sddmm_bytes(nnz: int, r: int, itemsize: int, index_itemsize: int, out_itemsize: int,
                biases: bool) -> int:
    """Minimal traffic per pair: read two factor rows (r each) and two indices, with the
    biases read one of each, and write one output. No reuse of factor rows between pairs
    is assumed, so where the factor tables fit in L2 the achieved figure is an effective
    rate and can exceed the copy bandwidth."""
    per_pair = 2 * r * itemsize + 2 * index_itemsize + out_itemsize
    if biases:
        per_pair += 2 * itemsize
    return nnz * per_pair


def flop_roof(kernel: str, dtype: str, precision: str = "ieee") -> tuple[str, str]:
    """``(vendor unit, measured-matmul key)`` that bound the arithmetic of a measurement:
    the fastest unit the hardware offers for that input at that precision. Exact float32
    products cannot use tensor cores (TF32 rounds), so ``ieee`` float32 is bound by the
    vector rate. SDDMM's dot per pair has no reuse for tensor cores, so its bound is the
    vector rate of its accumulation dtype."""
    if kernel == "sddmm":
        return ("fp64", "float64") if dtype == "float64" else ("fp32", "float32/ieee")
    if dtype == "float32":
        return ("tf32_tensor", "float32/tf32") if precision == "tf32" else \
            ("fp32", "float32/ieee")
    return {"float16": ("fp16_tensor", "float16"), "bfloat16": ("bf16_tensor", "bfloat16"),
            "float64": ("fp64_tensor", "float64")}[dtype]


def timing_stats(times: list[float], warmup: int) -> dict[str, Any]:
    from kmrec_gpu.timing import Timing

    return Timing(tuple(times), warmup).as_dict()


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


@dataclass
class Roofs:
    """The peaks the measurements are divided by."""

    copy_Bps: float | None  # measured device-to-device copy, bytes read + written per s
    matmul_flops: dict[str, float]  # measured key -> FLOP/s
    vendor: dict[str, Any] | None  # VENDOR_PEAKS entry (+ "model"), or None if unknown

    def vendor_Bps(self) -> float | None:
        return None if self.vendor is None else self.vendor["hbm_GBps"] * 1e9


def rates(flops: int, nbytes: int, median_s: float, roof: tuple[str, str],
          roofs: Roofs) -> dict[str, Any]:
    """Achieved FLOP/s and bytes/s of a measurement and their fractions of each roof."""
    flop_rate, byte_rate = flops / median_s, nbytes / median_s
    vkey, mkey = roof
    vf, mf = vendor_flops(roofs.vendor, vkey), roofs.matmul_flops.get(mkey)
    return {
        "flops": int(flops), "bytes": int(nbytes),
        "gflop_per_s": flop_rate / 1e9, "gb_per_s": byte_rate / 1e9,
        "flop_roof": {"vendor_unit": vkey, "vendor_tflop_per_s": None if vf is None
                      else vf / TERA, "measured_matmul": mkey,
                      "measured_tflop_per_s": None if mf is None else mf / TERA},
        "flop_fraction_of_measured_matmul": _ratio(flop_rate, mf),
        "flop_fraction_of_vendor": _ratio(flop_rate, vf),
        "bandwidth_fraction_of_measured_copy": _ratio(byte_rate, roofs.copy_Bps),
        "bandwidth_fraction_of_vendor": _ratio(byte_rate, roofs.vendor_Bps()),
    }


def case_seed(seed: int, *key: Any) -> int:
    """A generator seed for one case: ``seed`` in the high half, a checksum of the case in
    the low half, so a case's data do not depend on the cases run before it."""
    return (seed % 2**31) << 32 | zlib.crc32(repr(key).encode())


# -- timing --------------------------------------------------------------------------------


@dataclass
class Ctx:
    """How measurements are taken on one device."""

    device: Any  # torch.device
    seed: int
    warmup: int
    repeats: int
    roofs: Roofs
    sync: Callable[[], None]
    free_bytes: Callable[[], int | None]  # None: unknown (a CPU), taken as enough

    def fits(self, need: int) -> tuple[bool, str]:
        """Whether ``need`` more bytes fit in free device memory, with a tenth kept
        back for the allocator's rounding and the libraries' workspaces."""
        free = self.free_bytes()
        if free is None or need <= 0.9 * free:
            return True, ""
        return False, f"needs about {_size(need)} of device memory, {_size(free)} free"


def _size(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"


def _is_oom(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(exc, oom) or "out of memory" in str(exc).lower()


def time_interleaved(ctx: Ctx, fns: dict[str, Callable[[], Any]]
                     ) -> tuple[dict[str, list[float]], dict[str, tuple[str, str]]]:
    """Times of every peer, in rounds of one call each (A B A B ...), after ``warmup``
    untimed calls each (Triton compiles on the first); each call timed by
    kmrec_gpu.timing.timed with the device synchronised around it. A peer that raises
    during warm-up leaves the rounds: ``(status, reason)`` with status "skipped" for
    out-of-memory and "failed" for anything else."""
    import torch

    from kmrec_gpu.timing import timed

    dropped: dict[str, tuple[str, str]] = {}
    live = dict(fns)
    for name, fn in list(live.items()):
        try:
            for _ in range(ctx.warmup):
                fn()
            ctx.sync()
        except Exception as exc:  # a peer's failure is a result, not a crash
            del live[name]
            if _is_oom(exc):
                dropped[name] = ("skipped", f"out of memory: {str(exc).splitlines()[0]}")
            else:
                dropped[name] = ("failed", f"{type(exc).__name__}: {exc}")
        if name in dropped and ctx.device.type == "cuda":
            torch.cuda.empty_cache()  # here, once the traceback no longer holds its tensors
    times: dict[str, list[float]] = {name: [] for name in live}
    for _ in range(ctx.repeats):
        for name, fn in live.items():
            # synchronised before the clock starts (nothing queued from the last peer may
            # land in this one's time) and before it stops
            _, t = timed(_dropping(fn), repeats=1, warmup=0, sync=ctx.sync)
            times[name].append(t.times_s[0])
    return times, dropped


def _dropping(fn: Callable[[], Any]) -> Callable[[], None]:
    """``fn`` with its output freed at once, so no peer's output lives on into the next
    peer's call (device memory)."""

    def call() -> None:
        fn()

    return call


@contextlib.contextmanager
def matmul_precision(precision: str):
    """float32 matmuls in torch exact ("ieee") or on TF32 tensor cores ("tf32"), restored
    after. Through set_float32_matmul_precision because mixing torch's older allow_tf32
    flag with its newer fp32_precision raises."""
    import torch

    old = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(old)


# -- the roofs measured in this run ------------------------------------------------------------


def measure_copy(ctx: Ctx, nbytes: int) -> dict[str, Any]:
    """Device-to-device copy bandwidth: ``clone`` of a buffer far larger than L2, counting
    the bytes read and the bytes written."""
    import torch

    src = torch.ones(nbytes // 4, dtype=torch.float32, device=ctx.device)
    times, _ = time_interleaved(ctx, {"clone": lambda: src.clone()})
    t = timing_stats(times["clone"], ctx.warmup)
    return {"bytes": nbytes, "time": t, "gb_per_s": 2 * nbytes / t["median_s"] / 1e9,
            "how": "torch clone of a float32 buffer; (read + written bytes) / median time"}


MATMUL_KEYS = {"float32/ieee": ("float32", "ieee"), "float32/tf32": ("float32", "tf32"),
               "float16": ("float16", "ieee"), "bfloat16": ("bfloat16", "ieee"),
               "float64": ("float64", "ieee")}


def measure_matmul(ctx: Ctx, key: str, size: int) -> dict[str, Any]:
    """FLOP rate of ``torch.matmul`` of two size x size matrices: what cuBLAS reaches in
    this dtype and precision on this device, the practical roof of a dense product."""
    import torch

    dtype_name, precision = MATMUL_KEYS[key]
    dtype = getattr(torch, dtype_name)
    g = torch.Generator(device=ctx.device).manual_seed(case_seed(ctx.seed, "matmul", key))
    a = torch.randn(size, size, generator=g, device=ctx.device).to(dtype)
    b = torch.randn(size, size, generator=g, device=ctx.device).to(dtype)
    with matmul_precision(precision):
        times, _ = time_interleaved(ctx, {"matmul": lambda: a @ b})
    t = timing_stats(times["matmul"], ctx.warmup)
    return {"size": size, "time": t, "tflop_per_s": 2 * size**3 / t["median_s"] / TERA,
            "how": f"torch.matmul of two {size} x {size} {dtype_name} matrices"
                   + (" with TF32 allowed" if precision == "tf32" else "")}


# -- K-means assignment ----------------------------------------------------------------


def assign_shapes(quick: bool, float64: bool) -> list[tuple[int, int, int, str]]:
    ns = (1_000_000,) if quick else (1_000_000, 10_000_000)
    ds = (20, 64)  # 20 ~ the genre profiles (19 genres); 64 a wider embedding
    ks = (16, 64) if quick else (8, 16, 64)
    dtypes = ["float32", "float16", "bfloat16"] + (["float64"] if float64 else [])
    return [(n, d, k, dt) for n in ns for d in ds for k in ks for dt in dtypes]


def assign_variants(dtype: str) -> list[tuple[bool, str]]:
    """(update, precision): TF32 only where the input is float32 (for half types it
    changes nothing and float64 has no TF32)."""
    out = [(False, "ieee"), (True, "ieee")]
    if dtype == "float32":
        out += [(False, "tf32"), (True, "tf32")]
    return out


def blobs(n: int, d: int, k: int, dtype: Any, gen: Any, device: Any) -> tuple[Any, Any]:
    """Rows around k true centres (3 apart per feature, unit noise), and k distinct rows as
    the current centres: an assignment as Lloyd's first iteration sees it."""
    import torch

    truth = 3.0 * torch.randn(k, d, generator=gen, device=device)
    member = torch.randint(k, (n,), generator=gen, device=device)
    x = torch.randn(n, d, generator=gen, device=device).add_(truth[member]).to(dtype)
    del member
    centres = x[torch.randperm(n, generator=gen, device=device)[:k]].clone()
    return x, centres


def run_assign(ctx: Ctx, n: int, d: int, k: int, dtype_name: str) -> list[dict[str, Any]]:
    import torch

    from kernels import triton_kmeans as tk

    dtype = getattr(torch, dtype_name)
    itemsize = torch.empty(0, dtype=dtype).element_size()
    acc = tk.accumulation_dtype(dtype)
    acc_size = torch.empty(0, dtype=acc).element_size()
    shape = {"n": n, "d": d, "k": k}
    seed = case_seed(ctx.seed, "assign", n, d, k, dtype_name)
    base = {"kernel": "assign", "shape": shape, "dtype": dtype_name, "seed": ctx.seed,
            "case_seed": seed}
    upcast = acc != dtype
    need_data = n * d * (3 * 4 + itemsize)  # float32 draws, then the cast copy
    need = {  # on top of the data: outputs, and for the composed path its temporaries
        "triton": n * (LABEL_ITEMSIZE + acc_size),
        "composed": (n * d * acc_size if upcast else 0) + 3 * n * k * acc_size
        + 2 * n * (LABEL_ITEMSIZE + acc_size),
    }
    ok, why = ctx.fits(need_data)
    if not ok:
        return [{**base, "impl": impl, "precision": p, "update": u, "status": "skipped",
                 "reason": f"the input data {why}"}
                for u, p in assign_variants(dtype_name) for impl in need]
    gen = torch.Generator(device=ctx.device).manual_seed(seed)
    x, centres = blobs(n, d, k, dtype, gen, ctx.device)
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()
    records = []
    for update, precision in assign_variants(dtype_name):
        pre = _unfit(ctx, need)
        fns = {impl: fn for impl, fn in _assign_peers(tk, x, centres, update, precision).items()
               if impl not in pre}
        times, dropped = time_interleaved(ctx, fns)
        dropped.update(pre)
        roof = flop_roof("assign", dtype_name, precision)
        flops = assign_flops(n, k, d, update)
        nbytes = assign_bytes(n, k, d, itemsize, acc_size, update)
        agree = _guarded(ctx, _assign_agreement, tk, x, centres, update, precision) \
            if {"triton", "composed"} <= set(times) else {}
        notes = {"triton": "one pass: labels, distances [, sums and counts]",
                 "composed": "distance matrix, argmin [, index_add and bincount]"
                 + (f"; casts {dtype_name} to float32 before the product" if upcast else "")
                 + ("; TF32 matmul allowed" if precision == "tf32" else "")}
        for impl in ("triton", "composed"):
            rec = {**base, "update": update, "precision": precision, "impl": impl,
                   "note": notes[impl]}
            if impl in dropped:
                status, reason = dropped[impl]
                records.append({**rec, "status": status, "reason": reason})
                continue
            t = timing_stats(times[impl], ctx.warmup)
            records.append({**rec, "status": "ok", "warmup": ctx.warmup, "time": t,
                            **rates(flops, nbytes, t["median_s"], roof, ctx.roofs),
                            **({"vs_composed": agree} if impl == "triton" else {})})
        _speedup(records[-2:], "triton", "composed", "speedup_vs_composed")
    return records


def _unfit(ctx: Ctx, need: dict[str, int]) -> dict[str, tuple[str, str]]:
    """``impl -> ("skipped", why)`` for each implementation whose memory does not fit."""
    out = {}
    for impl, nbytes in need.items():
        ok, why = ctx.fits(nbytes)
        if not ok:
            out[impl] = ("skipped", why)
    return out


def _assign_peers(tk: Any, x: Any, centres: Any, update: bool,
                  precision: str) -> dict[str, Callable[[], Any]]:
    return {"triton": lambda: tk.assign(x, centres, update=update, precision=precision),
            "composed": lambda: _with_precision(precision, tk.reference, x, centres,
                                                update=update)}


def _with_precision(precision: str, fn: Callable, *args: Any, **kw: Any) -> Any:
    with matmul_precision(precision):
        return fn(*args, **kw)


def _assign_agreement(tk: Any, x: Any, centres: Any, update: bool,
                      precision: str) -> dict[str, Any]:
    """How far the kernel's answer is from the composed one: labels can differ only on
    near-ties, where the two sum products in different orders (or TF32 rounds)."""
    got = tk.assign(x, centres, update=update, precision=precision)
    want = _with_precision(precision, tk.reference, x, centres, update=update)
    out = {"label_agreement": float((got.labels == want.labels).double().mean().item())
           if len(got.labels) else 1.0,
           "min_dist_max_abs_diff": float((got.min_dist - want.min_dist).abs().max().item())
           if len(got.labels) else 0.0}
    if update:
        out["counts_equal"] = bool((got.counts == want.counts).all().item())
    return out


def _guarded(ctx: Ctx, check: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``check(*args)``, or why there is none: it runs both peers at once, so it can run
    out of memory where each alone did not."""
    import torch

    try:
        return check(*args)
    except Exception as exc:  # the timings stand without it
        out = {"check_error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()  # once the traceback no longer holds the tensors
    return out


def _speedup(pair: list[dict[str, Any]], fast: str, slow: str, key: str) -> None:
    by = {r["impl"]: r for r in pair if r.get("status") == "ok"}
    if fast in by and slow in by:
        by[fast][key] = by[slow]["time"]["median_s"] / by[fast]["time"]["median_s"]


# -- SDDMM ---------------------------------------------------------------------------------


def sddmm_shapes(quick: bool) -> tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
    """(nnz values, ranks, dtypes): 25M is about ML-25M/32M's ratings; 100M a 3x larger
    catalogue's; ranks 16-128 span the factor models' settings."""
    if quick:
        return (1_000_000,), (16, 128), ("float32", "float64")
    return (1_000_000, 25_000_000, 100_000_000), (16, 50, 128), ("float32", "float64")


def draw_pairs(nnz: int, n_rows: int, n_cols: int, gen: Any, device: Any) -> tuple[Any, Any]:
    """``nnz`` distinct (row, column) cells, uniform over the grid, in CSR order (by row,
    then column). Uniform is the hard case for caching factor rows: a real catalogue's
    popular items would be re-read from L2 more often."""
    import torch

    total = n_rows * n_cols
    if nnz > total:
        raise ValueError(f"{nnz} distinct pairs asked of a {n_rows} x {n_cols} grid")
    draw = nnz + nnz * nnz // total + 1024  # about twice the expected duplicates
    while True:
        lin = torch.unique(torch.randint(total, (draw,), generator=gen, device=device))
        if lin.numel() >= nnz:
            break
        draw *= 2
    if lin.numel() > nnz:  # drop a random surplus; sorted positions keep the order
        keep = torch.randperm(lin.numel(), generator=gen, device=device)[:nnz].sort().values
        lin = lin[keep]
    return lin // n_cols, lin % n_cols


def csr_pattern(rows: Any, cols: Any, n_rows: int, n_cols: int, dtype: Any) -> Any:
    """A CSR matrix with a zero at every pair: the sampling pattern of sampled_addmm."""
    import torch

    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows.device)
    crow[1:] = torch.bincount(rows, minlength=n_rows).cumsum(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, cols, torch.zeros(len(cols), dtype=dtype,
                                                               device=rows.device),
                                       size=(n_rows, n_cols), check_invariants=False)


def _sampled_addmm(pattern: Any, a: Any, b: Any) -> Any:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse.sampled_addmm(pattern, a, b.T, beta=0.0, alpha=1.0)


def run_sddmm(ctx: Ctx, nnz: int, ranks: tuple[int, ...], dtypes: tuple[str, ...],
              n_rows: int = ML32M_USERS, n_cols: int = ML32M_ITEMS) -> list[dict[str, Any]]:
    import torch

    from kernels import triton_sddmm as ts

    records: list[dict[str, Any]] = []
    pair_seed = case_seed(ctx.seed, "pairs", nnz, n_rows, n_cols)
    base0 = {"kernel": "sddmm", "seed": ctx.seed}
    ok, why = ctx.fits(nnz * (5 * 8 + 2 * INDEX_ITEMSIZE))  # draws, unique's sort, result
    if not ok:
        return [{**base0, "shape": {"nnz": nnz, "r": r, "n_rows": n_rows, "n_cols": n_cols},
                 "dtype": dt, "impl": impl, "status": "skipped",
                 "reason": f"drawing the pairs {why}"}
                for dt in dtypes for r in ranks
                for impl in ("triton", "composed", "triton-nobias", "sampled_addmm")]
    gen = torch.Generator(device=ctx.device).manual_seed(pair_seed)
    rows, cols = draw_pairs(nnz, n_rows, n_cols, gen, ctx.device)
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        itemsize = torch.empty(0, dtype=dtype).element_size()
        acc = ts.accumulation_dtype(dtype)
        acc_size = torch.empty(0, dtype=acc).element_size()
        for r in ranks:
            seed = case_seed(ctx.seed, "factors", n_rows, n_cols, r, dtype_name)
            g = torch.Generator(device=ctx.device).manual_seed(seed)
            scale = 1.0 / math.sqrt(r)  # dot products of order 1, as rating residuals
            a = (torch.randn(n_rows, r, generator=g, device=ctx.device) * scale).to(dtype)
            b = (torch.randn(n_cols, r, generator=g, device=ctx.device) * scale).to(dtype)
            bu = (0.3 * torch.randn(n_rows, generator=g, device=ctx.device)).to(dtype)
            bi = (0.3 * torch.randn(n_cols, generator=g, device=ctx.device)).to(dtype)
            shape = {"nnz": nnz, "r": r, "n_rows": n_rows, "n_cols": n_cols,
                     "factor_bytes": (n_rows + n_cols) * r * itemsize}
            base = {**base0, "shape": shape, "dtype": dtype_name, "case_seed": seed,
                    "pairs_seed": pair_seed, "index_dtype": str(rows.dtype).split(".")[-1]}
            need = {"triton": nnz * acc_size, "triton-nobias": nnz * acc_size,
                    "composed": 3 * nnz * r * acc_size + 4 * nnz * acc_size,
                    "sampled_addmm": nnz * (INDEX_ITEMSIZE + 2 * itemsize) + 8 * n_rows}
            pre = _unfit(ctx, need)
            pattern = None if "sampled_addmm" in pre else \
                csr_pattern(rows, cols, n_rows, n_cols, dtype)
            fns = {impl: fn for impl, fn in
                   _sddmm_peers(ts, a, b, rows, cols, bu, bi, pattern).items()
                   if impl not in pre}
            times, dropped = time_interleaved(ctx, fns)
            dropped.update(pre)
            diffs = _guarded(ctx, _sddmm_agreement, fns, times)
            roof = flop_roof("sddmm", dtype_name)
            notes = {
                "triton": "biased MF scores: a[u]·b[i] + b_u + b_i + mu",
                "composed": "biased MF scores, composed: gather both rows, multiply, sum, "
                            "add the biases and mu",
                "triton-nobias": "a[u]·b[i] only, the peer of sampled_addmm",
                "sampled_addmm": "torch.sparse.sampled_addmm on the CSR pattern (cuSPARSE "
                                 "SDDMM): a[u]·b[i] only, no biases; output is a CSR matrix",
            }
            group = []
            for impl in ("triton", "composed", "triton-nobias", "sampled_addmm"):
                rec = {**base, "impl": impl, "biases": impl in ("triton", "composed"),
                       "note": notes[impl]}
                if impl in dropped:
                    status, reason = dropped[impl]
                    group.append({**rec, "status": status, "reason": reason})
                    continue
                t = timing_stats(times[impl], ctx.warmup)
                nbytes = sddmm_bytes(nnz, r, itemsize, INDEX_ITEMSIZE,
                                     acc_size if impl != "sampled_addmm" else itemsize,
                                     biases=rec["biases"])
                group.append({**rec, "status": "ok", "warmup": ctx.warmup, "time": t,
                              **rates(sddmm_flops(nnz, r), nbytes, t["median_s"], roof,
                                      ctx.roofs),
                              **({"max_abs_diff": diffs[impl]} if impl in diffs else {}),
                              **({"check_error": diffs["check_error"]}
                                 if "check_error" in diffs and impl.startswith("triton")
                                 else {})})
            _speedup(group[:2], "triton", "composed", "speedup_vs_composed")
            _speedup(group[2:], "triton-nobias", "sampled_addmm", "speedup_vs_sampled_addmm")
            records += group
            pattern = fns = None  # the CSR values go before the next rank's are made
            if ctx.device.type == "cuda":
                torch.cuda.empty_cache()
    return records


def _sddmm_peers(ts: Any, a: Any, b: Any, rows: Any, cols: Any, bu: Any, bi: Any,
                 pattern: Any) -> dict[str, Callable[[], Any]]:
    return {
        "triton": lambda: ts.sampled_dot(a, b, rows, cols, row_bias=bu, col_bias=bi,
                                         offset=GLOBAL_MEAN),
        "composed": lambda: ts.reference(a, b, rows, cols, row_bias=bu, col_bias=bi,
                                         offset=GLOBAL_MEAN),
        "triton-nobias": lambda: ts.sampled_dot(a, b, rows, cols),
        "sampled_addmm": lambda: _sampled_addmm(pattern, a, b),
    }


def _sddmm_agreement(fns: dict[str, Callable[[], Any]],
                     times: dict[str, list[float]]) -> dict[str, float]:
    """Largest |kernel - peer| for each kernel against its peer (one more call each)."""
    out = {}
    for kern, peer in (("triton", "composed"), ("triton-nobias", "sampled_addmm")):
        if kern in times and peer in times:
            got, want = fns[kern](), fns[peer]()
            want = want.values() if want.layout != got.layout else want
            out[kern] = float((got.double() - want.double()).abs().max().item()) \
                if got.numel() else 0.0
            del got, want
    return out


# -- the record ------------------------------------------------------------------------------


def out_path(out_dir: Path, stamp: str, device: str) -> Path:
    """``<stamp>-<device>.jsonl`` in ``out_dir``, or ``-2``, ``-3``, ... when taken:
    a run never writes into another's file."""
    stem = f"{stamp}-{short_device_name(device)}"
    for i in range(1, 1000):
        p = out_dir / (f"{stem}.jsonl" if i == 1 else f"{stem}-{i}.jsonl")
        if not p.exists():
            return p
    raise FileExistsError(f"no free name for {stem} in {out_dir}")


# the record's figures that are a row's metrics (numbers; the others stay in its extra)
METRIC_KEYS = ("gflop_per_s", "gb_per_s", "tflop_per_s", "flop_fraction_of_measured_matmul",
               "flop_fraction_of_vendor", "bandwidth_fraction_of_measured_copy",
               "bandwidth_fraction_of_vendor", "speedup_vs_composed",
               "speedup_vs_sampled_addmm", "max_abs_diff")


def record_dataset(rec: dict[str, Any]) -> dict[str, Any]:
    """The generated input of a measurement, as a row's dataset (no file, no checksum)."""
    shape, kernel = rec["shape"], rec["kernel"]
    seeds = {k: rec[k] for k in ("case_seed", "pairs_seed") if k in rec}
    if kernel == "assign":
        return {"name": "gaussian blobs", "sha256": None, "shape": shape,
                "dtype": rec["dtype"], "generator": {"kind": "blobs", **seeds}}
    if kernel == "sddmm":
        return {"name": "uniform pairs", "sha256": None, "n_ratings": shape["nnz"],
                "shape": shape, "dtype": rec["dtype"],
                "generator": {"kind": "distinct uniform pairs and gaussian factors",
                              **seeds}}
    return {"name": f"{kernel} roof input", "sha256": None, "shape": shape,
            "dtype": rec["dtype"], "generator": {"kind": "torch.ones / torch.randn"}}


def record_row(rec: dict[str, Any], *, run_id: str, seed: int, backend: dict[str, Any],
               command: str | None, context: dict[str, Any]) -> dict[str, Any]:
    """A measurement's result row (kmrec_gpu.results.make_row): its time is the row's
    wall_time, its rates and ratios the metrics, and the whole record (less the time)
    its extra, beside the run's context (device, settings, vendor peaks). Phase "fit":
    both kernels are steps of a fit (Lloyd's assignment; the MF residual and loss), and
    the roofs are measured for them."""
    from kmrec_gpu.results import make_row

    params = {k: rec[k] for k in ("dtype", "precision", "update", "biases", "shape")
              if k in rec}
    metrics = {k: rec[k] for k in METRIC_KEYS if isinstance(rec.get(k), (int, float))
               and not isinstance(rec.get(k), bool) and math.isfinite(rec[k])}
    optional: dict[str, Any] = {}
    if rec["status"] != "ok":
        optional["reason"] = rec["reason"]
    if isinstance(rec.get("gb_per_s"), (int, float)):
        optional["throughput"] = {"value": rec["gb_per_s"],
                                  "unit": "GB/s (minimal-traffic model)"
                                  if rec["kernel"] in ("assign", "sddmm")
                                  else "GB/s (read + written)"}
    return make_row(run_id=run_id, dataset=record_dataset(rec), split=None, seed=seed,
                    model={"name": f"{rec['kernel']} {rec['impl']}", "params": params},
                    backend=backend, phase="fit", metrics=metrics,
                    wall_time=rec.get("time"), status=rec["status"], command=command,
                    extra={"bench": "triton_kernels", "run": context,
                           **{k: v for k, v in rec.items() if k != "time"}}, **optional)


class Run:
    """This run's records, each appended as a result row (:func:`record_row`) to the run's
    own new JSON-lines file as soon as its shape is done (kmrec_gpu.results.append_row:
    through a temporary file and a rename, so no reader sees half a line)."""

    def __init__(self, path: Path, *, seed: int, backend: dict[str, Any],
                 command: str | None = None, context: dict[str, Any] | None = None) -> None:
        from kmrec_gpu.results import new_run_id

        self.path = path
        self.run_id = new_run_id()
        self.seed, self.backend, self.command = seed, backend, command
        self.context = context or {}
        self.records: list[dict[str, Any]] = []

    def add(self, records: list[dict[str, Any]]) -> None:
        from kmrec_gpu.results import append_row

        for rec in records:
            append_row(self.path, record_row(rec, run_id=self.run_id, seed=self.seed,
                                             backend=self.backend, command=self.command,
                                             context=self.context))
            self.records.append(rec)


def roof_records(copy: dict[str, Any], matmul: dict[str, dict[str, Any]],
                 seed: int) -> list[dict[str, Any]]:
    """The roofs measured at the start of the run, as records (rows) of their own."""
    out = [{"kernel": "copy", "impl": "torch clone", "shape": {"bytes": copy["bytes"]},
            "dtype": "float32", "seed": seed, "status": "ok", "warmup": copy["time"]["warmup"],
            **copy}]
    for key, m in matmul.items():
        out.append({"kernel": "matmul", "impl": "torch.matmul", "matmul_key": key,
                    "shape": {"n": m["size"]}, "dtype": MATMUL_KEYS[key][0],
                    "precision": MATMUL_KEYS[key][1], "seed": seed, "status": "ok",
                    "warmup": m["time"]["warmup"], **m})
    return out


def device_info(torch: Any) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    name = torch.cuda.get_device_name()
    info = {"name": name, "short_name": short_device_name(name),
            "capability": list(torch.cuda.get_device_capability()),
            "total_memory_bytes": int(props.total_memory),
            "multiprocessors": int(props.multi_processor_count),
            "l2_cache_bytes": getattr(props, "L2_cache_size", None),
            "cuda_runtime": torch.version.cuda}
    # the clocks and power limit bound what the peaks can be; absent without nvidia-smi.
    # By UUID: CUDA_VISIBLE_DEVICES renumbers torch's devices but not nvidia-smi's.
    uuid = getattr(props, "uuid", None)
    which = f"GPU-{uuid}" if uuid else str(torch.cuda.current_device())
    with contextlib.suppress(OSError, ValueError, subprocess.SubprocessError):
        query = "--query-gpu=driver_version,clocks.max.sm,clocks.max.mem,power.limit"
        q = subprocess.run(["nvidia-smi", "-i", which, query, "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20, check=True)
        drv, sm, mem, power = [s.strip() for s in q.stdout.strip().split(",")][:4]
        info.update(driver=drv, max_sm_clock=sm, max_mem_clock=mem, power_limit=power)
    return info


# -- the table --------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _cell(v: Any) -> str:
    # a record for a whole case (out of memory while drawing it) lists its ranks, dtypes
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def print_tables(records: list[dict[str, Any]], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    titles = {"assign": ("K-means assignment: Triton kernel vs composed (matrix product + "
                         "argmin [+ index_add])"),
              "sddmm": ("SDDMM: Triton kernel vs composed gather + dot, and vs "
                        "torch.sparse.sampled_addmm (no biases)")}
    for kernel, title in titles.items():
        rows = [r for r in records if r["kernel"] == kernel]
        if not rows:
            continue
        t = Table(title=title, title_justify="left")
        if kernel == "assign":
            for c in ("n", "d", "k", "dtype", "variant"):
                t.add_column(c, justify="right" if c in "ndk" else "left")
        else:
            for c in ("nnz", "r", "dtype"):
                t.add_column(c, justify="right" if c != "dtype" else "left")
        for c in ("impl", "median ms", "min-max ms", "GFLOP/s", "/matmul", "/vendor",
                  "GB/s", "/copy", "/HBM", "speedup", "check"):
            t.add_column(c, justify="left" if c == "impl" else "right")
        for r in rows:
            s = r["shape"]
            head = ([f"{s['n']:,}", str(s["d"]), str(s["k"]), _cell(r["dtype"]),
                     ("update " if r.get("update") else "") + r.get("precision", "all")]
                    if kernel == "assign" else
                    [f"{s['nnz']:,}", _cell(s["r"]), _cell(r["dtype"])])
            if r["status"] != "ok":
                t.add_row(*head, r["impl"],
                          f"[yellow]{r['status']}[/]: {escape(r['reason'])}", *[""] * 9)
                continue
            tm = r["time"]
            speed = r.get("speedup_vs_composed", r.get("speedup_vs_sampled_addmm"))
            if "vs_composed" in r:
                check = f"labels {r['vs_composed']['label_agreement']:.4f}"
            elif "max_abs_diff" in r:
                check = f"|diff| {r['max_abs_diff']:.1e}"
            else:
                check = ""
            t.add_row(*head, r["impl"], f"{tm['median_s'] * 1e3:.3f}",
                      f"{tm['min_s'] * 1e3:.3f}-{tm['max_s'] * 1e3:.3f}",
                      f"{r['gflop_per_s']:,.0f}", _pct(r["flop_fraction_of_measured_matmul"]),
                      _pct(r["flop_fraction_of_vendor"]), f"{r['gb_per_s']:,.0f}",
                      _pct(r["bandwidth_fraction_of_measured_copy"]),
                      _pct(r["bandwidth_fraction_of_vendor"]),
                      "" if speed is None else f"{speed:.2f}x", check)
        console.print(t)
    console.print("speedup = peer's median / kernel's median (> 1: the kernel is faster); "
                  "GB/s from the minimal-traffic model, so the composed paths' real traffic "
                  "is higher than their figure says")


# -- entry point -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    doc = (__doc__ or "").split("\n\n")
    details = [
        ("Timing: per shape, kernel and peers alternate (A B A B ...) after --warmup "
         "untimed calls each; torch.cuda.synchronize() before and after every call; "
         "median, min and max seconds are reported."),
        ("Shapes: assign over n in {1M, 10M} rows, d in {20 (genre profiles), 64}, k in "
         "{8, 16, 64}, float32/float16/bfloat16 (float64 with --float64), update off and "
         "on, float32 also with TF32, against triton_kmeans.reference. SDDMM over nnz in "
         "{1M, 25M, 100M} distinct pairs on a 200,948 x 87,585 (ML-32M-like) grid, rank r "
         "in {16, 50, 128}, float32 and float64: the kernel with biases and offset against "
         "triton_sddmm.reference, and without them against torch.sparse.sampled_addmm on "
         "the CSR pattern. A size that does not fit in free GPU memory is recorded as "
         "skipped, with the reason."),
        ("Models: assign does 2nkd FLOPs (2nkd more with the update) and moves at least X "
         "and the centres once, plus one int64 label and one distance per row; SDDMM does "
         "2*nnz*r FLOPs and moves per pair two factor rows, two int64 indices (two biases) "
         "and one output. Roofs: a device-to-device copy (bytes read + written per second) "
         "and torch.matmul in the dtype, both measured at the start of the run, and the "
         "vendor's data-sheet peaks for known devices (H100, H200, A100, L4, RTX 4090)."),
        ("Output: a new file <--out>/<UTC time>-<device>.jsonl (never an existing one) "
         "of result rows (kmrec_gpu.results.make_row, the project's row schema: command, "
         "seed, git revision, library versions, backend and device), appended atomically "
         "after each shape: first the roofs measured in the run (copy, matmul), then one "
         "row per measurement. A row's wall_time is the measurement's time (median_s, "
         "min_s, max_s, repeats, warmup, times_s), its metrics the rates and ratios "
         "(gflop_per_s, gb_per_s, flop_fraction_of_measured_matmul, "
         "flop_fraction_of_vendor, bandwidth_fraction_of_measured_copy, "
         "bandwidth_fraction_of_vendor, speedup_vs_composed or speedup_vs_sampled_addmm "
         "= peer median / kernel median, max_abs_diff), its status ok, skipped or failed "
         "with the reason, and its extra the whole record: kernel, impl, shape, dtype, "
         "precision and update (assign), biases (sddmm), seed, case_seed, flops, bytes, "
         "flop_roof, the check against the peer (vs_composed.label_agreement, "
         "max_abs_diff), and the run's device, settings and vendor peaks."),
        ("Without a CUDA GPU it says why, writes nothing and exits 0; the kernels' "
         f"correctness is tested on the CPU through the Triton interpreter: pytest "
         f"{CORRECTNESS_TESTS}"),
    ]
    p = argparse.ArgumentParser(
        prog="bench_triton.py", description=doc[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join([*doc[1:], *(textwrap.fill(t, 88) for t in details)]))
    p.add_argument("--quick", action="store_true",
                   help="small shapes (n = 1M, k in {16, 64}, nnz = 1M, r in {16, 128}) and "
                        "fewer repeats: about a minute, Triton's compiles included")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per implementation and shape (default 10, 5 with --quick)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed calls per implementation before the timed ones, the "
                        "first of which compiles the kernel (>= 1; default 3, 2 with "
                        "--quick)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of every data draw (torch.Generator streams derived from it "
                        "per shape); stored in every record (default 0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                   help="folder for the run's JSON file (default results/kernels); a new "
                        "file <UTC time>-<device>.jsonl, never an existing one")
    p.add_argument("--only", choices=("assign", "sddmm"), default=None,
                   help="time one kernel only (default both)")
    p.add_argument("--float64", action="store_true",
                   help="also time the assignment in float64 (SDDMM always runs float64)")
    a = p.parse_args(argv)
    a.repeats = a.repeats if a.repeats is not None else (5 if a.quick else 10)
    a.warmup = a.warmup if a.warmup is not None else (2 if a.quick else 3)
    if a.repeats < 1 or a.warmup < 1 or a.seed < 0:
        p.error("need --repeats >= 1, --warmup >= 1 (the first call compiles) and "
                "--seed >= 0")
    return a


def no_gpu_reason(torch: Any) -> str:
    build = (f"torch {torch.__version__} is a CPU-only build (torch.version.cuda is None)"
             if torch.version.cuda is None else
             f"torch {torch.__version__} was built for CUDA {torch.version.cuda} but sees "
             f"no usable device (CUDA_VISIBLE_DEVICES="
             f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')})")
    return f"torch.cuda.is_available() is False: {build}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        # before triton or the kernels are imported: this path stays light
        print(f"bench_triton.py needs a CUDA GPU to time the Triton kernels, and found none: "
              f"{no_gpu_reason(torch)}.\nNothing was measured and nothing was written.\n"
              f"The kernels' correctness is tested on the CPU through the Triton "
              f"interpreter:\n    pytest {CORRECTNESS_TESTS}", file=sys.stderr)
        return 0

    from rich.console import Console

    from kernels import triton_kmeans, triton_sddmm
    from kmrec_gpu.environment import git_revision

    if triton_kmeans.INTERPRETED or triton_sddmm.INTERPRETED:
        print("bench_triton.py: TRITON_INTERPRET is set, so the kernels would run in "
              "Triton's interpreter on the CPU; timing that says nothing about the GPU. "
              "Unset TRITON_INTERPRET and run again.", file=sys.stderr)
        return 2

    console = Console()
    device = torch.device("cuda", torch.cuda.current_device())
    dev = device_info(torch)
    vendor = vendor_peaks(dev["name"])
    command = " ".join(shlex.quote(s) for s in
                       [sys.executable, sys.argv[0], *(sys.argv[1:] if argv is None else argv)])

    def free_bytes() -> int:
        torch.cuda.empty_cache()  # cached blocks count as free to the next allocation
        return int(torch.cuda.mem_get_info(device)[0])

    ctx = Ctx(device=device, seed=args.seed, warmup=args.warmup, repeats=args.repeats,
              roofs=Roofs(None, {}, vendor), sync=torch.cuda.synchronize,
              free_bytes=free_bytes)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backend = {"name": "cuda", "library": "torch", "device": str(device),
               "device_name": dev["name"], "fallback_reason": None}
    context = {  # in every row's extra
        "device": dev, "vendor_peaks": vendor,
        "settings": {"quick": args.quick, "repeats": args.repeats, "warmup": args.warmup,
                     "only": args.only, "float64": args.float64,
                     "timing": "kmrec_gpu.timing.timed, torch.cuda.synchronize() before "
                               "and after each call; peers interleaved per shape"},
        "models": {
            "assign_flops": "2*n*k*d, plus 2*n*k*d with the update",
            "assign_bytes": "n*d*itemsize + k*d*itemsize + n*(8 + acc itemsize) "
                            "[+ k*d*acc itemsize + 8*k with the update]",
            "sddmm_flops": "2*nnz*r",
            "sddmm_bytes": "nnz*(2*r*itemsize + 2*8 + out itemsize [+ 2*itemsize biases])",
        },
    }
    run = Run(out_path(args.out, stamp, dev["name"]), seed=args.seed, backend=backend,
              command=command, context=context)
    console.print(f"[bold]Triton kernel bench[/] on {dev['name']} "
                  f"({vendor['model'] if vendor else 'not in the vendor table'}), "
                  f"git {git_revision()}, seed {args.seed} -> {run.path}")
    t_start = time.perf_counter()

    # the roofs, measured first so every record can be divided by them
    free = free_bytes()
    copy_bytes = min((256 if args.quick else 2048) * 2**20, free // 4) // 4 * 4
    copy = measure_copy(ctx, copy_bytes)
    ctx.roofs.copy_Bps = copy["gb_per_s"] * 1e9
    keys = []
    if args.only in (None, "assign"):
        keys += ["float32/ieee", "float32/tf32", "float16", "bfloat16"]
        keys += ["float64"] if args.float64 else []
    if args.only in (None, "sddmm"):
        keys += [k for k in ("float32/ieee", "float64") if k not in keys]
    matmul = {}
    for key in keys:
        size = (2048 if args.quick else 4096) if key == "float64" else \
            (4096 if args.quick else 8192)
        matmul[key] = measure_matmul(ctx, key, size)
        ctx.roofs.matmul_flops[key] = matmul[key]["tflop_per_s"] * TERA
    run.add(roof_records(copy, matmul, args.seed))
    console.print(f"measured copy {copy['gb_per_s']:,.0f} GB/s (read + write)"
                  + (f", vendor HBM {vendor['hbm_GBps']:,.0f} GB/s" if vendor else "")
                  + "; matmul TFLOP/s: " + ", ".join(f"{k} {v['tflop_per_s']:.1f}"
                                                     for k, v in matmul.items()))

    cases: list[tuple[str, dict[str, Any], Callable[[], list[dict[str, Any]]]]] = []
    if args.only in (None, "assign"):
        for n, d, k, dt in assign_shapes(args.quick, args.float64):
            cases.append(("assign", {"shape": {"n": n, "d": d, "k": k}, "dtype": dt},
                          lambda n=n, d=d, k=k, dt=dt: run_assign(ctx, n, d, k, dt)))
    if args.only in (None, "sddmm"):
        nnzs, ranks, dtypes = sddmm_shapes(args.quick)
        for nnz in nnzs:
            cases.append(("sddmm", {"shape": {"nnz": nnz, "r": list(ranks)},
                                    "dtype": list(dtypes)},
                          lambda nnz=nnz: run_sddmm(ctx, nnz, ranks, dtypes)))
    try:
        for kernel, what, fn in cases:
            console.print(f"{kernel} {what['shape']} {what['dtype']}")
            try:
                run.add(fn())
            except Exception as exc:
                if not _is_oom(exc):
                    raise
                # the memory estimates missed: keep the run going with the next shape
                torch.cuda.empty_cache()
                run.add([{"kernel": kernel, **what, "impl": "all", "seed": args.seed,
                          "status": "skipped", "reason": "out of memory outside the "
                          f"timed calls: {str(exc).splitlines()[0]}"}])
    except KeyboardInterrupt:
        console.print(f"interrupted; {len(run.records)} records kept in {run.path}")
        raise
    elapsed = time.perf_counter() - t_start
    print_tables(run.records, console)
    console.print(f"wrote {len(run.records)} records to {run.path} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
