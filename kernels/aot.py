"""Every Triton kernel specialization compiled ahead of time for real GPUs, without one.

Triton compiles to PTX and then to cubin (with the ``ptxas`` it ships) for any target it is
told of; only loading the cubin needs a device. So on a CPU-only machine this compiles
each specialization the launchers can select (their own ``specializations()``, built from
the same ``launch_meta`` they launch with) for sm_80 (A100), sm_89 (L4, RTX 4090) and
sm_90 (H100, H200), and checks what a device would check at load time: shared memory
against the target's per-block limit. It records registers and spill stack (from the
cubin, with the ``cuobjdump`` Triton ships) and the matrix instructions of the PTX.

Run in a process where ``TRITON_INTERPRET`` is unset before ``triton`` is imported (the
tests' own processes interpret kernels): ``python -m kernels.aot``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

# Triton 3.9 warns once per process when this is unset; its current default is kept
os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")


@dataclass(frozen=True)
class Target:
    name: str
    arch: int
    shared_limit: int  # bytes of shared memory one block may use (opt-in maximum)
    devices: str


# CUDA C Programming Guide, "Technical Specifications per Compute Capability"
TARGETS = (Target("sm_80", 80, 163 * 1024, "A100"),
           Target("sm_89", 89, 99 * 1024, "L4, RTX 4090"),
           Target("sm_90", 90, 227 * 1024, "H100, H200"))


@dataclass(frozen=True)
class Spec:
    kernel: str  # module:function
    signature: tuple[tuple[str, str], ...]
    constexprs: tuple[tuple[str, object], ...]

    @property
    def label(self) -> str:
        ptrs = sorted({t for n, t in self.signature if n in ("x_ptr", "a_ptr", "rows_ptr")})
        flags = ", ".join(f"{k}={v}" for k, v in self.constexprs)
        return f"{' '.join(ptrs)} {flags}"


def specializations() -> list[Spec]:
    """Every specialization of every kernel, from the launchers' own rules."""
    from kernels import triton_kmeans, triton_sddmm

    out = []
    for mod, fn in ((triton_kmeans, "_assign_kernel"), (triton_sddmm, "_sddmm_kernel")):
        for sig, meta in mod.specializations():
            out.append(Spec(f"{mod.__name__.split('.')[-1]}:{fn}", tuple(sig.items()),
                            tuple(meta.items())))
    return out


def _kernel(name: str):
    import importlib

    mod, fn = name.split(":")
    return getattr(importlib.import_module(f"kernels.{mod}"), fn)


def _resources(cubin: bytes) -> dict:
    import triton

    tool = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin",
                        "cuobjdump")
    if not os.path.isfile(tool):
        return {}
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([tool, "--dump-resource-usage", f.name], capture_output=True,
                              text=True, check=False).stdout
    m = re.search(r"REG:(\d+) STACK:(\d+)", text)
    return {"registers": int(m[1]), "stack": int(m[2])} if m else {}


def _mma(ptx: str) -> str:
    """The matrix instructions of the PTX: tensor-core MMA shapes and types, or none."""
    kinds = sorted(set(re.findall(r"\b(w?g?mma)\.[\w.]*?\.(m\d+n\d+k\d+)\.[\w.]*?\.(f64|f32|"
                                  r"f16|bf16|tf32)", ptx)))
    return ", ".join(f"{op} {shape} {ty}" for op, shape, ty in kinds) or "none"


def compile_one(spec: Spec, target: Target) -> dict:
    """One specialization for one target: its shared memory against the limit, registers,
    spill stack and MMA use; ``error`` when Triton or ptxas refuses it."""
    if "triton" in sys.modules and os.environ.get("TRITON_INTERPRET"):
        raise RuntimeError("kernels.aot needs a process where TRITON_INTERPRET is unset")
    os.environ.pop("TRITON_INTERPRET", None)
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    row = {"kernel": spec.kernel, "spec": spec.label, "target": target.name,
           "limit": target.shared_limit}
    try:
        src = ASTSource(fn=_kernel(spec.kernel), signature=dict(spec.signature),
                        constexprs=dict(spec.constexprs))
        k = triton.compile(src, target=GPUTarget("cuda", target.arch, 32))
    except Exception as e:  # a compile error is the finding, reported with the spec
        row["error"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
        return row
    shared = int(k.metadata.shared)
    row.update(shared=shared, mma=_mma(k.asm["ptx"]), **_resources(k.asm["cubin"]))
    if shared > target.shared_limit:
        row["error"] = (f"needs {shared:,} bytes of shared memory; {target.name} "
                        f"({target.devices}) allows {target.shared_limit:,} per block")
    return row


def _job(args: tuple[Spec, Target]) -> dict:
    return compile_one(*args)


def report_progress(done: int, total: int) -> None:
    """A line on stderr every 50 compiles and at the end (a cold compile takes minutes)."""
    if done % 50 == 0 or done == total:
        print(f"aot: {done}/{total} compiled", file=sys.stderr, flush=True)


def compile_all(specs: list[Spec] | None = None, targets=TARGETS, jobs: int = 1,
                progress=None) -> list[dict]:
    """Every (specialization, target), in that order; ``jobs`` processes compile."""
    work = [(s, t) for s in (specializations() if specs is None else specs) for t in targets]
    if jobs <= 1:
        rows = []
        for w in work:
            rows.append(_job(w))
            if progress:
                progress(len(rows), len(work))
        return rows
    env_interp = os.environ.pop("TRITON_INTERPRET", None)  # the workers inherit it
    try:
        with ProcessPoolExecutor(jobs) as pool:
            rows = []
            for r in pool.map(_job, work, chunksize=4):
                rows.append(r)
                if progress:
                    progress(len(rows), len(work))
            return rows
    finally:
        if env_interp is not None:
            os.environ["TRITON_INTERPRET"] = env_interp


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kernels.aot", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)

    rows = compile_all(jobs=args.jobs, progress=report_progress)
    bad = [r for r in rows if "error" in r]
    for r in bad:
        print(f"FAILED {r['kernel']} [{r['spec']}] on {r['target']}: {r['error']}")
    print(f"aot: {len(rows) - len(bad)} of {len(rows)} specializations compiled within "
          f"their target's limits ({', '.join(t.name for t in TARGETS)})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
