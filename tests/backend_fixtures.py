"""Fixtures that run one behavioural test suite on every backend this machine has.

Register them in conftest.py (``pytest_plugins = ["tests.backend_fixtures"]``). A backend
that cannot run here is skipped with the reason the probe gave; with
``KMREC_REQUIRE_CUDA=1`` (a GPU runner) the CUDA ones fail instead, so a broken GPU setup
cannot pass as a clean run of skips.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from kmrec_gpu import backends

# (id, backend name, library)
BACKEND_CASES = (
    ("numpy", "cpu", "numpy"),
    ("torch-cpu", "cpu", "torch"),
    ("array-api-strict", "cpu", "array_api_strict"),
    ("cupy", "cuda", "cupy"),
    ("torch-cuda", "cuda", "torch"),
)


def _skip_reason(name: str, library: str) -> str | None:
    # Decide from the probe, not by catching get_backend's errors: a backend that should
    # work and fails to build is a test failure, not a skip.
    if name == "cuda":
        status = backends.cuda_status()
        if getattr(status, library):
            return None
        if os.environ.get("KMREC_REQUIRE_CUDA") == "1":
            pytest.fail(f"KMREC_REQUIRE_CUDA=1 but {library} cannot use CUDA ({status.summary})")
        return f"{library} on CUDA unavailable: {status.summary}"
    if importlib.util.find_spec(library) is None:
        return f"{library} not installed"
    return None


@pytest.fixture(params=[pytest.param(case[1:], id=case[0]) for case in BACKEND_CASES])
def backend(request: pytest.FixtureRequest) -> backends.Backend:
    """Every backend in turn: numpy, torch-cpu, array-api-strict, cupy, torch-cuda."""
    name, library = request.param
    reason = _skip_reason(name, library)
    if reason:
        pytest.skip(reason)
    return backends.get_backend(name, library=library)


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> backends.CudaStatus:
    """Make this test see a machine without a usable GPU, whatever the real one has."""
    status = backends.CudaStatus(
        torch=False,
        cupy=False,
        checked=("torch.cuda.is_available() is False", "cupy not installed"),
    )
    monkeypatch.setattr(backends, "cuda_status", lambda: status)
    return status
