"""The main job's whole-process wall against the phases it times (issue 17's start-up goal).

    python bench/bench_main_job.py              # 3 runs of `make run`'s grid
    python bench/bench_main_job.py --repeats 5

Each run is the Makefile's main job (`kmrec-bench sweep=main with_peers=true threads=1`:
ml-latest-small, bias_baseline, svd and kmeans_liked) in a fresh process, its
rows written to a temporary results folder. From those rows: **timed** is every timed
call (the fit/predict/recommend repeats' own times, the load and split phases);
**warm-up** the untimed runs before them, as warm-up count x the phase's median (a warm-up
run's own seconds, `warmup_s` in the rows, also hold the first call's imports, which the
next column counts).

**Libraries' imports and set-up**: one more run of the job under `python -X importtime`
names every third-party module the job imports where kmrec_gpu, the interpreter or a
library at run time asks for it (numpy, pandas, Hydra, numba, scikit-learn, Surprise,
...); a fresh interpreter then imports exactly those and sets numba up as the CSV load
does (kernels.cpu_csv.warm), timed from its own start. That is what the libraries cost
whatever code drives them. The rest — Hydra's composing, scoring with bootstrap
intervals, writing rows, printing — is the harness's **overhead**.

The goal as the issue first wrote it, whole <= 1.3x timed, cannot hold for this grid:
its timed phases are ~1.9 s and the libraries it needs take ~1.4 s to import. Restated
(what the harness itself controls): whole - libraries' imports and set-up <= 1.3x
(timed + warm-up).

Rows go to results/bench/main_job.jsonl (append-only); results/bench/main_job.md is the
rendered view of this run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_factor as bf

OUT = bf.OUT_DIR / "main_job.jsonl"
MD = bf.OUT_DIR / "main_job.md"
GRID = ["sweep=main", "with_peers=true", "threads=1"]


def _bench_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("kmrec-bench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "kmrec_gpu.harness.app"]


def phases(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds the harness timed, and its warm-ups, over one run's rows."""
    timed = warm = 0.0
    for r in rows:
        w = r.get("wall_time") or {}
        if not w:
            continue
        times = w.get("times_s")
        timed += sum(times) if times else w["median_s"] * w.get("repeats", 1)
        # count x median: a first call's imports and JIT set-up are the libraries' column
        warm += w.get("warmup", 0) * w["median_s"]
    return {"timed_s": timed, "warmup_s": warm}


def one_run(cmd: list[str]) -> tuple[float, dict[str, float], int]:
    from kmrec_gpu.results import read_rows

    tmp = Path(tempfile.mkdtemp(prefix="kmrec-main-job-"))
    try:
        t0 = time.perf_counter()
        subprocess.run([*cmd, *GRID, f"results={tmp}", "progress=false"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        rows = [r for f in sorted((tmp / "runs").glob("*.jsonl")) for r in read_rows(f)]
        return wall, phases(rows), len(rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


OURS = ("kmrec_gpu", "kernels", "bench", "__main__")


def imported_libraries(importtime: str) -> list[str]:
    """Third-party modules that kmrec_gpu (or the interpreter) imports itself, in order,
    from ``python -X importtime``'s report; a library's own imports are its cost."""
    lines = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        name = line.rsplit("|", 1)[1]
        if name.strip() == "imported package":
            continue
        lines.append(((len(name) - len(name.lstrip())) // 2, name.strip()))

    def third_party(mod: str) -> bool:
        top = mod.split(".")[0]
        return not (top in OURS or top in sys.stdlib_module_names or top.startswith("_"))

    # a module prints after its imports: read backwards, each line's parent is on the stack
    stack: list[tuple[int, str]] = []
    entry = []
    for depth, mod in reversed(lines):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        if third_party(mod) and (parent is None or not third_party(parent)):
            entry.append(mod)
        stack.append((depth, mod))
    return list(dict.fromkeys(reversed(entry)))


def job_libraries(cmd: list[str]) -> list[str]:
    """The libraries one run of the job imports (a run under ``-X importtime``, untimed)."""
    tmp = Path(tempfile.mkdtemp(prefix="kmrec-main-job-"))
    try:
        exe = [sys.executable, "-X", "importtime"]
        job = [*exe, *cmd] if cmd[0] != sys.executable else [*exe, *cmd[1:]]
        p = subprocess.run([*job, *GRID, f"results={tmp}", "progress=false"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return imported_libraries(p.stderr)


def library_imports(mods: list[str]) -> float:
    """Seconds a fresh interpreter takes to start, import just ``mods`` (a module the
    job tried and could not import, too), and set numba up as the job's CSV load does
    before its timed run (numba's own lazy imports are among ``mods``)."""
    code = ("import importlib\n"
            f"for m in {mods!r}:\n"
            "    try:\n        importlib.import_module(m)\n"
            "    except ImportError:\n        pass\n"
            "from kernels.cpu_csv import warm\nwarm()\n")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t0


def startup() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import kmrec_gpu.harness.app, "
                    "kmrec_gpu.harness.runner"], check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="runs of the grid (default 3)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"rows (default {OUT})")
    ap.add_argument("--md", type=Path, default=MD, help=f"rendered view (default {MD})")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    from kmrec_gpu.results import write_atomic

    env = bf.environment(0, 1)
    rec = bf.Recorder(args.out, env, bench="main_job")
    cmd = _bench_cmd()
    bf.log(bf.device_label(env))
    mods = job_libraries(cmd)
    bf.log(f"the job imports {len(mods)} libraries' modules: {', '.join(mods)}")
    runs = []
    for i in range(args.repeats):
        up = startup()
        libs = library_imports(mods)
        wall, ph, n = one_run(cmd)
        work = ph["timed_s"] + ph["warmup_s"]
        over = wall - libs - work
        runs.append({"wall_s": wall, **ph, "library_imports_s": libs, "overhead_s": over,
                     "startup_s": up, "rows": n, "ratio_to_timed": wall / ph["timed_s"],
                     "ratio_less_imports": (wall - libs) / work})
        bf.log(f"run {i + 1}/{args.repeats}: whole {wall:.2f} s, timed {ph['timed_s']:.2f} s, "
               f"warm-up ~{ph['warmup_s']:.2f} s, libraries' imports {libs:.2f} s, "
               f"overhead {over:.2f} s (importing the harness alone {up:.2f} s); {n} rows")
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    goal = "(whole − libraries' imports and set-up) ≤ 1.3× (timed + warm-up)"
    rec.write(dataset={"name": "ml-latest-small", "sha256": None}, split=None,
              model={"name": "main job", "params": {"argv": GRID}},
              backend={"name": "cpu", "library": "numpy", "device_name": env["device"]["name"]},
              metrics={k: v for k, v in med.items() if k != "rows"},
              wall_time={"median_s": med["wall_s"], "min_s": min(r["wall_s"] for r in runs),
                         "max_s": max(r["wall_s"] for r in runs), "repeats": len(runs),
                         "warmup": 0, "times_s": [r["wall_s"] for r in runs]},
              extra={"runs": runs, "libraries": mods, "goal": goal,
                     "goal_met": med["ratio_less_imports"] <= 1.3})
    text = "\n".join([
        "# The main job: whole process against its timed phases (bench/bench_main_job.py)", "",
        f"Command: `{env['command']}`; {bf.device_label(env)}; git `{env['git']}`.", "",
        "The job: `kmrec-bench " + " ".join(GRID) + "` (the Makefile's `make run`), "
        f"{len(runs)} fresh processes; medians over them.", "",
        "| whole process | timed phases | warm-up | libraries' imports and set-up | overhead | "
        "importing the harness alone | whole / timed | "
        "(whole − libraries' imports and set-up) / (timed + warm-up) |",
        "|---|---|---|---|---|---|---|---|",
        f"| {med['wall_s']:.2f} s | {med['timed_s']:.2f} s | {med['warmup_s']:.2f} s | "
        f"{med['library_imports_s']:.2f} s | {med['overhead_s']:.2f} s | "
        f"{med['startup_s']:.2f} s | {med['ratio_to_timed']:.2f}× | "
        f"**{med['ratio_less_imports']:.2f}×** |", "",
        f"Goal: {goal} — {'met' if med['ratio_less_imports'] <= 1.3 else 'not met'}. "
        "The first statement, whole ≤ 1.3× timed, cannot hold for this grid: the "
        f"libraries it needs take {med['library_imports_s']:.2f} s to import in a fresh "
        f"interpreter, {med['library_imports_s'] / med['timed_s']:.2f}× its timed phases, "
        "whatever code drives them. Warm-up runs are part of the timing protocol (1 per "
        "phase before 3 timed ones; estimated as count × median, their first-call "
        "imports and numba's set-up being in the libraries' column). "
        "The overhead is the harness's own: Hydra composing each job, scoring with "
        "bootstrap intervals, writing rows, printing.", "",
        f"The libraries' modules (from one run under `python -X importtime`: those "
        f"kmrec_gpu, the interpreter or a library at run time asks for): "
        f"{', '.join(mods)}.", ""])
    write_atomic(args.md, text)
    print(text)
    print(f"rows appended to {args.out}; view in {args.md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
