"""The assignment step of Lloyd's algorithm, and the choice of who computes it.

``assign_update`` returns every row's nearest centre, every centre's sum and count of
rows, and how many rows changed centre since the previous labels; ``assign`` returns the
nearest centres and squared distances (for inertia and for re-seeding empty clusters). The portable
:class:`ComposedOps` builds them from matrix products, ``argmin`` and a one-hot product
over ``xp``, block by block. Composing library calls passes over each block several
times, so where a fused kernel exists for the backend (``kernels/``: numba on a CPU for
NumPy arrays, Triton on CUDA for dense input), :func:`choose` returns it instead;
``kernels="off"`` forces the composition for A/B comparisons, and ``"on"`` demands a
kernel (accepting an interpreted Triton kernel on torch CPU tensors, as the tests do).
The result row records ``assign_path_``.
"""

from __future__ import annotations

from typing import Any

from kmrec_gpu.cluster.data import KMeansData


class AssignOps:
    name = "abstract"

    def assign_update(self, data: KMeansData, centers: Any,
                      labels: Any | None) -> tuple[Any, Any, Any, int]:
        """``(labels, sums, counts, n_changed)``; ``labels`` are the previous ones (None
        at the start, when every row counts as changed) and may be updated in place."""
        raise NotImplementedError

    def assign(self, data: KMeansData, centers: Any) -> tuple[Any, Any]:
        raise NotImplementedError


def _joined(xp: Any, parts: list) -> Any:
    return parts[0] if len(parts) == 1 else xp.concat(parts)


class ComposedOps(AssignOps):
    """Matrix products and reductions of the backend's namespace (every backend)."""

    name = "composed"

    def _run(self, data: KMeansData, centers: Any, update: bool):
        xp = data.xp
        dev = data.backend.device
        k = centers.shape[0]
        cn = xp.sum(centers * centers, axis=1)
        ct = xp.permute_dims(centers, (1, 0))
        ar = xp.arange(k, device=dev)
        labels, mind = [], []
        sums = xp.zeros((k, data.d), dtype=centers.dtype, device=dev)
        counts = xp.zeros(k, dtype=xp.int64, device=dev)
        for b in data.blocks:
            dist = cn[None, :] - 2 * data.products(b, ct)
            lab = xp.argmin(dist, axis=1)
            labels.append(lab)
            mind.append(xp.min(dist, axis=1) + b.sq_norms)
            if update:
                onehot = xp.astype(lab[:, None] == ar[None, :], centers.dtype)
                if data.sparse:
                    sums = sums + xp.permute_dims(data.backend.sparse.rmatmul(b.x, onehot), (1, 0))
                else:
                    sums = sums + xp.permute_dims(onehot, (1, 0)) @ b.x
                counts = counts + xp.astype(xp.sum(onehot, axis=0), xp.int64)
        return _joined(xp, labels), _joined(xp, mind), sums, counts

    def assign_update(self, data, centers, labels):
        new, _, sums, counts = self._run(data, centers, True)
        xp = data.xp  # the standard sums numbers, not booleans
        changed = data.n if labels is None else int(xp.sum(xp.astype(new != labels, xp.int64)))
        return new, sums, counts, changed

    def assign(self, data, centers):
        labels, mind, _, _ = self._run(data, centers, False)
        return labels, mind


COMPOSED = ComposedOps()


def choose(data: KMeansData, kernels: str = "auto") -> AssignOps:
    """The fused kernel for this backend and input when there is one, else the composition.

    ``kernels="on"`` demands a kernel and raises when none applies.
    """
    if kernels == "off":
        return COMPOSED
    from kmrec_gpu.cluster import kernels as kernel_registry

    ops, why_not = kernel_registry.find(data, kernels)
    if ops is not None:
        return ops
    if kernels == "on":
        raise RuntimeError(f"kernels='on' but no fused assignment kernel applies: {why_not}")
    return COMPOSED
