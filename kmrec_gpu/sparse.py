"""One small sparse adapter over ``scipy.sparse``, ``torch.sparse`` and ``cupyx.scipy.sparse``.

The array API standard has no sparse arrays, so an algorithm body reaches its ratings
matrix only through a backend's adapter: ``A = backend.sparse.from_scipy(csr)``, then
``matmul(A, X)`` (A·X) and ``rmatmul(A, Y)`` (Aᵀ·Y). Dense operands and results are arrays
of the backend's namespace, so everything else stays portable.

Aᵀ·Y never materialises a dense matrix. Where a library is slow at products with a
transposed CSR (torch: CSC @ dense on a CPU ran ~50x slower than CSR @ dense; cuSPARSE's
transposed SpMM is its slow path), Aᵀ is built once on the host as its own CSR and
kept beside A, doubling the sparse matrix's memory for a plain product every iteration.
SciPy's free CSC view is already as fast, so there nothing extra is stored.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np
import scipy.sparse as sp

_FLOATS = ("float32", "float64")


@dataclass(frozen=True, eq=False)
class SparseMatrix:
    """A CSR matrix held by a backend; ``native`` is the library's own object."""

    native: Any
    native_t: Any  # the operand that computes Aᵀ·Y
    shape: tuple[int, int]
    nnz: int
    dtype: str  # "float32" or "float64"


def _dtype_name(dtype: Any) -> str:
    # numpy prints "float32", torch "torch.float32", array_api_strict "array_api_strict.float32"
    return str(dtype).rsplit(".", 1)[-1]


def _canonical_csr(matrix: Any) -> sp.csr_matrix:
    if not sp.issparse(matrix):
        raise TypeError(f"from_scipy expects a scipy.sparse matrix, got {type(matrix).__name__}")
    csr = sp.csr_matrix(matrix)  # no copy when it is already a csr_matrix
    if csr.dtype.name not in _FLOATS:
        raise TypeError(
            f"sparse data must be float32 or float64, got {csr.dtype}; "
            "convert it first, e.g. matrix.astype(np.float32)"
        )
    if not csr.has_canonical_format:
        # torch and cuSPARSE assume sorted, duplicate-free rows; sum_duplicates works in place
        csr = csr.copy()
        csr.sum_duplicates()
    return csr


class SparsePattern:
    """A fixed CSR structure whose stored values change: ``matrix(values)`` is cheap.

    Iterative SVD and soft-impute rebuild their sparse residual every iteration on the
    same observed cells; the row and column of every stored value (``rows``, ``cols``,
    backend arrays in CSR order) serve the gathers of a sampled dot product, and the
    permutation to the transposed order is computed once here, not per iteration.
    """

    def __init__(self, adapter: SparseAdapter, csr: sp.csr_matrix) -> None:
        csr = _canonical_csr(csr)
        self.adapter = adapter
        self.shape = (int(csr.shape[0]), int(csr.shape[1]))
        self.nnz = int(csr.nnz)
        self.dtype = csr.dtype.name
        self._csr = csr
        self._csr_t, self._perm_t = _transpose_with_permutation(csr)
        rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        xp, dev = adapter.xp, adapter.device
        self.rows = xp.asarray(rows, device=dev)
        self.cols = xp.asarray(csr.indices.astype(np.int64), device=dev)
        self.values = xp.asarray(csr.data, device=dev)  # the values it was built with
        self._state = adapter._pattern_state(csr, self._csr_t, self._perm_t)

    def matrix(self, values: Any) -> SparseMatrix:
        """This structure holding ``values`` (a backend array in CSR order, A's dtype)."""
        if tuple(values.shape) != (self.nnz,):
            raise ValueError(f"pattern has {self.nnz} stored values, "
                             f"got shape {tuple(values.shape)}")
        if _dtype_name(values.dtype) != self.dtype:
            raise TypeError(f"values are {_dtype_name(values.dtype)}, the pattern is {self.dtype}")
        native, native_t = self.adapter._with_values(self._state, values)
        return SparseMatrix(native, native_t, self.shape, self.nnz, self.dtype)


def _transpose_with_permutation(csr: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Aᵀ as CSR and ``perm`` with ``Aᵀ.data == A.data[perm]``."""
    order = sp.csr_matrix((np.arange(csr.nnz, dtype=np.float64), csr.indices, csr.indptr),
                          shape=csr.shape)
    t = order.T.tocsr()
    perm = t.data.astype(np.int64)
    t.data = csr.data[perm]
    return t, perm


class SparseAdapter:
    """Sparse CSR products for one backend. Subclasses supply the native conversions."""

    library: str = "numpy"

    def __init__(self, xp: Any, device: Any) -> None:
        self.xp = xp
        self.device = device

    # -- conversions each library supplies -------------------------------------------

    def _native(self, csr: sp.csr_matrix) -> Any:
        return csr

    def _native_t(self, csr: sp.csr_matrix, native: Any) -> Any:
        return native.T  # SciPy's CSC view: free, and as fast as an explicit CSR

    def _to_scipy(self, native: Any) -> sp.csr_matrix:
        return native.copy()

    def _indptr(self, native: Any) -> Any:
        return native.indptr

    def _product(self, operand: Any, x: Any) -> Any:
        return operand @ x

    def _pattern_state(self, csr: sp.csr_matrix, csr_t: sp.csr_matrix, perm: np.ndarray) -> Any:
        return csr

    def _with_values(self, state: Any, values: Any) -> tuple[Any, Any]:
        a = sp.csr_matrix((np.asarray(values), state.indices, state.indptr), shape=state.shape)
        return a, a.T

    # -- the public operations ----------------------------------------------------------

    def pattern(self, matrix: Any) -> SparsePattern:
        """The structure of a host ``scipy.sparse`` matrix, for :meth:`SparsePattern.matrix`."""
        return SparsePattern(self, matrix)

    def from_scipy(self, matrix: Any) -> SparseMatrix:
        """Move a host ``scipy.sparse`` matrix to this backend, keeping its dtype.

        On a CPU backend the result may share memory with ``matrix``: do not mutate it.
        """
        csr = _canonical_csr(matrix)
        native = self._native(csr)
        return SparseMatrix(
            native=native,
            native_t=self._native_t(csr, native),
            shape=(int(csr.shape[0]), int(csr.shape[1])),
            nnz=int(csr.nnz),
            dtype=csr.dtype.name,
        )

    def to_scipy(self, a: SparseMatrix) -> sp.csr_matrix:
        """A host ``scipy.sparse.csr_matrix`` copy with the same values, indices and dtype."""
        return self._to_scipy(a.native)

    def shape(self, a: SparseMatrix) -> tuple[int, int]:
        return a.shape

    def nnz(self, a: SparseMatrix) -> int:
        return a.nnz

    def matmul(self, a: SparseMatrix, x: Any) -> Any:
        """A·X for a dense 1-d or 2-d ``x`` of this backend's namespace and A's dtype."""
        self._check(a, x, a.shape[1], "matmul(A, X) needs X.shape[0] == A.shape[1]")
        return self._product(a.native, x)

    def rmatmul(self, a: SparseMatrix, y: Any) -> Any:
        """Aᵀ·Y for a dense 1-d or 2-d ``y``, without forming Aᵀ densely."""
        self._check(a, y, a.shape[0], "rmatmul(A, Y) needs Y.shape[0] == A.shape[0]")
        return self._product(a.native_t, y)

    def row_sums(self, a: SparseMatrix) -> Any:
        """Sum of the stored values in each row (length ``shape[0]``, A's dtype)."""
        ones = self.xp.ones(a.shape[1], dtype=getattr(self.xp, a.dtype), device=self.device)
        return self.matmul(a, ones)

    def row_nnz(self, a: SparseMatrix) -> Any:
        """Number of stored values in each row, as int64."""
        indptr = self._indptr(a.native)
        return self.xp.astype(indptr[1:] - indptr[:-1], self.xp.int64)

    def _check(self, a: SparseMatrix, x: Any, rows: int, what: str) -> None:
        # Every library would reject or silently upcast these differently; one rule for all.
        if array_api_compat.array_namespace(x) is not self.xp:
            raise TypeError(f"expected a {self.library} array, got {type(x).__name__}")
        if x.ndim not in (1, 2) or x.shape[0] != rows:
            raise ValueError(f"{what}; A.shape={a.shape}, X.shape={tuple(x.shape)}")
        if _dtype_name(x.dtype) != a.dtype:
            raise TypeError(
                f"dense operand is {_dtype_name(x.dtype)} but the sparse matrix is {a.dtype}"
            )


class StrictSparse(SparseAdapter):
    """SciPy underneath, array_api_strict arrays outside, so the dense side stays strict."""

    library = "array_api_strict"

    def _indptr(self, native: Any) -> Any:
        return self.xp.asarray(native.indptr, device=self.device)

    def _product(self, operand: Any, x: Any) -> Any:
        return self.xp.asarray(operand @ np.from_dlpack(x), device=self.device)

    def _with_values(self, state: Any, values: Any) -> tuple[Any, Any]:
        return super()._with_values(state, np.from_dlpack(values))


class TorchSparse(SparseAdapter):
    library = "torch"

    def _native(self, csr: sp.csr_matrix) -> Any:
        import torch

        index = np.result_type(csr.indptr, csr.indices)  # torch wants one index dtype
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                torch.from_numpy(csr.indptr.astype(index, copy=False)),
                torch.from_numpy(csr.indices.astype(index, copy=False)),
                torch.from_numpy(csr.data),
                size=csr.shape,
                check_invariants=False,  # scipy's canonical format already guarantees them
            ).to(self.device)

    def _native_t(self, csr: sp.csr_matrix, native: Any) -> Any:
        return self._native(csr.T.tocsr())

    def _pattern_state(self, csr: sp.csr_matrix, csr_t: sp.csr_matrix, perm: np.ndarray) -> Any:
        a, a_t = self._native(csr), self._native(csr_t)
        perm_t = self.xp.asarray(perm, device=self.device)
        return (a.crow_indices(), a.col_indices(), a_t.crow_indices(), a_t.col_indices(),
                perm_t, csr.shape)

    def _with_values(self, state: Any, values: Any) -> tuple[Any, Any]:
        import torch

        crow, col, crow_t, col_t, perm_t, shape = state
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
            a = torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)
            a_t = torch.sparse_csr_tensor(crow_t, col_t, values[perm_t], size=shape[::-1],
                                          check_invariants=False)
        return a, a_t

    def _to_scipy(self, native: Any) -> sp.csr_matrix:
        return sp.csr_matrix(
            (
                native.values().cpu().numpy(),
                native.col_indices().cpu().numpy(),
                native.crow_indices().cpu().numpy(),
            ),
            shape=tuple(native.shape),
            copy=True,  # .cpu().numpy() of a CPU tensor is a view
        )

    def _indptr(self, native: Any) -> Any:
        return native.crow_indices()


class CupySparse(SparseAdapter):
    library = "cupy"

    def _native(self, csr: sp.csr_matrix) -> Any:
        import cupyx.scipy.sparse as cusp

        with self.device:
            return cusp.csr_matrix(csr)  # copies to the device; indices become int32

    def _native_t(self, csr: sp.csr_matrix, native: Any) -> Any:
        return self._native(csr.T.tocsr())

    def _to_scipy(self, native: Any) -> sp.csr_matrix:
        return native.get()

    def _pattern_state(self, csr: sp.csr_matrix, csr_t: sp.csr_matrix, perm: np.ndarray) -> Any:
        a, a_t = self._native(csr), self._native(csr_t)
        perm_t = self.xp.asarray(perm, device=self.device)
        return (a.indices, a.indptr, a_t.indices, a_t.indptr, perm_t, csr.shape)

    def _with_values(self, state: Any, values: Any) -> tuple[Any, Any]:
        import cupyx.scipy.sparse as cusp

        ind, ptr, ind_t, ptr_t, perm_t, shape = state
        with self.device:
            a = cusp.csr_matrix((values, ind, ptr), shape=shape)
            a_t = cusp.csr_matrix((values[perm_t], ind_t, ptr_t), shape=shape[::-1])
        return a, a_t

    def _product(self, operand: Any, x: Any) -> Any:
        with self.device:
            return operand @ x
