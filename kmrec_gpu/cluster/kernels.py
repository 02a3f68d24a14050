"""Which fused assignment kernel, if any, serves a backend and input.

Kept apart from the algorithm so the kernels' optional dependencies (numba, triton) are
imported only when asked, and so a missing one is a reason, never an error.
"""

from __future__ import annotations

import importlib
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


class TritonAssign(AssignOps):
    """``kernels/triton_kmeans.py`` over the whole dense input in one launch (torch or CuPy
    on CUDA; interpreted on torch CPU tensors when asked for). The kernel never builds an
    n × k intermediate, so the memory budget's blocks are not needed."""

    def __init__(self, mod: Any) -> None:
        import kernels

        self.mod = mod
        self.name = kernels.path_name(mod)

    def _run(self, data: KMeansData, centers: Any, update: bool):
        import kernels

        # K-means data is float32 or float64, so the kernel's accumulation dtype (of the
        # distances and sums) is already the data's
        res = self.mod.assign(kernels.as_torch(data.dense), kernels.as_torch(centers),
                              update=update)
        return [None if t is None else kernels.from_torch(t, data.backend) for t in res]

    def assign_update(self, data, centers, labels):
        new, _, sums, counts = self._run(data, centers, True)
        xp = data.xp
        changed = data.n if labels is None else int(xp.sum(xp.astype(new != labels, xp.int64)))
        return new, sums, counts, changed

    def assign(self, data, centers):
        labels, mind, _, _ = self._run(data, centers, False)
        return labels, mind


def find(data: KMeansData, mode: str = "auto") -> tuple[AssignOps | None, str]:
    """``(ops, "")`` for a usable kernel under ``mode`` ("auto" or "on"), or
    ``(None, reason)``."""
    be = data.backend
    if be.name == "cpu" and be.library == "numpy":
        try:
            importlib.import_module("kernels.cpu_kmeans")  # compiles lazily on first call
        except ImportError as exc:
            return None, f"numba is not importable ({exc})"
        return NumbaAssign(), ""
    if data.sparse:
        return None, ("the Triton kernel takes dense rows; CSR input uses the backend's "
                      "sparse products")
    import kernels

    mod, why_not = kernels.find_triton("triton_kmeans", be, mode)
    if mod is None:
        return None, why_not
    return TritonAssign(mod), ""
