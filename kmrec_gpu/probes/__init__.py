"""Probes: claim protocols that are measurements, not fit/predict models.

A probe is a harness cell of task ``probe``: the harness builds it from the model
config's ``estimator`` and calls ``measure(split)`` with the cell's
:class:`~kmrec_gpu.splits.TTSplit`; ``measure`` returns the probe with

* ``metrics_``: a flat ``{name: int | float}`` (the row's metrics), and
* ``details_``: a JSON-serialisable dict (lists, strings, numbers; the row's
  ``extra.details``).

Each has ``get_params()`` of plain values. The probes (each module imports its own
dependencies, so importing this package is cheap):

* :class:`kmrec_gpu.probes.seed002.Probe002Clusters`: seed 002's K = 15 clustering and
  small-cluster fix on its 447-row file, repeated with every scikit-learn release that
  installs here, each in its own cached environment;
* :class:`kmrec_gpu.probes.seed004.Probe004Clusters`: seed 004's k = 7 clusters of the
  mean-filled pivot, counted in users and in rating rows;
* :class:`kmrec_gpu.probes.seed000.Probe000Pair`: seed 000's network trained as
  published, and its "accuracy" on the one printed pair (user 6, movie 2).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any


def plain(value: Any) -> Any:
    """``value`` with mappings as dicts, sequences (tuples, Hydra's ListConfig) as lists and
    NumPy scalars and arrays as Python values: a plain JSON value (parameters, details)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return plain(value.tolist())
    return value


class Probe:
    """Base of the probes: scikit-learn style parameters, ``measure(split)`` to override."""

    metrics_: dict[str, int | float]
    details_: dict[str, Any]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: plain(getattr(self, k)) for k in names}

    def set_params(self, **params: Any) -> Probe:
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"unknown parameter {k!r} for {type(self).__name__}")
            setattr(self, k, v)
        return self

    def measure(self, split) -> Probe:  # pragma: no cover - each probe overrides it
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
