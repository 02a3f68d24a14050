"""K-means' hot step: distances to every centre and their argmin, as the library runs it.

``assign`` is the library's assignment (``AssignOps.assign``, used by ``predict``, the
final labels and empty-cluster relocation) on the fused kernel where the backend has one
and on the namespace composition; ``lloyd_iteration`` is one iteration of ``lloyd``
(assignment with accumulation, then the new centres). scikit-learn's ``predict`` is the
peer of the library's ``KMeans.predict``, both with validation and host copies included.

The points are Gaussian blobs around k true centres and the centres start on k of the
points, so no cluster is empty and the relocation path (not a hot path) never runs.
"""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu.cluster import assign as assign_mod
from kmrec_gpu.cluster import kernels as kernel_registry
from kmrec_gpu.cluster.data import prepare
from kmrec_gpu.cluster.kmeans import KMeans, _new_centers

BUDGET_BYTES = 64 * 2**20  # KMeans' default memory_budget_mb
PATHS = ("fused", "composed")


@pytest.fixture(scope="module")
def host(sizes):
    rng = np.random.default_rng(0)
    n, d, k = sizes.km_n, sizes.km_d, sizes.km_k
    truth = 3.0 * rng.standard_normal((k, d))
    x = (truth[rng.integers(k, size=n)] + rng.standard_normal((n, d))).astype(np.float32)
    return x, x[rng.choice(n, size=k, replace=False)].copy()


@pytest.fixture(scope="module")
def on_device(host, backend):
    x, centers = host
    data = prepare(x, backend, k=centers.shape[0], budget_bytes=BUDGET_BYTES)
    return data, backend.asarray(centers)


def _ops(data, path: str) -> assign_mod.AssignOps:
    if path == "composed":
        return assign_mod.COMPOSED
    ops, why_not = kernel_registry.find(data)
    if ops is None:
        pytest.skip(why_not)
    return ops


def _shape(host) -> dict:
    x, centers = host
    n, d = x.shape
    k = centers.shape[0]
    return {"n": n, "d": d, "k": k, "dtype": str(x.dtype), "itemsize": x.itemsize}


@pytest.mark.benchmark(group="kmeans-assign")
@pytest.mark.parametrize("path", PATHS)
def test_assign(measure, backend, host, on_device, path):
    data, centers = on_device
    ops = _ops(data, path)
    s = _shape(host)
    n, d, k, b = s["n"], s["d"], s["k"], s["itemsize"]
    labels, _ = measure(backend, lambda: ops.assign(data, centers), op="kmeans.assign",
                        flops=2 * n * k * d, bytes=n * d * b + n * (8 + b), path=ops.name, **s)
    assert backend.to_numpy(labels).shape == (n,)


@pytest.mark.benchmark(group="kmeans-lloyd-iteration")
@pytest.mark.parametrize("path", PATHS)
def test_lloyd_iteration(measure, backend, host, on_device, path):
    data, centers = on_device
    ops = _ops(data, path)
    s = _shape(host)
    n, d, k, b = s["n"], s["d"], s["k"], s["itemsize"]
    # labels from a previous pass, as every iteration after the first has them
    labels, _ = ops.assign(data, centers)

    def iteration():
        lab, sums, counts, _ = ops.assign_update(data, centers, labels)
        return _new_centers(data, centers, lab, sums, counts, ops)

    new = measure(backend, iteration, op="kmeans.lloyd_iteration",
                  flops=2 * n * k * d + n * d, bytes=n * d * b + 2 * n * 8, path=ops.name, **s)
    assert tuple(new.shape) == (k, d)


@pytest.mark.benchmark(group="kmeans-predict")
@pytest.mark.parametrize("impl", ("kmrec", "scikit-learn"))
def test_predict(measure, cpu_backend, host, impl):
    """Estimator-level peers on the CPU: each runs its own fused kernel on one thread."""
    x, centers = host
    k = centers.shape[0]
    if impl == "kmrec":
        model = KMeans(k, init=centers, max_iter=1, backend=cpu_backend).fit(x)
    else:
        from sklearn.cluster import KMeans as SKKMeans

        model = SKKMeans(k, init=centers, n_init=1, max_iter=1).fit(x)
    s = _shape(host)
    n, d, b = s["n"], s["d"], s["itemsize"]
    peer = {} if impl == "kmrec" else {"library": "scikit-learn"}
    labels = measure(cpu_backend, lambda: model.predict(x), op="kmeans.predict",
                     flops=2 * n * k * d, bytes=n * d * b + n * 4, impl=impl, **peer, **s)
    assert labels.shape == (n,)
