"""Products-only linear algebra over the backend's namespace.

:func:`subspace_svd` is the randomized range finder (Halko, Martinsson & Tropp 2011,
Alg. 4.4) run to convergence: block power iterations with re-orthonormalisation until the
Ritz vectors' residuals vanish. It touches the matrix only through ``op.matmul``/``op.rmatmul``,
so the mean-filled and iterative-SVD matrices are never materialised; with a tight ``tol``
it agrees with an exact SVD to the digits the seed's RMSE needs. Warm starts (the previous
iteration's right singular vectors) make each iterative-SVD step cost a few products. The
factor models' ``solver="scalable"`` runs it only where ``oversample`` is set: by default
their SVDs are Golub–Kahan–Lanczos (:func:`kmrec_gpu.factor.lanczos.lanczos_svd`), which
meets the same residual test with ~15× fewer column products cold and ~4× fewer warm.

:func:`sampled_dot` is the SDDMM: ``sum_k A[rows, k] * B[cols, k]`` (+ biases) for listed
cells: the Triton kernel ``kernels/triton_sddmm.py`` where :func:`sddmm_path` picks it, else
gathers in chunks so the gathered rows never exceed a memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.backends import Backend


@dataclass(frozen=True, eq=False)
class SVDResult:
    u: Any  # (rows, r)
    s: Any  # (r,)
    vt: Any  # (r, cols)
    n_iter: int  # power iterations run (0 for an exact SVD)
    converged: bool


def exact_svd(backend: Backend, a: Any, rank: int) -> SVDResult:
    """Top ``rank`` triplets of a dense backend array by the library's full thin SVD."""
    u, s, vt = backend.xp.linalg.svd(a, full_matrices=False)
    return SVDResult(u[:, :rank], s[:rank], vt[:rank, :], 0, True)


def np_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of any library's dtype (``torch.float32`` prints with a prefix)."""
    try:
        return np.dtype(dtype)
    except TypeError:
        return np.dtype(str(dtype).rsplit(".", 1)[-1])


def _float_eps(xp: Any, dtype: Any) -> float:
    return float(xp.finfo(dtype).eps)


def orthonormalize(xp: Any, y: Any) -> tuple[Any, Any]:
    """``(Q, R)`` with ``y = Q·R``, Q orthonormal, by CholeskyQR2.

    Two rounds of ``R = chol(YᵀY)``, ``Q = Y·R⁻¹`` are all matrix products, which every
    backend runs at BLAS speed (OpenBLAS's Householder QR of a 9,724 × 32 block took
    0.3 s against 5 ms here), and two rounds restore orthogonality to working precision
    for the well-conditioned blocks of a power iteration (Fukaya et al. 2014). A block
    too ill-conditioned for Cholesky (rank-deficient) falls back to Householder QR.
    """
    mt = xp.matrix_transpose
    try:
        q, r_total = y, None
        for _ in range(2):
            r = xp.linalg.cholesky(mt(q) @ q, upper=True)
            q = q @ xp.linalg.inv(r)
            r_total = r if r_total is None else r @ r_total
        if bool(xp.all(xp.isfinite(r_total))) and bool(xp.all(xp.isfinite(q))):
            return q, r_total
    except Exception:  # LinAlgError's class differs per library; any failure means "not PD"
        pass
    return xp.linalg.qr(y)


def subspace_svd(op: Any, rank: int, *, backend: Backend, dtype: Any, seed: int,
                 oversample: int | None = None, tol: float = 1e-10, max_iter: int = 1000,
                 start: Any = None) -> SVDResult:
    """Top ``rank`` singular triplets of ``op`` through products only.

    ``oversample`` extra columns (default ``rank``) speed convergence to
    ``(σ_{r+p+1}/σ_r)²`` per iteration; ``start`` (cols × j) seeds the first j columns of
    the block, the rest are Gaussian from ``seed``. Each iteration forms the Ritz
    triplets (``Z·v_i = s_i·u_i`` holds by construction) and stops when every residual
    ``‖Zᵀu_i − s_i·v_i‖ / s_i`` is at most ``tol`` (floored at 1000 ulp of ``dtype``) — a
    test on the vectors, not only on the values, which settle twice as fast.
    """
    xp = backend.xp
    mt = xp.matrix_transpose
    m, n = op.shape
    if not 1 <= rank <= min(m, n):
        raise ValueError(f"rank must be in [1, {min(m, n)}] for a {m}x{n} matrix, got {rank}")
    p = min(rank + (rank if oversample is None else oversample), m, n)
    omega = seeding.rng(seed, "subspace_svd").standard_normal((n, p))
    block = backend.asarray(omega, dtype=dtype)
    if start is not None:
        j = min(int(start.shape[1]), p)
        block = xp.concat([start[:, :j], block[:, j:]], axis=1)
    tol = max(tol, 1000 * _float_eps(xp, dtype))
    v, _ = orthonormalize(xp, block)
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        q, r = orthonormalize(xp, op.matmul(v))  # Z·V = Q·R
        b = op.rmatmul(q)  # Zᵀ·Q, the next block
        ur, s, wt = xp.linalg.svd(r)
        u_r, s_r, v_r = q @ ur[:, :rank], s[:rank], v @ mt(wt)[:, :rank]
        resid = xp.linalg.vector_norm(b @ ur[:, :rank] - v_r * s_r, axis=0)
        s_host = backend.to_numpy(s_r).astype(np.float64)
        worst = float(np.max(backend.to_numpy(resid) / np.maximum(s_host, s_host[0] * tol)))
        if worst <= tol:
            converged = True
            break
        v, _ = orthonormalize(xp, b)
    return SVDResult(u_r, s_r, mt(v_r), it, converged)


def sddmm_path(backend: Backend, kernels: str = "auto") -> tuple[str, str]:
    """``(path, why)``: the SDDMM :func:`sampled_dot` runs on ``backend`` under
    ``kernels`` ("triton", "triton-interpret" or "composed"), and why not a kernel."""
    import kernels as kernel_pkg

    mod, why_not = kernel_pkg.find_triton("triton_sddmm", backend, kernels)
    if mod is None:
        if kernels == "on":
            raise RuntimeError(f"kernels='on' but no SDDMM kernel applies: {why_not}")
        return "composed", why_not
    return kernel_pkg.path_name(mod), ""


# Gathered bytes (both sides) per chunk on a CPU: small enough to stay in L2 between the
# gather and the dot, large enough that Python's per-chunk overhead stays negligible.
# Measured on this project's 2-core machine (1M cells of rank 16, 100k of rank 16 and 100):
# 1-4 MiB all within noise of each other, 64 MiB (the old one-pass default) 2-5x slower.
_CPU_CHUNK_BYTES = 2 * 2**20


def sampled_dot(backend: Backend, a: Any, b: Any, rows: Any, cols: Any, *,
                row_bias: Any = None, col_bias: Any = None, offset: float | None = None,
                budget_mb: float = 256.0, path: str = "composed") -> Any:
    """``out[j] = a[rows[j]] · b[cols[j]]`` (the sampled dense-dense product), plus
    ``row_bias[rows[j]] + col_bias[cols[j]] + offset`` where given.

    ``path`` comes from :func:`sddmm_path`: the Triton kernel (one pass, nothing gathered
    into memory) or the namespace composition, in chunks so the gathered rows never exceed
    ``budget_mb`` (on a CPU also a cache-sized cap, which only makes chunks smaller).

    The composition has two namespace-specific fast forms with the same results to float
    tolerance: NumPy gathers with ``take`` and reduces with ``einsum`` into one output
    (no temporary product); torch on the CPU hands non-decreasing in-range ``rows`` (CSR
    order, as :class:`~kmrec_gpu.sparse.SparsePattern` lists them) to
    ``torch.sparse.sampled_addmm``, which gathers nothing, and otherwise gathers with
    ``index_select`` and reduces with ``linalg.vecdot`` into one output.
    """
    if path != "composed":
        import kernels as kernel_pkg
        from kernels import triton_sddmm

        t = kernel_pkg.as_torch
        out = triton_sddmm.sampled_dot(
            t(a), t(b), t(rows), t(cols), row_bias=None if row_bias is None else t(row_bias),
            col_bias=None if col_bias is None else t(col_bias), offset=offset)
        return kernel_pkg.from_torch(out, backend)
    xp = backend.xp
    n = int(rows.shape[0])
    width = max(1, int(a.shape[1]))
    itemsize = np_dtype(a.dtype).itemsize
    chunk = max(1, int(budget_mb * 2**20 // (2 * width * itemsize)))
    if backend.name == "cpu":
        chunk = min(chunk, max(1, _CPU_CHUNK_BYTES // (2 * width * itemsize)))
    out = None
    if backend.library == "numpy":
        out = _sampled_dot_numpy(a, b, rows, cols, n, chunk)
    elif backend.library == "torch":
        out = _sampled_dot_torch(a, b, rows, cols, n, chunk)
    if out is None:
        if n <= chunk:
            out = xp.sum(xp.take(a, rows, axis=0) * xp.take(b, cols, axis=0), axis=1)
        else:
            # stops clipped to n: array-api-strict refuses a slice past the end
            out = xp.concat([xp.sum(xp.take(a, rows[s:min(s + chunk, n)], axis=0)
                                    * xp.take(b, cols[s:min(s + chunk, n)], axis=0), axis=1)
                             for s in range(0, n, chunk)])
    if row_bias is not None:
        out = out + xp.take(row_bias, rows)
    if col_bias is not None:
        out = out + xp.take(col_bias, cols)
    return out if offset is None else out + offset


def _sampled_dot_numpy(a: Any, b: Any, rows: Any, cols: Any, n: int, chunk: int) -> Any:
    """:func:`sampled_dot`'s products on NumPy arrays, or None for the generic form."""
    if (not all(isinstance(x, np.ndarray) for x in (a, b, rows, cols)) or a.ndim != 2
            or b.ndim != 2 or a.dtype != b.dtype or a.dtype.kind not in "fc"
            or rows.ndim != 1 or cols.ndim != 1):
        return None
    # take copies row by row through a slow strided loop when the table is a view (a
    # model's factors sliced off its solution, [:, :-1]): 10x slower on ml-latest-small's
    # items. Once the cells outnumber the table's rows, a contiguous copy costs less.
    if not a.flags.c_contiguous and n >= a.shape[0]:
        a = np.ascontiguousarray(a)
    if not b.flags.c_contiguous and n >= b.shape[0]:
        b = np.ascontiguousarray(b)
    out = np.empty(n, dtype=a.dtype)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        np.einsum("ij,ij->i", a.take(rows[s:e], axis=0), b.take(cols[s:e], axis=0),
                  out=out[s:e])
    return out


def _sampled_dot_torch(a: Any, b: Any, rows: Any, cols: Any, n: int, chunk: int) -> Any:
    """:func:`sampled_dot`'s products on torch tensors, or None for the generic form."""
    import torch

    if (not all(isinstance(x, torch.Tensor) for x in (a, b, rows, cols)) or a.ndim != 2
            or b.ndim != 2 or a.dtype != b.dtype or not a.dtype.is_floating_point
            or a.device != b.device or rows.ndim != 1 or cols.ndim != 1
            or rows.dtype != torch.int64 or cols.dtype != torch.int64
            or (torch.is_grad_enabled() and (a.requires_grad or b.requires_grad))):
        return None
    if n == 0:
        return torch.zeros(0, dtype=a.dtype, device=a.device)
    m, k = int(a.shape[0]), int(a.shape[1])
    if (a.device.type == "cpu" and k > 0 and a.dtype in (torch.float32, torch.float64)
            and rows.device == a.device and cols.device == a.device):
        csr = _csr_indices(torch, rows, cols, m, int(b.shape[0]))
        if csr is not None:
            import warnings

            # zeros, not empty: the kernel copies the values in even with beta=0, and
            # 0 * NaN garbage is NaN; one zero broadcast to n allocates nothing
            zeros = torch.zeros((), dtype=a.dtype).expand(n)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
                structure = torch.sparse_csr_tensor(*csr, zeros, (m, int(b.shape[0])),
                                                    check_invariants=False)
            return torch.sparse.sampled_addmm(structure, a, b.T, beta=0.0).values()
    # negative indices count from the end, as xp.take (array_api_compat) has them
    rows = torch.where(rows < 0, rows + a.shape[0], rows)
    cols = torch.where(cols < 0, cols + b.shape[0], cols)
    out = torch.empty(n, dtype=a.dtype, device=a.device)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        torch.linalg.vecdot(torch.index_select(a, 0, rows[s:e]),
                            torch.index_select(b, 0, cols[s:e]), out=out[s:e])
    return out


# (id(rows), id(cols), m, n) -> (weakref to rows, weakref to cols, their version counters,
# the CSR indices or None, the finalizers that drop the entry when rows or cols die): the
# checks and the int32 copy cost ~10% of the product, and the SVD's iterations pass the same
# pattern every time. An entry lives no longer than its tensors.
_CSR_CACHE: dict[tuple[int, int, int, int], tuple] = {}
_CSR_CACHE_SIZE = 4


def _csr_indices(torch: Any, rows: Any, cols: Any, m: int, n: int) -> tuple[Any, Any] | None:
    """``(crow_indices, col_indices)`` of ``(rows, cols)`` as an ``m × n`` CSR pattern (int32
    where it fits: the kernel copies them into its result), or None unless rows are
    non-decreasing and every index is in range (``sampled_addmm`` checks none)."""
    import weakref

    key = (id(rows), id(cols), m, n)
    try:
        versions = (rows._version, cols._version)
    except RuntimeError:  # inference tensors keep no version counter: check every time
        versions = None
    hit = _CSR_CACHE.get(key)
    if (versions is not None and hit is not None and hit[0]() is rows and hit[1]() is cols
            and hit[2:4] == versions):
        return hit[4]
    c_min, c_max = torch.aminmax(cols)
    out = None
    if (bool(rows[0] >= 0) and bool(rows[-1] < m) and int(c_min) >= 0 and int(c_max) < n
            and bool(torch.all(rows[1:] >= rows[:-1]))):
        small = max(int(rows.shape[0]), n) < 2**31
        crow = torch.searchsorted(rows, torch.arange(m + 1, device=rows.device),
                                  out_int32=small)
        out = (crow, cols.to(torch.int32) if small else cols)
    if versions is not None:
        stale = [_CSR_CACHE.pop(key, None)]
        while len(_CSR_CACHE) >= _CSR_CACHE_SIZE:
            stale.append(_CSR_CACHE.pop(next(iter(_CSR_CACHE))))
        for entry in stale:
            for f in entry[5] if entry is not None else ():
                f.detach()
        drop = (weakref.finalize(rows, _CSR_CACHE.pop, key, None),
                weakref.finalize(cols, _CSR_CACHE.pop, key, None))
        _CSR_CACHE[key] = (weakref.ref(rows), weakref.ref(cols), *versions, out, drop)
    return out
