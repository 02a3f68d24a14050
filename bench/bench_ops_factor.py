"""The products of the scalable SVD: ``Z·Y``, ``Zᵀ·Y`` for ``Z = P + A·Bᵀ`` and the SDDMM.

The scalable SVD touches its matrix only through ``SparsePlusLowRank.matmul``/``rmatmul``
(single columns in the Lanczos solver, a block of ``rank + oversample`` columns in
``subspace_svd``), and every
iterative-SVD step evaluates its rank-r reconstruction on the observed cells with
``sampled_dot``; those three are timed here on each backend.

Peers: SciPy's ``LinearOperator`` sum (the implicit operator ``scipy.sparse.linalg.svds``
would take) for the two products, and ``torch.sparse.sampled_addmm`` (torch's own SDDMM)
for ``sampled_dot``. NumPy has no SDDMM of its own to compare with. The sparsity pattern
is uniform: MovieLens' skew changes load balance on a GPU, not the work.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kmrec_gpu.factor.linalg import sampled_dot
from kmrec_gpu.factor.operator import SparsePlusLowRank

DTYPE = np.float64  # the factor models' default


@pytest.fixture(scope="module")
def host(sizes):
    rng = np.random.default_rng(0)
    m, n, nnz, r = sizes.sv_rows, sizes.sv_cols, sizes.sv_nnz, sizes.sv_rank
    cells = rng.choice(m * n, size=nnz, replace=False)
    csr = sp.csr_matrix((rng.standard_normal(nnz), (cells // n, cells % n)), shape=(m, n),
                        dtype=DTYPE)
    csr.sum_duplicates()
    k = 2 * r
    return {
        "csr": csr,
        "left": rng.standard_normal((m, r)),
        "right": rng.standard_normal((n, r)),
        "y_cols": rng.standard_normal((n, k)),  # the block Z multiplies
        "y_rows": rng.standard_normal((m, k)),  # the block Zᵀ multiplies
    }


@pytest.fixture(scope="module")
def on_device(host, backend):
    be = backend
    pattern = be.sparse.pattern(host["csr"])
    op = SparsePlusLowRank(be, pattern.matrix(pattern.values), be.asarray(host["left"]),
                           be.asarray(host["right"]))
    return {"op": op, "pattern": pattern, **{key: be.asarray(host[key])
                                             for key in ("left", "right", "y_cols", "y_rows")}}


def _shape(host) -> dict:
    csr = host["csr"]
    m, n = csr.shape
    return {"rows": m, "cols": n, "nnz": csr.nnz, "rank": host["left"].shape[1],
            "block": host["y_cols"].shape[1], "dtype": csr.dtype.name}


def _product_cost(host, transpose: bool) -> dict:
    """FLOPs and minimum bytes of ``Z·Y`` (``transpose``: ``Zᵀ·Y``) for ``Z = P + A·Bᵀ``."""
    csr, s = host["csr"], _shape(host)
    m, n, nnz, r, k = s["rows"], s["cols"], s["nnz"], s["rank"], s["block"]
    out_rows, in_rows = (n, m) if transpose else (m, n)
    f = 8  # float64
    sparse_bytes = nnz * (f + csr.indices.itemsize) + csr.indptr.nbytes
    return {"flops": 2 * nnz * k + 2 * (m + n) * r * k + out_rows * k,
            "bytes": sparse_bytes + f * ((m + n) * r + (in_rows + out_rows) * k)}


def _sampled_cost(host) -> dict:
    s = _shape(host)
    nnz, r = s["nnz"], s["rank"]
    return {"flops": 2 * nnz * r, "bytes": nnz * (8 + 8 + 8) + 8 * (s["rows"] + s["cols"]) * r}


@pytest.mark.benchmark(group="svd-matmul")
def test_matmul(measure, backend, host, on_device):
    d = on_device
    out = measure(backend, lambda: d["op"].matmul(d["y_cols"]), op="operator.matmul",
                  **_product_cost(host, False), **_shape(host))
    assert tuple(out.shape) == (host["csr"].shape[0], host["y_cols"].shape[1])


@pytest.mark.benchmark(group="svd-rmatmul")
def test_rmatmul(measure, backend, host, on_device):
    d = on_device
    out = measure(backend, lambda: d["op"].rmatmul(d["y_rows"]), op="operator.rmatmul",
                  **_product_cost(host, True), **_shape(host))
    assert tuple(out.shape) == (host["csr"].shape[1], host["y_rows"].shape[1])


@pytest.fixture(scope="module")
def scipy_operator(host):
    from scipy.sparse.linalg import aslinearoperator

    low_rank = aslinearoperator(host["left"]) @ aslinearoperator(host["right"].T)
    return aslinearoperator(host["csr"]) + low_rank


@pytest.mark.benchmark(group="svd-matmul")
def test_matmul_scipy_peer(measure, cpu_backend, host, scipy_operator):
    ours = SparsePlusLowRank(cpu_backend, cpu_backend.sparse.from_scipy(host["csr"]),
                             host["left"], host["right"]).matmul(host["y_cols"])
    np.testing.assert_allclose(scipy_operator.matmat(host["y_cols"]), ours, rtol=1e-10)
    measure(cpu_backend, lambda: scipy_operator.matmat(host["y_cols"]),
            op="operator.matmul", library="scipy.LinearOperator",
            **_product_cost(host, False), **_shape(host))


@pytest.mark.benchmark(group="svd-rmatmul")
def test_rmatmul_scipy_peer(measure, cpu_backend, host, scipy_operator):
    ours = SparsePlusLowRank(cpu_backend, cpu_backend.sparse.from_scipy(host["csr"]),
                             host["left"], host["right"]).rmatmul(host["y_rows"])
    np.testing.assert_allclose(scipy_operator.rmatmat(host["y_rows"]), ours, rtol=1e-10)
    measure(cpu_backend, lambda: scipy_operator.rmatmat(host["y_rows"]),
            op="operator.rmatmul", library="scipy.LinearOperator",
            **_product_cost(host, True), **_shape(host))


@pytest.mark.benchmark(group="svd-sampled-dot")
def test_sampled_dot(measure, backend, host, on_device):
    d = on_device
    p = d["pattern"]
    out = measure(backend, lambda: sampled_dot(backend, d["left"], d["right"], p.rows, p.cols),
                  op="sampled_dot", **_sampled_cost(host), **_shape(host))
    assert tuple(out.shape) == (host["csr"].nnz,)


@pytest.mark.benchmark(group="svd-sampled-dot")
def test_sampled_dot_torch_peer(measure, torch_backend, host):
    import torch

    be = torch_backend
    pattern = be.sparse.pattern(host["csr"])
    structure = pattern.matrix(pattern.values).native  # CSR in the order sampled_dot returns
    a, b = be.asarray(host["left"]), be.asarray(host["right"])
    bt = b.T.contiguous()

    def native():
        return torch.sparse.sampled_addmm(structure, a, bt, beta=0.0).values()

    expected = sampled_dot(be, a, b, pattern.rows, pattern.cols)
    torch.testing.assert_close(native(), expected)
    measure(be, native, op="sampled_dot", library="torch.sparse.sampled_addmm",
            **_sampled_cost(host), **_shape(host))
