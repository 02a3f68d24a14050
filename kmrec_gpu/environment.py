"""What a result depends on besides its inputs: library versions, code revision, machine."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import subprocess
from pathlib import Path

_LIBS = ("numpy", "scipy", "pandas", "scikit-learn", "torch", "array-api-compat",
         "hydra-core", "triton", "cupy-cuda12x", "cuml-cu12", "scikit-surprise")


@functools.cache
def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in ("kmrec-gpu", *_LIBS):
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


@functools.cache
def git_revision(root: Path | None = None) -> str:
    """HEAD's commit, with ``-dirty`` when tracked files other than stored results differ
    from it: rows appended to a committed ``results/`` file are data, not code, and must
    not make the next run's rows unattributable. Taken once per process (the code it
    names is the code the process loaded)."""
    root = root or Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        # an installed package: a repository around site-packages (a virtual environment
        # inside a checkout) is not the code that runs
        return "unknown"
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)results"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("-dirty" if dirty.strip() else "")


@functools.cache
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_host_memory_bytes() -> int:
    """Peak resident set size of this process so far."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)
