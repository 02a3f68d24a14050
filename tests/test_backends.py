"""The backend contract, checked on every backend this machine has, and backend choice."""

from __future__ import annotations

import sys
import types

import array_api_compat
import numpy as np
import pytest
import scipy.sparse as sp

from kmrec_gpu import backends
from kmrec_gpu.backends import BackendUnavailable, CudaStatus, get_backend

RTOL = {"float32": 1e-5, "float64": 1e-12}


def _ratings_like(dtype: str, shape=(30, 20), seed=0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.5, 5.0, shape) * (rng.random(shape) < 0.25)
    dense[[0, 7], :] = 0  # users with no ratings
    dense[:, [3, 11]] = 0  # items nobody rated
    return sp.csr_matrix(dense.astype(dtype))


def _rhs(n: int, ndim: int, dtype: str) -> np.ndarray:
    # Positive values: no cancellation, so a relative tolerance is meaningful.
    return np.random.default_rng(1).uniform(0.1, 1.0, (n,) if ndim == 1 else (n, 4)).astype(dtype)


# -- dense arrays -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
def test_asarray_to_numpy_round_trip(backend, dtype):
    host = (np.random.default_rng(2).normal(size=(5, 3)) * 100).astype(dtype)
    arr = backend.asarray(host)
    assert array_api_compat.array_namespace(arr) is backend.xp
    assert array_api_compat.device(arr) == backend.device
    back = backend.to_numpy(arr)
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, host)


@pytest.mark.parametrize("spec", ["float32", np.float32, "xp"])
def test_asarray_casts_to_requested_dtype(backend, spec):
    dtype = backend.xp.float32 if spec == "xp" else spec
    arr = backend.asarray(np.array([1.5, 2.5], dtype=np.float64), dtype=dtype)
    assert arr.dtype == backend.xp.float32
    np.testing.assert_array_equal(backend.to_numpy(arr), np.array([1.5, 2.5], dtype=np.float32))


def test_namespace_functions_run_on_backend_arrays(backend):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
    xp = backend.xp
    product = xp.matmul(backend.asarray(a), backend.asarray(b))
    column_sums = xp.sum(backend.asarray(a), axis=0)
    assert backend.synchronize() is None
    np.testing.assert_allclose(backend.to_numpy(product), a @ b, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(column_sums), a.sum(axis=0), rtol=1e-12)


def test_describe_names_where_it_ran(backend):
    row = backend.describe()
    assert set(row) >= {"name", "library", "device_name", "versions", "fallback_reason"}
    assert (row["name"], row["library"]) == (backend.name, backend.library)
    assert row["versions"][backend.library] and row["versions"]["numpy"] == np.__version__
    assert isinstance(row["device_name"], str) and row["device_name"]
    assert row["fallback_reason"] is None


# -- sparse adapter -----------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sparse_products_match_scipy(backend, dtype, ndim):
    csr = _ratings_like(dtype)
    a = backend.sparse.from_scipy(csr)
    dense = csr.toarray().astype(np.float64)
    x, y = _rhs(csr.shape[1], ndim, dtype), _rhs(csr.shape[0], ndim, dtype)

    ax = backend.sparse.matmul(a, backend.asarray(x))
    aty = backend.sparse.rmatmul(a, backend.asarray(y))

    for got, want in ((ax, dense @ x), (aty, dense.T @ y)):
        assert array_api_compat.array_namespace(got) is backend.xp
        got = backend.to_numpy(got)
        assert got.dtype == np.dtype(dtype) and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype])
    assert backend.sparse.shape(a) == csr.shape
    assert backend.sparse.nnz(a) == csr.nnz


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sparse_row_sums_and_counts(backend, dtype):
    csr = _ratings_like(dtype)
    a = backend.sparse.from_scipy(csr)
    sums = backend.to_numpy(backend.sparse.row_sums(a))
    counts = backend.to_numpy(backend.sparse.row_nnz(a))
    assert sums.dtype == np.dtype(dtype) and counts.dtype == np.int64
    np.testing.assert_allclose(sums, csr.toarray().astype(np.float64).sum(axis=1), rtol=RTOL[dtype])
    np.testing.assert_array_equal(counts, np.diff(csr.indptr))
    assert counts[0] == 0 and counts[7] == 0


def test_sparse_to_scipy_is_an_independent_exact_copy(backend):
    csr = _ratings_like("float32")
    a = backend.sparse.from_scipy(csr)
    back = backend.sparse.to_scipy(a)
    assert sp.issparse(back) and back.format == "csr" and back.dtype == np.float32
    assert back.shape == csr.shape and (back != csr).nnz == 0
    x = _rhs(csr.shape[1], 1, "float32")
    want = csr @ x
    back.data[:] = 0
    np.testing.assert_allclose(
        backend.to_numpy(backend.sparse.matmul(a, backend.asarray(x))), want, rtol=1e-5
    )


def test_sparse_empty_and_non_canonical_input(backend):
    empty = backend.sparse.from_scipy(sp.csr_matrix((4, 3), dtype=np.float64))
    out = backend.sparse.rmatmul(empty, backend.asarray(np.ones((4, 2))))
    np.testing.assert_array_equal(backend.to_numpy(out), np.zeros((3, 2)))

    # Unsorted columns and a duplicate entry, as a hand-built CSR may have.
    messy = sp.csr_matrix(
        (np.array([1.0, 2.0, 3.0, 4.0]), np.array([2, 0, 2, 1]), np.array([0, 3, 4])), shape=(2, 3)
    )
    assert not messy.has_canonical_format
    a = backend.sparse.from_scipy(messy)
    assert backend.sparse.to_scipy(a).has_canonical_format  # what cuSPARSE assumes
    x = np.array([1.0, 10.0, 100.0])
    np.testing.assert_array_equal(
        backend.to_numpy(backend.sparse.matmul(a, backend.asarray(x))), [402.0, 40.0]
    )
    np.testing.assert_array_equal(
        backend.to_numpy(backend.sparse.rmatmul(a, backend.asarray(np.ones(2)))), [2.0, 4.0, 4.0]
    )


def test_sparse_rejects_mismatched_operands(backend):
    a = backend.sparse.from_scipy(_ratings_like("float32"))
    with pytest.raises(TypeError, match="float64 but the sparse matrix is float32"):
        backend.sparse.matmul(a, backend.asarray(np.ones(20)))
    with pytest.raises(ValueError, match="A.shape"):
        backend.sparse.matmul(a, backend.asarray(np.ones(30, dtype=np.float32)))
    with pytest.raises(ValueError, match="A.shape"):
        backend.sparse.rmatmul(a, backend.asarray(np.ones(20, dtype=np.float32)))
    with pytest.raises(TypeError):
        backend.sparse.matmul(a, [1.0] * 20)
    if backend.library != "numpy":
        with pytest.raises(TypeError, match=backend.library):
            backend.sparse.matmul(a, np.ones(20, dtype=np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        backend.sparse.from_scipy(sp.csr_matrix(np.eye(3, dtype=np.int64)))
    with pytest.raises(TypeError, match="scipy.sparse"):
        backend.sparse.from_scipy(np.eye(3))


# -- choosing a backend -------------------------------------------------------------------


def test_cuda_without_a_gpu_is_an_error_naming_what_was_checked(no_cuda):
    with pytest.raises(BackendUnavailable, match="torch.cuda.is_available\\(\\) is False") as err:
        get_backend("cuda")
    assert "cupy not installed" in str(err.value)
    for library in ("torch", "cupy"):
        with pytest.raises(BackendUnavailable, match=f"library='{library}'"):
            get_backend("cuda", library=library)


def test_auto_falls_back_to_cpu_and_says_why(no_cuda):
    b = get_backend("auto")
    assert (b.name, b.library) == ("cpu", "numpy")
    assert b.fallback_reason.startswith("auto: no usable CUDA GPU")
    assert no_cuda.summary in b.fallback_reason
    assert b.describe()["fallback_reason"] == b.fallback_reason

    t = get_backend("auto", library="torch")
    assert (t.name, t.library, str(t.device)) == ("cpu", "torch", "cpu")
    assert t.fallback_reason == b.fallback_reason

    with pytest.raises(BackendUnavailable, match="cupy cannot use a CUDA GPU"):
        get_backend("auto", library="cupy")  # cupy has no CPU to fall back to


def test_cpu_only_requests_never_probe_cuda(monkeypatch):
    def probe():
        raise AssertionError("CUDA probed for a CPU-only request")

    monkeypatch.setattr(backends, "cuda_status", probe)
    assert get_backend("cpu").library == "numpy"
    assert get_backend("auto", library="array_api_strict").fallback_reason is None


@pytest.mark.parametrize(
    ("torch_ok", "cupy_ok", "name", "library", "expected"),
    [
        (True, True, "auto", None, ("cuda", "cupy", None)),
        (True, False, "auto", None, ("cuda", "torch", None)),
        (True, True, "cuda", "torch", ("cuda", "torch", None)),
        (False, True, "cuda", None, ("cuda", "cupy", None)),
        (False, True, "auto", "torch", ("cpu", "torch", "auto: no usable CUDA GPU (probe)")),
        (True, False, "cuda", "cupy", BackendUnavailable),
        (True, False, "auto", "cupy", BackendUnavailable),
    ],
)
def test_choice_on_gpu_machines(monkeypatch, torch_ok, cupy_ok, name, library, expected):
    status = CudaStatus(torch=torch_ok, cupy=cupy_ok, device_name="Fake GPU", checked=("probe",))
    monkeypatch.setattr(backends, "cuda_status", lambda: status)
    if expected is BackendUnavailable:
        with pytest.raises(BackendUnavailable, match="cupy cannot use a CUDA GPU"):
            backends._resolve(name, library)
    else:
        assert backends._resolve(name, library) == expected


@pytest.mark.parametrize(
    ("name", "library", "match"),
    [
        ("gpu", None, "unknown backend 'gpu'; valid names: auto, cpu, cuda"),
        ("cpu", "jax", "unknown library 'jax'; valid libraries: numpy, torch, cupy, array_api_st"),
        ("cpu", "cupy", "'cupy' does not run on 'cpu'"),
        ("cuda", "numpy", "'numpy' does not run on 'cuda'"),
        ("cuda", "array_api_strict", "does not run on 'cuda'"),
    ],
)
def test_bad_requests_are_value_errors(no_cuda, name, library, match):
    with pytest.raises(ValueError, match=match):
        get_backend(name, library=library)


def test_missing_library_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "array_api_strict", None)  # makes the import fail
    with pytest.raises(BackendUnavailable, match="'array_api_strict' is not installed"):
        get_backend("cpu", library="array_api_strict")


# -- CUDA detection -----------------------------------------------------------------------


@pytest.fixture
def fresh_probe():
    backends.cuda_status.cache_clear()
    yield
    backends.cuda_status.cache_clear()  # the next caller probes the real machine again


def test_cuda_is_probed_once(monkeypatch, fresh_probe):
    calls = []
    def probe(name):
        return lambda: calls.append(name) or (False, name[0], None)

    monkeypatch.setattr(backends, "_probe_torch", probe("torch"))
    monkeypatch.setattr(backends, "_probe_cupy", probe("cupy"))
    first = backends.cuda_status()
    assert backends.cuda_status() is first
    get_backend("auto")
    get_backend("auto", library="torch")
    assert calls == ["torch", "cupy"]
    assert first == CudaStatus(torch=False, cupy=False, checked=("t", "c"))


def _fake_cupy(available, op_error=None):
    def is_available():
        if isinstance(available, Exception):
            raise available
        return available

    def ones(n):
        raise op_error

    return types.SimpleNamespace(is_available=is_available, ones=ones)


@pytest.mark.parametrize(
    ("module", "note"),
    [
        (None, "cupy not installed"),
        (_fake_cupy(False), "cupy.is_available() is False"),
        (_fake_cupy(RuntimeError("cudaErrorNoDevice")), "cupy failed: RuntimeError: cudaErrorNo"),
        (_fake_cupy(True, RuntimeError("cudaErrorInsufficientDriver")), "cudaErrorInsufficient"),
    ],
)
def test_cupy_probe_survives_a_machine_without_cuda(monkeypatch, module, note):
    monkeypatch.setitem(sys.modules, "cupy", module)
    ok, got_note, name = backends._probe_cupy()
    assert (ok, name) == (False, None)
    assert note in got_note


def test_torch_probe_does_not_trust_is_available_alone(monkeypatch):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a real GPU is present; the probe's failure path needs a CPU-only torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *args: "Fake GPU")
    ok, note, name = backends._probe_torch()
    assert (ok, name) == (False, None)
    assert note.startswith("torch CUDA failed")
