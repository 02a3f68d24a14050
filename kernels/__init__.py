"""Fused kernels for kmrec_gpu's hot loops (one file per kernel, each with a reference).

- ``cpu_kmeans``: K-means assignment and accumulation on a CPU (numba), for NumPy input.
- ``triton_kmeans``: the same fused assignment on a GPU (Triton).
- ``triton_sddmm``: sampled dense-dense products, ``a[rows]·b[cols]`` + biases (Triton).

Importing this package never imports Triton or numba: kernels are loaded when a caller
asks for one, so the library works where they are absent. :func:`find_triton` is the one
dispatch rule for every Triton kernel:

- ``kernels="off"``: never (the namespace composition, for A/B comparisons);
- ``"auto"``: a compiled kernel on CUDA tensors (torch, or CuPy through DLPack);
- ``"on"``: demand one, and also accept an interpreted kernel on CPU tensors, which is how
  the tests drive the dispatch path without a GPU (``TRITON_INTERPRET=1`` set before
  ``triton`` is imported: Triton decides at decoration time).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

MODES = ("auto", "on", "off")
_CPU_NEEDS_INTERPRETER = ("Triton compiles for CUDA; on a CPU it runs only interpreted "
                          "(TRITON_INTERPRET=1 before triton is imported, and kernels='on')")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"kernels must be one of {MODES}, got {mode!r}")
    return mode


def find_triton(kernel: str, backend: Any, mode: str) -> tuple[Any | None, str]:
    """``(module, "")`` when Triton kernel module ``kernels.<kernel>`` should run on
    ``backend``'s arrays under ``mode``, else ``(None, why not)``."""
    if check_mode(mode) == "off":
        return None, "kernels='off'"
    if backend.library not in ("torch", "cupy"):
        return None, f"Triton kernels take torch or CuPy arrays, not {backend.library}"
    if backend.name != "cuda" and os.environ.get("TRITON_INTERPRET") != "1" and \
            f"kernels.{kernel}" not in sys.modules:
        return None, _CPU_NEEDS_INTERPRETER  # decided without importing triton (a second)
    try:
        mod = importlib.import_module(f"kernels.{kernel}")
    except (ImportError, RuntimeError) as exc:  # no triton, or a broken install
        return None, f"triton is not importable ({type(exc).__name__}: {exc})"
    if mod.INTERPRETED:
        if mode != "on":
            return None, ("Triton is interpreting (TRITON_INTERPRET=1); interpreted kernels "
                          "run only when asked for with kernels='on'")
        if backend.library != "torch" or backend.name != "cpu":
            return None, "interpreted Triton kernels run on torch CPU tensors only"
        return mod, ""
    if backend.name != "cuda":
        return None, _CPU_NEEDS_INTERPRETER
    return mod, ""


def path_name(mod: Any) -> str:
    """How a result row names a Triton kernel's path."""
    return "triton-interpret" if mod.INTERPRETED else "triton"


_TRITON_TYPES = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64",
                 "int32": "i32", "int64": "i64"}


def triton_type(dtype: Any) -> str:
    """Triton's name of a torch dtype in a kernel signature (``torch.float16`` -> ``fp16``)."""
    return _TRITON_TYPES[str(dtype).rsplit(".", 1)[-1]]


def as_torch(a: Any) -> Any:
    """A torch view of a torch tensor or a CuPy array (zero-copy through DLPack)."""
    import torch

    return a if isinstance(a, torch.Tensor) else torch.from_dlpack(a)


def from_torch(t: Any, backend: Any) -> Any:
    """``t`` as an array of ``backend``'s library (zero-copy for CuPy)."""
    if backend.library == "cupy":
        import cupy

        return cupy.from_dlpack(t)
    return t
