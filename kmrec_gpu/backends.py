"""Compute backends: which array namespace, on which device.

Every numerical algorithm is written once against ``backend.xp`` (the array API
namespace from ``array-api-compat``) and ``backend.sparse``; a :class:`Backend` says which
library and device that is, moves arrays between host and device, and synchronises the
device before a clock is read.

``get_backend("auto")`` picks CUDA when it is really usable and otherwise falls back to the
CPU, recording why in ``fallback_reason`` so result rows say so. ``get_backend("cuda")``
on a machine without a usable GPU raises :class:`BackendUnavailable`, never falls back.
CUDA is probed once per process (:func:`cuda_status`); CuPy imports fine without a GPU
and only fails on first use, so the probe runs a tiny operation rather than trust imports.
"""

from __future__ import annotations

import functools
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmrec_gpu.errors import BackendUnavailable
from kmrec_gpu.sparse import CupySparse, SparseAdapter, StrictSparse, TorchSparse

NAMES = ("auto", "cpu", "cuda")
LIBRARIES = {"cpu": ("numpy", "torch", "array_api_strict"), "cuda": ("cupy", "torch")}
ALL_LIBRARIES = ("numpy", "torch", "cupy", "array_api_strict")


# -- CUDA detection ---------------------------------------------------------------------


@dataclass(frozen=True)
class CudaStatus:
    """What the one-time CUDA probe found; ``checked`` says what was tried, in words."""

    torch: bool  # torch can run work on a GPU
    cupy: bool  # cupy is installed and can run work on a GPU
    device_name: str | None = None
    checked: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return self.torch or self.cupy

    @property
    def summary(self) -> str:
        return "; ".join(self.checked)


def _probe_torch() -> tuple[bool, str, str | None]:
    try:
        import torch
    except ImportError:
        return False, "torch not installed", None
    try:
        if not torch.cuda.is_available():
            build = "" if torch.version.cuda else f", torch {torch.__version__} is a CPU-only build"
            return False, f"torch.cuda.is_available() is False{build}", None
        (torch.ones(1, device="cuda") + 1).cpu()
        return True, "torch.cuda is usable", torch.cuda.get_device_name()
    except Exception as exc:  # a broken driver or runtime can raise anything here
        return False, f"torch CUDA failed: {type(exc).__name__}: {exc}", None


def _probe_cupy() -> tuple[bool, str, str | None]:
    try:
        import cupy
    except ImportError:
        return False, "cupy not installed", None
    except Exception as exc:
        return False, f"import cupy failed: {type(exc).__name__}: {exc}", None
    try:
        if not cupy.is_available():
            return False, "cupy.is_available() is False", None
        (cupy.ones(1) + 1).get()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return True, "cupy is usable", props["name"].decode()
    except Exception as exc:  # CUDARuntimeError and friends
        return False, f"cupy failed: {type(exc).__name__}: {exc}", None


@functools.cache
def cuda_status() -> CudaStatus:
    """Probe CUDA through torch and cupy, once per process.

    Tests replace this function with ``monkeypatch.setattr(backends, "cuda_status", ...)``;
    ``cuda_status.cache_clear()`` forces a new probe.
    """
    torch_ok, torch_note, torch_name = _probe_torch()
    cupy_ok, cupy_note, cupy_name = _probe_cupy()
    return CudaStatus(
        torch=torch_ok,
        cupy=cupy_ok,
        device_name=cupy_name or torch_name,
        checked=(torch_note, cupy_note),
    )


# -- the Backend --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Backend:
    """One array library on one device. Build it with :func:`get_backend`."""

    name: str  # "cpu" or "cuda"
    library: str  # "numpy", "torch", "cupy" or "array_api_strict"
    xp: Any
    device: Any  # pass to xp.asarray(..., device=...)
    device_name: str
    sparse: SparseAdapter
    versions: dict[str, str]
    fallback_reason: str | None = None
    _to_host: Callable[[Any], np.ndarray] = field(default=np.asarray, repr=False)
    _sync: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def label(self) -> str:
        """How a result row names the backend, ``cpu/numpy`` (its repr has addresses)."""
        return f"{self.name}/{self.library}"

    def __reduce__(self) -> tuple:
        # it holds an array module and device handles: a pickle (or a deep copy) names the
        # backend, and loading it builds it again where it is loaded
        return (_rebuild, (self.name, self.library))

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Host data (NumPy array, list, scalar) as an array of this backend.

        ``dtype`` may be a NumPy dtype, its name, or a dtype of ``xp``. On a CPU backend the
        result may share memory with ``x``.
        """
        return self.xp.asarray(x, dtype=self._xp_dtype(dtype), device=self.device)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A host NumPy array of ``x`` (may share memory with ``x`` on a CPU backend)."""
        return self._to_host(x)

    def synchronize(self) -> None:
        """Wait for queued device work; call before every clock read."""
        self._sync()

    def describe(self) -> dict[str, Any]:
        """The fields a result row records about where it ran."""
        return {
            "name": self.name,
            "library": self.library,
            "device": str(self.device),
            "device_name": self.device_name,
            "versions": dict(self.versions),
            "fallback_reason": self.fallback_reason,
        }

    def _xp_dtype(self, dtype: Any) -> Any:
        if dtype is None:
            return None
        try:
            return getattr(self.xp, np.dtype(dtype).name)
        except TypeError:  # already one of xp's own dtypes
            return dtype


@functools.cache
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _base_versions() -> dict[str, str]:
    import array_api_compat
    import scipy

    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "array_api_compat": array_api_compat.__version__,
    }


def _numpy_backend(fallback_reason: str | None) -> Backend:
    import array_api_compat.numpy as xp

    return Backend(
        name="cpu",
        library="numpy",
        xp=xp,
        device="cpu",
        device_name=_cpu_name(),
        sparse=SparseAdapter(xp, "cpu"),
        versions=_base_versions(),
        fallback_reason=fallback_reason,
    )


def _strict_backend(fallback_reason: str | None) -> Backend:
    import array_api_strict as xp

    device = xp.__array_namespace_info__().default_device()
    return Backend(
        name="cpu",
        library="array_api_strict",
        xp=xp,
        device=device,
        device_name=_cpu_name(),
        sparse=StrictSparse(xp, device),
        versions={**_base_versions(), "array_api_strict": xp.__version__},
        fallback_reason=fallback_reason,
        _to_host=np.from_dlpack,  # the standard way out; strict drops __array__ on Python >= 3.12
    )


def _torch_backend(name: str, fallback_reason: str | None) -> Backend:
    import array_api_compat.torch as xp
    import torch

    versions = {**_base_versions(), "torch": torch.__version__}
    if name == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
        device_name = torch.cuda.get_device_name(device)
        versions["cuda"] = str(torch.version.cuda)
        sync = functools.partial(torch.cuda.synchronize, device)
    else:
        device, device_name, sync = torch.device("cpu"), _cpu_name(), lambda: None
    return Backend(
        name=name,
        library="torch",
        xp=xp,
        device=device,
        device_name=device_name,
        sparse=TorchSparse(xp, device),
        versions=versions,
        fallback_reason=fallback_reason,
        _to_host=lambda x: x.detach().cpu().numpy(),
        _sync=sync,
    )


def _cupy_backend() -> Backend:
    import array_api_compat.cupy as xp
    import cupy

    device = cupy.cuda.Device()
    runtime = cupy.cuda.runtime.runtimeGetVersion()
    return Backend(
        name="cuda",
        library="cupy",
        xp=xp,
        device=device,
        device_name=cupy.cuda.runtime.getDeviceProperties(device.id)["name"].decode(),
        sparse=CupySparse(xp, device),
        versions={
            **_base_versions(),
            "cupy": cupy.__version__,
            "cuda": f"{runtime // 1000}.{runtime % 1000 // 10}",
        },
        fallback_reason=None,
        _to_host=cupy.asnumpy,
        _sync=device.synchronize,  # the whole device, not one stream: timings cover all work
    )


# -- choosing ---------------------------------------------------------------------------


def _cuda_library(library: str | None, status: CudaStatus) -> str:
    if library is None:
        if status.cupy:
            return "cupy"
        if status.torch:
            return "torch"
        raise BackendUnavailable(
            f"backend 'cuda' needs a usable CUDA GPU and found none ({status.summary}); "
            "use backend='cpu' or 'auto'"
        )
    if not getattr(status, library):
        raise BackendUnavailable(
            f"backend 'cuda' with library={library!r}: {library} cannot use a CUDA GPU "
            f"({status.summary})"
        )
    return library


def _resolve(name: str, library: str | None) -> tuple[str, str, str | None]:
    """(device kind, library, fallback reason) for a request; probes CUDA only if needed."""
    if name not in NAMES:
        raise ValueError(f"unknown backend {name!r}; valid names: {', '.join(NAMES)}")
    if library is not None and library not in ALL_LIBRARIES:
        valid = ", ".join(ALL_LIBRARIES)
        raise ValueError(f"unknown library {library!r}; valid libraries: {valid}")
    if name != "auto" and library is not None and library not in LIBRARIES[name]:
        raise ValueError(
            f"library {library!r} does not run on {name!r}; "
            f"valid there: {', '.join(LIBRARIES[name])}"
        )
    if name == "cpu" or library in ("numpy", "array_api_strict"):
        return "cpu", library or "numpy", None
    status = cuda_status()
    if name == "cuda":
        return "cuda", _cuda_library(library, status), None
    try:
        return "cuda", _cuda_library(library, status), None
    except BackendUnavailable:
        if library == "cupy":  # cupy has no CPU to fall back to
            raise
        return "cpu", library or "numpy", f"auto: no usable CUDA GPU ({status.summary})"


def _rebuild(name: str, library: str) -> Backend:
    return get_backend(name, library=library)


def get_backend(name: str = "auto", *, library: str | None = None) -> Backend:
    """The backend ``name`` ("auto", "cpu" or "cuda"), optionally with a chosen ``library``.

    Defaults: cpu uses numpy; cuda uses cupy when usable, else torch. ``library="torch"``
    on cpu gives PyTorch-CPU; ``"array_api_strict"`` (cpu only) is for portability tests.
    """
    kind, lib, reason = _resolve(name, library)
    try:
        if lib == "numpy":
            return _numpy_backend(reason)
        if lib == "array_api_strict":
            return _strict_backend(reason)
        if lib == "torch":
            return _torch_backend(kind, reason)
        return _cupy_backend()
    except ImportError as exc:
        raise BackendUnavailable(f"library {lib!r} is not installed ({exc})") from exc


def resolve_backend(backend: str | Backend, library: str | None = None) -> Backend:
    """An estimator's ``backend`` parameter as a :class:`Backend`: itself, or the one
    :func:`get_backend` resolves for a name."""
    if isinstance(backend, Backend):
        return backend
    return get_backend(backend, library=library)


def check_float_dtype(dtype: str) -> None:
    """An estimator's ``dtype`` parameter: 'float32' or 'float64'."""
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
