"""The matrices of seed 001 as operators: products only, never the dense array.

Every matrix the factorisations see has the form ``Z = P + A·Bᵀ`` with ``P`` sparse on the
observed cells and ``A·Bᵀ`` low rank:

- the mean-filled matrix: ``P = S`` (rating − user mean), ``A = m``, ``B = 1``;
- an iterative-SVD step: ``P = P_Ω(X − L)``, the residual on observed cells, and
  ``A·Bᵀ = L``, the current rank-r reconstruction.

``Z·Y = P·Y + A·(BᵀY)`` and ``Zᵀ·Y = Pᵀ·Y + B·(AᵀY)`` cost O(nnz·k + (rows + cols)·p·k) for
a k-column ``Y``, and memory O(nnz + (rows + cols)·p). :class:`DenseOperator` wraps a
materialised array behind the same two methods, so one algorithm body serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kmrec_gpu.backends import Backend
from kmrec_gpu.sparse import SparseMatrix


@dataclass(frozen=True, eq=False)
class SparsePlusLowRank:
    backend: Backend
    sparse: SparseMatrix
    left: Any  # (rows, p)
    right: Any  # (cols, p)

    @property
    def shape(self) -> tuple[int, int]:
        return self.sparse.shape

    def matmul(self, y: Any) -> Any:
        xp = self.backend.xp
        return self.backend.sparse.matmul(self.sparse, y) + self.left @ (
            xp.matrix_transpose(self.right) @ y)

    def rmatmul(self, y: Any) -> Any:
        xp = self.backend.xp
        return self.backend.sparse.rmatmul(self.sparse, y) + self.right @ (
            xp.matrix_transpose(self.left) @ y)


@dataclass(frozen=True, eq=False)
class DenseOperator:
    backend: Backend
    array: Any

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.array.shape)

    def matmul(self, y: Any) -> Any:
        return self.array @ y

    def rmatmul(self, y: Any) -> Any:
        return self.backend.xp.matrix_transpose(self.array) @ y
