"""The ahead-of-time compilation table: every Triton kernel specialization the launchers can
select, compiled for sm_80, sm_89 and sm_90 without a GPU (``kernels/aot.py``), with its
shared memory against the target's limit, registers, spill stack and MMA instructions.

Appends one row per run to ``results/kernels/aot.jsonl`` and writes
``results/kernels/aot.md`` from it. Exits 1 if any specialization fails to compile or
exceeds its target's shared memory.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import json
import os
import sys
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)  # before anything imports triton

ROOT = Path(__file__).resolve().parents[1]

from kernels import aot

COMMAND = "python bench/kernels_aot.py"


def _summary(rows: list[dict]) -> list[str]:
    """One line per (kernel, dtype group, target): the worst case over its specializations."""
    groups: dict[tuple, list[dict]] = collections.defaultdict(list)
    for r in rows:
        groups[(r["kernel"], r["spec"].split(" BLOCK")[0], r["target"])].append(r)
    out = ["| kernel | pointer types | target | specializations | failed | max shared (limit) "
           "| max registers | spill stack | MMA in PTX |", "|---|---|---|---|---|---|---|---|---|"]
    for (kernel, types, target), rs in sorted(groups.items()):
        ok = [r for r in rs if "shared" in r]
        share = max((r["shared"] for r in ok), default=0)
        regs = max((r.get("registers", 0) for r in ok), default=0)
        spill = max((r.get("stack", 0) for r in ok), default=0)
        mma = sorted({r["mma"] for r in ok})
        out.append(f"| `{kernel.split(':')[1]}` | {types} | {target} | {len(rs)} | "
                   f"{sum('error' in r for r in rs)} | {share / 1024:.0f} KB "
                   f"({rs[0]['limit'] / 1024:.0f} KB) | {regs} | {spill} B | "
                   f"{'; '.join(mma)} |")
    return out


def write_md(run: dict, path: Path) -> None:
    rows = run["rows"]
    bad = [r for r in rows if "error" in r]
    spills = sorted({(r["kernel"].split(":")[1], r["spec"]) for r in rows if r.get("stack")})
    lines = [
        "# Triton kernels compiled ahead of time",
        "",
        f"Made by `{COMMAND}` on {run['time']} at revision {run['git'][:12]} (Triton "
        f"{run['triton']}, on {run['host']}, no GPU): every specialization the launchers "
        "can select (`specializations()` in `kernels/triton_*.py`, from the `launch_meta` "
        "they launch with), compiled to cubin for each target. Shared memory is checked "
        "against the target's per-block limit; registers and spill stack are read from the "
        "cubin (`cuobjdump --dump-resource-usage`); MMA lists the tensor-core instructions "
        "of the PTX. The same compile runs in CI (`tests/test_kernels_aot.py`).",
        "",
        f"**{len(rows) - len(bad)} of {len(rows)} compiled within their target's limits.**",
        "",
        *_summary(rows),
        "",
    ]
    if bad:
        lines += ["## Failed", ""] + [f"- `{r['kernel']}` [{r['spec']}] on {r['target']}: "
                                      f"{r['error']}" for r in bad] + [""]
    if spills:
        lines += ["## Specializations that spill registers to the stack", "",
                  "Local-memory spills are correct but slow; which block sizes avoid them is a "
                  "question for a timed run on a GPU (`make gpu-check` when one is lent).", ""]
        lines += [f"- `{k}` [{s}]" for k, s in spills[:40]]
        if len(spills) > 40:
            lines.append(f"- and {len(spills) - 40} more (in `aot.jsonl`)")
        lines.append("")
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "results" / "kernels"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    import platform

    import triton

    from kmrec_gpu.environment import cpu_name, git_revision

    rows = aot.compile_all(jobs=args.jobs, progress=aot.report_progress)
    run = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "git": git_revision(), "triton": triton.__version__,
           "host": f"{cpu_name()} ({platform.machine()})", "command": COMMAND,
           "targets": [t.__dict__ for t in aot.TARGETS], "rows": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "aot.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(run, sort_keys=True) + "\n")
    write_md(run, out / "aot.md")
    bad = sum("error" in r for r in rows)
    print(f"aot: {len(rows) - bad} of {len(rows)} within limits; table in {out / 'aot.md'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
