"""One prepared check for the first minutes of a lent CUDA GPU (``make gpu-check``).

    python bench/gpu_check.py            # the whole check, at most --budget seconds
    python bench/gpu_check.py --dry-run  # the steps it would run, and nothing else

Everything the project runs on CUDA has so far run only on CPUs (Triton interpreted, CuPy
and PyTorch-CUDA paths skipped). In one budget (8 minutes by default) this runs, in order
of what a first GPU should answer: the CUDA wheels the run needs when the environment has
none (timed), the kernel tests compiled on the device, the CUDA backend tests, the CPU
against GPU sweep on ml-100k and ml-latest-small, the kernel benchmark (quick) and cuML's
peers when cuML imports. Each step's exit status, seconds and last lines go to
``results/gpu_check/<UTC>-<device>.md`` (the sweep and benchmark write their own rows).
Without a CUDA GPU it says so and exits 0, writing nothing.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 480
# the CUDA builds the run needs: torch at the project's pin (the package index's Linux wheel
# is the CUDA build) in place of a CPU-only one, and CuPy for the CuPy backend
CUDA_WHEELS = ("torch==2.13.0", "cupy-cuda12x>=13")


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    share: float  # of the budget left when it starts, at most
    env: tuple[tuple[str, str], ...] = ()


def steps(py: str = sys.executable) -> list[Step]:
    """The check's steps, in order (each under a share of the time then left)."""
    pytest = (py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider")
    bench = (str(Path(py).parent / "kmrec-bench"),)
    return [
        Step("kernel tests on CUDA", (*pytest, "tests/test_kernel_triton_kmeans.py",
                                      "tests/test_kernel_triton_sddmm.py",
                                      "tests/test_kernel_dispatch.py"), 0.25),
        Step("CUDA backend tests", (*pytest, "-k", "cuda", "tests/test_backends.py",
                                    "tests/test_kmeans.py", "tests/test_factor.py"), 0.3),
        Step("kmrec-bench sweep=cpu_vs_gpu", (*bench, "sweep=cpu_vs_gpu", "threads=1",
                                              "timing.warmup=1", "timing.repeats=3"), 0.5),
        Step("kernel benchmark (quick)", (py, "bench/bench_triton.py", "--quick"), 0.6),
        Step("cuML peers", (*bench, "-m", "model=cuml_kmeans_liked",
                            "dataset=ml-100k,ml-latest-small", "backend=cuda", "threads=1"),
             1.0),
    ]


def cuda_device() -> tuple[str | None, str]:
    """(device name, how it was found) or (None, why there is none)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0), f"torch {torch.__version__}"
        why = f"torch {torch.__version__} sees no CUDA device"
    except ImportError:
        why = "torch is not installed"
    smi = shutil.which("nvidia-smi")
    if smi:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False).stdout
        m = re.search(r"GPU 0: (.+?) \(", out)
        if m:
            return m[1], f"nvidia-smi ({why})"
    return None, f"{why}; no nvidia-smi lists a GPU"


def _tail(text: str, n: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def run_step(step: Step, limit: float) -> dict:
    t0 = time.monotonic()
    env = {**os.environ, **dict(step.env)}
    env.pop("TRITON_INTERPRET", None)  # compiled kernels on the device
    print(f"gpu-check: {step.name} (at most {limit:.0f} s)", flush=True)
    try:
        p = subprocess.run(step.argv, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=max(1.0, limit), check=False)
        rc, out = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out = 124, f"{e.stdout or ''}{e.stderr or ''}\n(stopped at its {limit:.0f} s share)"
        out = out if isinstance(out, str) else out.decode(errors="replace")
    return {"step": step.name, "command": " ".join(step.argv), "rc": rc,
            "seconds": round(time.monotonic() - t0, 1), "tail": _tail(out)}


def install_cuda_wheels(limit: float) -> dict:
    """The CUDA builds the check needs, when the environment has a CPU-only torch."""
    argv = (sys.executable, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps",
            "--no-cache-dir", *CUDA_WHEELS)
    return run_step(Step("install CUDA wheels", argv, 1.0), limit)


def write_summary(device: str, found: str, results: list[dict], out_dir: Path) -> Path:
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stamp}-{re.sub(r'[^A-Za-z0-9]+', '-', device).strip('-')}.md"
    lines = [f"# gpu-check on {device}", "", f"Found by {found}; `python bench/gpu_check.py`, "
             f"{stamp}.", "", "| step | exit | seconds |", "|---|---|---|"]
    lines += [f"| {r['step']} | {r['rc']} | {r['seconds']} |" for r in results]
    for r in results:
        lines += ["", f"## {r['step']}", "", f"`{r['command']}`", "", "```", r["tail"], "```"]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for everything")
    ap.add_argument("--dry-run", action="store_true", help="list the steps and stop")
    ap.add_argument("--out", default=str(ROOT / "results" / "gpu_check"))
    args = ap.parse_args(argv)
    if args.dry_run:
        for s in steps():
            print(f"{s.name}: {' '.join(s.argv)}")
        return 0
    device, found = cuda_device()
    if device is None:
        print(f"gpu-check: no CUDA GPU here ({found}); nothing to check. On a CUDA machine "
              "`make gpu-check` runs the kernel and CUDA tests, the CPU against GPU sweep and "
              "the kernel benchmark in about 8 minutes.")
        return 0
    t_end = time.monotonic() + args.budget
    results = []
    if not found.startswith("torch"):  # a GPU that this environment's torch cannot use
        results.append(install_cuda_wheels(t_end - time.monotonic()))
        if results[-1]["rc"] != 0:
            print("gpu-check: the CUDA wheels did not install; see the summary")
    import importlib.util

    for s in steps():
        left = t_end - time.monotonic()
        if s.name == "cuML peers" and importlib.util.find_spec("cuml") is None:
            results.append({"step": s.name, "command": " ".join(s.argv), "rc": "not run",
                            "seconds": 0, "tail": "cuML is not installed (the gpu extra)"})
            continue
        if left < 5:
            results.append({"step": s.name, "command": " ".join(s.argv), "rc": "not run",
                            "seconds": 0, "tail": "the budget was spent"})
            continue
        results.append(run_step(s, left * s.share))
    path = write_summary(device, found, results, Path(args.out))
    failed = [r["step"] for r in results if r["rc"] not in (0, "not run")]
    print(f"gpu-check: {len(results)} steps on {device}; summary in {path}"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
