"""Which fused assignment kernel, if any, serves a backend and input.

Kept apart from the algorithm so the kernels' optional dependencies (numba, triton) are
imported only when asked, and so a missing one is a reason, never an error.
"""

from __future__ import annotations

from kmrec_gpu.cluster.assign import AssignOps
from kmrec_gpu.cluster.data import KMeansData


def find(data: KMeansData) -> tuple[AssignOps | None, str]:
    """``(ops, "")`` for a usable kernel, or ``(None, reason)``."""
    be = data.backend
    if be.name == "cpu" and be.library == "numpy":
        try:
            from kernels.cpu_kmeans import NumbaAssign
        except ImportError as exc:
            return None, f"numba is not importable ({exc})"
        return NumbaAssign(), ""
    return None, f"no fused kernel for {be.library} on {be.name}"
