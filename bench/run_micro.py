"""Run the micro-benchmark suites (bench/bench_ops_*.py) and keep their JSON.

    python bench/run_micro.py       # real sizes -> results/micro/<UTC stamp>-default.json
    python bench/run_micro.py --size tiny        # the smoke test's sizes, seconds in all
    python bench/run_micro.py -- -k sampled_dot  # extra pytest arguments after --

pytest-benchmark times every op on every usable backend (NumPy, PyTorch-CPU; CuPy and
PyTorch-CUDA where a GPU is usable) with warm-up on and at least --min-rounds rounds, one
thread per library. Its JSON (machine_info names the CPU, commit_info the revision) is
written to a temporary file and then linked into place, never over an existing file.
A short table of medians follows, with GFLOP/s and GB/s where the op records its counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = sorted((ROOT / "bench").glob("bench_ops_*.py"))


def claim(tmp: Path, out_dir: Path, stem: str) -> Path:
    """Link ``tmp`` to ``<stem>.json`` (or ``<stem>-2.json``, ...) without overwriting."""
    for n in range(1, 100):
        final = out_dir / (f"{stem}.json" if n == 1 else f"{stem}-{n}.json")
        try:
            os.link(tmp, final)  # fails if the name is taken, unlike rename
        except FileExistsError:
            continue
        tmp.unlink()
        return final
    raise FileExistsError(f"no free name for {stem} in {out_dir}")


def table(report: dict) -> str:
    rows = [("benchmark", "library", "median ms", "IQR ms", "rounds", "GFLOP/s", "GB/s")]
    for b in sorted(report["benchmarks"], key=lambda b: (b["group"] or "", b["name"])):
        st, x = b["stats"], b["extra_info"]
        med = st["median"]
        rows.append((
            b["name"], x.get("library", ""), f"{med * 1e3:.3f}", f"{st['iqr'] * 1e3:.3f}",
            str(st["rounds"]),
            f"{x['flops'] / med / 1e9:.2f}" if x.get("flops") else "",
            f"{x['bytes'] / med / 1e9:.2f}" if x.get("bytes") else "",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))) for r in rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("default", "tiny"), default="default",
                    help="problem sizes (KMREC_MICRO_SIZE for the suites; default: default)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "micro",
                    help="folder for the JSON (default: results/micro)")
    ap.add_argument("--min-rounds", type=int, default=5,
                    help="pytest-benchmark's --benchmark-min-rounds (default: 5)")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    a = ap.parse_args(argv)

    a.out.mkdir(parents=True, exist_ok=True)
    stem = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{a.size}"
    fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part", dir=a.out)
    os.close(fd)
    tmp = Path(name)
    cmd = [sys.executable, "-m", "pytest", *map(str, SUITES), "-p", "no:cacheprovider",
           f"--benchmark-json={tmp}", "--benchmark-warmup=on",
           f"--benchmark-min-rounds={a.min_rounds}",
           "--benchmark-columns=min,median,iqr,rounds", *a.pytest_args]
    print("+", " ".join(cmd), flush=True)
    try:
        rc = subprocess.call(cmd, cwd=ROOT, env=dict(os.environ, KMREC_MICRO_SIZE=a.size))
        if rc != 0 or tmp.stat().st_size == 0:
            print(f"pytest exited with {rc}; no results kept", file=sys.stderr)
            return rc or 1
        report = json.loads(tmp.read_text())
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp's 0600 is for the half-written file only
        final = claim(tmp, a.out, stem)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"\nJSON: {final}\n\n{table(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
