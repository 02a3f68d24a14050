"""Shared set-up of the micro-benchmark suites (``bench/bench_ops_*.py``).

They are pytest-benchmark suites kept out of the normal test run (``testpaths`` is
``tests``); ``bench/run_micro.py`` runs them and stores the JSON under ``results/micro/``.
``KMREC_MICRO_SIZE`` picks the problem sizes: ``default`` (real sizes) or ``tiny`` (the
smoke test's, seconds in all).

Every suite runs on the same backends: NumPy and PyTorch on the CPU always, CuPy and
PyTorch on CUDA when the one-time probe finds them usable (skipped with its reason
otherwise). Every timed callable synchronises the device before it returns, so queued
GPU work is inside the measurement.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from kmrec_gpu import backends

# (id, backend name, library); the ids are the JSON's ``param`` values
BACKENDS = (("numpy", "cpu", "numpy"), ("torch", "cpu", "torch"),
            ("cupy", "cuda", "cupy"), ("torch-cuda", "cuda", "torch"))
TORCH_BACKENDS = tuple(b for b in BACKENDS if b[2] == "torch")


@dataclass(frozen=True)
class Sizes:
    name: str
    # K-means: n points of d features, k centres (float32, a GPU's working precision)
    km_n: int
    km_d: int
    km_k: int
    # the scalable SVD's sparse-plus-low-rank operator (float64, the factor models' default)
    sv_rows: int
    sv_cols: int
    sv_nnz: int
    sv_rank: int
    # one training batch of the networks, over ml-latest-small's vocabulary sizes
    nn_batch: int
    nn_users: int
    nn_items: int
    nn_genres: int


SIZES = {
    "tiny": Sizes("tiny", 2_000, 8, 4, 300, 500, 5_000, 4, 32, 50, 80, 20),
    "default": Sizes("default", 100_000, 32, 16, 6_000, 10_000, 1_000_000, 16,
                     1024, 610, 9_724, 20),
}


_THREAD_LIMITS = pytest.StashKey[Any]()


def _size_name() -> str:
    name = os.environ.get("KMREC_MICRO_SIZE", "default")
    if name not in SIZES:
        raise pytest.UsageError(f"KMREC_MICRO_SIZE={name!r}; expected one of {sorted(SIZES)}")
    return name


def pytest_configure(config: pytest.Config) -> None:
    _size_name()
    # One thread everywhere: on this shared 2-core machine two BLAS/torch/numba threads
    # contend with each other and with neighbours, and timings become meaningless.
    # threadpoolctl limits only the pools already loaded, so load every one first: SciPy
    # and NumPy bundle their own OpenBLAS, scikit-learn and torch their own OpenMP, and
    # numba's OpenMP layer loads when its thread count is set.
    import numba
    importlib.import_module("scipy.sparse.linalg")
    importlib.import_module("sklearn.cluster")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    numba.set_num_threads(1)
    config.stash[_THREAD_LIMITS] = threadpool_limits(limits=1)  # kept for the whole run


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    import numba
    import torch
    from threadpoolctl import threadpool_info

    machine_info["kmrec"] = {
        "micro_size": _size_name(),
        "torch_threads": torch.get_num_threads(),
        "numba_threads": numba.get_num_threads(),
        "threadpools": [{k: p.get(k) for k in ("prefix", "internal_api", "num_threads",
                                               "version")} for p in threadpool_info()],
        "cuda": backends.cuda_status().summary,
    }


@pytest.fixture(scope="session")
def sizes() -> Sizes:
    return SIZES[_size_name()]


def _make_backend(name: str, library: str) -> backends.Backend:
    if name == "cuda":
        status = backends.cuda_status()
        if not getattr(status, library):
            pytest.skip(f"{library} on CUDA unavailable: {status.summary}")
    return backends.get_backend(name, library=library)


@pytest.fixture(scope="session", params=[pytest.param(b[1:], id=b[0]) for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> backends.Backend:
    """Every array library in turn; session-scoped so device data is built once per module."""
    return _make_backend(*request.param)


@pytest.fixture(scope="session",
                params=[pytest.param(b[1:], id=b[0]) for b in TORCH_BACKENDS])
def torch_backend(request: pytest.FixtureRequest) -> backends.Backend:
    return _make_backend(*request.param)


@pytest.fixture(scope="session")
def cpu_backend() -> backends.Backend:
    """The NumPy backend, which labels the CPU-only peers (scikit-learn, SciPy)."""
    return backends.get_backend("cpu", library="numpy")


@pytest.fixture
def measure(benchmark: Any, sizes: Sizes) -> Callable[..., Any]:
    """``measure(backend, fn, op=..., flops=..., bytes=..., **extra)`` times ``fn()``.

    ``flops`` and ``bytes`` are the op's arithmetic and its minimum memory traffic (inputs
    read once, outputs written once), for GFLOP/s and GB/s; ``library`` in ``extra``
    overrides the backend's (a peer labelled by the backend it runs beside).
    """

    def run(backend: backends.Backend, fn: Callable[[], Any], *, op: str,
            flops: float | None = None, bytes: float | None = None, **extra: Any) -> Any:
        info = backend.describe()
        benchmark.extra_info.update({
            "op": op, "size": sizes.name, "library": info["library"], "device": info["device"],
            "device_name": info["device_name"], "flops": flops, "bytes": bytes, **extra})

        def call() -> Any:
            out = fn()
            backend.synchronize()
            return out

        return benchmark(call)

    return run
