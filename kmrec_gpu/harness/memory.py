"""Peak memory of one phase: host resident set size and, on CUDA, device memory.

The process-wide ``ru_maxrss`` only ever grows, so after one big cell every later cell
would report that cell's peak. A phase is therefore measured by a sampling thread that
reads the current RSS (``/proc/self/statm``) every few milliseconds; when the phase also
raised ``ru_maxrss`` (a new high for the process), that exact figure replaces the sample.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from kmrec_gpu.environment import peak_host_memory_bytes

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None  # not Linux: only ru_maxrss is available


class PeakMemory:
    """``with PeakMemory(backend) as pm: ...`` then ``pm.as_dict()``."""

    def __init__(self, backend: Any = None, interval_s: float = 0.002) -> None:
        self.backend = backend
        self.interval_s = interval_s
        self._stop = threading.Event()

    def _device(self) -> tuple[str | None, Any]:
        be = self.backend
        if be is None or getattr(be, "name", "cpu") != "cuda":
            return None, None
        if be.library == "torch":
            import torch

            return "torch", torch
        import cupy

        return "cupy", cupy.get_default_memory_pool()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = current_rss_bytes()
            if rss is not None and rss > self.peak_rss:
                self.peak_rss = rss
            if self._kind == "cupy":
                self.device_peak = max(self.device_peak, self._dev.total_bytes())

    def __enter__(self) -> PeakMemory:
        self._kind, self._dev = self._device()
        self.device_peak = 0
        if self._kind == "torch":
            self._dev.cuda.synchronize()
            self._dev.cuda.reset_peak_memory_stats()
        self.start_rss = current_rss_bytes()
        self.peak_rss = self.start_rss or 0
        self.start_maxrss = peak_host_memory_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        rss = current_rss_bytes()
        if rss is not None:
            self.peak_rss = max(self.peak_rss, rss)
        maxrss = peak_host_memory_bytes()
        if maxrss > self.start_maxrss or self.start_rss is None:
            self.peak_rss = max(self.peak_rss, maxrss)
        if self._kind == "torch":
            self._dev.cuda.synchronize()
            self.device_peak = int(self._dev.cuda.max_memory_allocated())
        elif self._kind == "cupy":
            self.device_peak = max(self.device_peak, self._dev.total_bytes())

    def as_dict(self) -> dict[str, int | None]:
        """Peak RSS, its rise over the RSS at the start, and the device peak (None on CPU)."""
        base = self.start_rss if self.start_rss is not None else self.start_maxrss
        return {"host_bytes": int(self.peak_rss),
                "host_delta_bytes": int(max(self.peak_rss - base, 0)),
                "device_bytes": int(self.device_peak) if self._kind else None}
