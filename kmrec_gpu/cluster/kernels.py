"""Which fused assignment kernel, if any, serves a backend and input.

Kept apart from the algorithm so the kernels' optional dependencies (numba, triton) are
imported only when asked, and so a missing one is a reason, never an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmrec_gpu.cluster.assign import AssignOps
from kmrec_gpu.cluster.data import KMeansData


class NumbaAssign(AssignOps):
    """``kernels/cpu_kmeans.py`` over the whole input in one parallel pass (NumPy backend)."""

    name = "numba-cpu"

    def assign_update(self, data, centers, labels):
        from kernels import cpu_kmeans

        x = data.host_csr if data.sparse else np.asarray(data.dense)
        return cpu_kmeans.lloyd_step(x, np.asarray(centers), labels)

    def assign(self, data, centers):
        from kernels import cpu_kmeans

        c = np.asarray(centers)
        sq = np.asarray(data.sq_norms)
        if data.sparse:
            labels, mind, _, _ = cpu_kmeans.assign_sparse(data.host_csr, c, sq, update=False)
        else:
            labels, mind, _, _ = cpu_kmeans.assign_dense(np.asarray(data.dense), c, sq,
                                                         update=False)
        return labels, mind


def find(data: KMeansData) -> tuple[AssignOps | None, str]:
    """``(ops, "")`` for a usable kernel, or ``(None, reason)``."""
    be = data.backend
    if be.name == "cpu" and be.library == "numpy":
        try:
            import kernels.cpu_kmeans  # noqa: F401  (compiles lazily on first call)
        except ImportError as exc:
            return None, f"numba is not importable ({exc})"
        return NumbaAssign(), ""
    return None, f"no fused kernel for {be.library} on {be.name}"
