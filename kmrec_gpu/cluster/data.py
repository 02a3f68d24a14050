"""K-means input on a backend: dense or CSR rows, split into blocks sized from a budget.

Every pass over the data (assignment, k-means++ distances, inertia) walks the same list
of row blocks, so no intermediate bigger than ``rows_per_block × k`` is ever built. Dense
blocks are views of one device array; sparse blocks are CSR row slices moved to the
device once, at fit time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np
import scipy.sparse as sp

from kmrec_gpu.backends import Backend

# On a CPU, blocks beyond a few thousand rows fall out of cache and every extra
# elementwise pass costs a trip to memory (measured: 16k-row blocks ran ~1.8x faster than
# 64k on 1M x 20, k = 16). A GPU wants as much work per launch as the budget allows.
CPU_MAX_BLOCK_ROWS = 16_384


@dataclass(eq=False)
class Block:
    start: int
    stop: int
    x: Any  # an xp array (dense) or a SparseMatrix
    sq_norms: Any  # xp vector: squared row norms

    @property
    def n(self) -> int:
        return self.stop - self.start


@dataclass(eq=False)
class KMeansData:
    backend: Backend
    n: int
    d: int
    dtype: str  # "float32" or "float64"
    sparse: bool
    blocks: list[Block]
    host_csr: sp.csr_matrix | None  # kept for row gathers on sparse input
    dense: Any  # the whole dense array on the device (None for sparse)
    sq_norms: Any = None  # every row's squared norm (blocks hold views of it)

    @property
    def xp(self) -> Any:
        return self.backend.xp

    def rows(self, index: np.ndarray) -> Any:
        """Dense rows ``index`` (host int array) as an ``(len(index), d)`` device array."""
        idx = np.asarray(index, dtype=np.int64)
        if self.sparse:
            assert self.host_csr is not None
            return self.backend.asarray(self.host_csr[idx].toarray(), dtype=self.dtype)
        xp = self.xp
        return xp.take(self.dense, self.backend.asarray(idx), axis=0)

    def products(self, block: Block, centers_t: Any) -> Any:
        """``block.x @ centers_t`` for a ``(d, m)`` device array."""
        if self.sparse:
            return self.backend.sparse.matmul(block.x, centers_t)
        return block.x @ centers_t

    def column_variance_mean(self) -> float:
        """Mean over features of the per-feature variance (scales scikit-learn's ``tol``)."""
        if self.sparse:
            assert self.host_csr is not None
            a = self.host_csr
            mean = np.asarray(a.mean(axis=0)).ravel().astype(np.float64)
            sq = np.asarray(a.multiply(a).mean(axis=0)).ravel().astype(np.float64)
            return float(np.mean(sq - mean**2))
        xp = self.xp
        return float(xp.mean(xp.var(self.dense, axis=0)))



def _shown(v) -> str:
    """A non-finite value as scikit-learn's messages spell it: NaN, inf or -inf."""
    return "NaN" if np.isnan(v) else str(float(v))

def _float_dtype(dtype: Any) -> str:
    name = str(dtype).rsplit(".", 1)[-1]
    return name if name in ("float32", "float64") else "float64"


def block_rows(n: int, d: int, k: int, itemsize: int, budget_bytes: int, on_cpu: bool) -> int:
    """Rows per block so that a block's intermediates (distances, one-hot, products for
    ``k`` centres or k-means++ candidates) stay within ``budget_bytes``."""
    per_row = itemsize * (4 * max(k, 1) + d) + 16
    rows = max(1, budget_bytes // per_row)
    if on_cpu:
        rows = min(rows, CPU_MAX_BLOCK_ROWS)
    return int(min(rows, max(n, 1)))


def prepare(X: Any, backend: Backend, *, k: int, budget_bytes: int) -> KMeansData:
    """Validate ``X`` and lay it out on ``backend`` in blocks."""
    xp = backend.xp
    if sp.issparse(X):
        csr = sp.csr_matrix(X)
        if csr.ndim != 2:
            raise ValueError(f"X must be 2-d, got shape {csr.shape}")
        dtype = _float_dtype(csr.dtype)
        csr = csr.astype(dtype, copy=False)
        csr.sum_duplicates()
        if csr.nnz and not np.all(np.isfinite(csr.data)):
            bad = int(np.flatnonzero(~np.isfinite(csr.data))[0])
            row = int(np.searchsorted(csr.indptr, bad, side="right") - 1)
            raise ValueError(f"X has a non-finite value {_shown(csr.data[bad])} in row {row}")
        n, d = csr.shape
        _check_size(n, d, k)
        # a CSR block never materialises its d columns: only the k-wide products count
        rows = block_rows(n, 0, k, np.dtype(dtype).itemsize, budget_bytes, backend.name == "cpu")
        sq = np.asarray(csr.multiply(csr).sum(axis=1), dtype=dtype).ravel()
        sq_dev = backend.asarray(sq, dtype=dtype)
        blocks = []
        for s in range(0, n, rows):
            e = min(n, s + rows)
            part = csr if (s == 0 and e == n) else csr[s:e]
            blocks.append(Block(s, e, backend.sparse.from_scipy(part), sq_dev[s:e]))
        return KMeansData(backend, n, d, dtype, True, blocks, csr, None, sq_dev)

    if _is_backend_array(X, backend):
        arr = X
        dtype = _float_dtype(arr.dtype)
        arr = xp.astype(arr, getattr(xp, dtype))
    else:
        host = np.asarray(X)
        if host.dtype == object:
            raise ValueError("X must be numeric; got an object array")
        dtype = _float_dtype(host.dtype)
        host = np.ascontiguousarray(host, dtype=dtype)
        if host.ndim != 2:
            raise ValueError(f"X must be 2-d (samples x features), got shape {host.shape}")
        if not np.all(np.isfinite(host)):
            r, c = np.argwhere(~np.isfinite(host))[0]
            raise ValueError(f"X[{r}, {c}] is {_shown(host[r, c])}; expected a finite number")
        arr = backend.asarray(host, dtype=dtype)
    if arr.ndim != 2:
        raise ValueError(f"X must be 2-d (samples x features), got shape {tuple(arr.shape)}")
    n, d = int(arr.shape[0]), int(arr.shape[1])
    _check_size(n, d, k)
    rows = block_rows(n, d, k, np.dtype(dtype).itemsize, budget_bytes, backend.name == "cpu")
    sq = xp.sum(arr * arr, axis=1)
    blocks = [Block(s, min(n, s + rows), arr[s:min(n, s + rows), ...], sq[s:min(n, s + rows)])
              for s in range(0, n, rows)]
    return KMeansData(backend, n, d, dtype, False, blocks, None, arr, sq)


def _is_backend_array(X: Any, backend: Backend) -> bool:
    if isinstance(X, np.ndarray) or not array_api_compat.is_array_api_obj(X):
        return False
    try:
        return array_api_compat.array_namespace(X) is backend.xp
    except TypeError:
        return False


def _check_size(n: int, d: int, k: int) -> None:
    if d < 1:
        raise ValueError("X has no features")
    if n < k:
        raise ValueError(f"n_samples={n} should be >= n_clusters={k}")
