"""Names a package exports but loads with their submodule on first access (PEP 562).

A package lists ``_LAZY = {name: submodule}`` and sets
``__getattr__, __dir__ = lazy_exports(__name__, _LAZY)``: ``import kmrec_gpu.factor.linalg``
then no longer imports every model, and ``import kmrec_gpu`` no pandas or SciPy.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``; a loaded name is
    stored in the package so later lookups are plain attribute reads."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *names})

    return __getattr__, __dir__
