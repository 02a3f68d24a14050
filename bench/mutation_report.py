"""Per-module mutation score of the result-critical modules, from mutmut's last run.

    make mutate                      # mutmut run, then this script
    python bench/mutation_report.py  # this script alone, over mutants/ as mutmut left it

mutmut (configured in pyproject.toml's [tool.mutmut]) writes one ``mutants/<file>.meta``
per mutated file: the exit code of the tests against each mutant. This script counts them
per module, sets aside the mutants declared equivalent in tests/mutation_equivalent.yaml
(each with the reason no test can tell it from the original), appends one row per run to
results/mutation.jsonl and renders results/mutation.md: the score per module of every
run so far, the goal (at least 90% of non-equivalent mutants killed per module), and each
surviving mutant, equivalent or not, with its change.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.90
# mutmut's exit-code meanings (mutmut.__main__.status_by_exit_code, mutmut 3.8)
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests",
          34: "skipped", 35: "suspicious", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", 37: "killed", -11: "segfault", -9: "segfault"}


def statuses(mutants: Path) -> dict[str, dict[str, str]]:
    """{module file: {mutant name: status}} from mutmut's .meta files."""
    out: dict[str, dict[str, str]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants))[: -len(".meta")]
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        out[module] = {name: STATUS.get(code, "not checked" if code is None else str(code))
                       for name, code in codes.items()}
    return out


def load_equivalents(path: Path) -> dict[str, str]:
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    data = data or {}
    if not isinstance(data, dict) or not all(isinstance(v, str) and v.strip()
                                             for v in data.values()):
        raise SystemExit(f"{path}: expected a mapping of mutant name -> reason (text)")
    return data


DETECTED = ("killed", "timeout", "segfault")  # a test failed, or the mutant hung or crashed


def score(by_mutant: dict[str, str], equivalent: dict[str, str]) -> dict[str, Any]:
    """Counts per status; the score is detected / (mutants - equivalent survivors)."""
    counts = Counter(by_mutant.values())
    eq = [m for m in by_mutant if m in equivalent and by_mutant[m] not in DETECTED]
    judged = len(by_mutant) - len(eq)
    detected = sum(counts[s] for s in DETECTED)
    return {"mutants": len(by_mutant), "killed": counts["killed"],
            "timeout": counts["timeout"] + counts["segfault"],
            "survived": counts["survived"], "no_tests": counts["no tests"],
            "other": len(by_mutant) - detected - counts["survived"] - counts["no tests"],
            "equivalent": len(eq), "score": detected / judged if judged else 1.0}


def diff_of(name: str, module: str) -> str:
    """The changed lines of one mutant (what ``mutmut show`` prints), as one line."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name, path=module)  # reads mutants/<module>, from ROOT
    lines = [ln for ln in diff.splitlines()
             if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return " / ".join(ln.strip() for ln in lines)[:300] or "(no diff shown)"


def git_revision() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()


def render(history: list[dict], survivors: list[tuple[str, str, str, str]]) -> str:
    last = history[-1]
    lines = ["# Mutation testing of the result-critical modules", "",
             "Command: `make mutate` (`mutmut run`, configured in pyproject.toml's "
             "[tool.mutmut], then `python bench/mutation_report.py`). Score: (killed + "
             "timed out or crashed) / (mutants - survivors declared equivalent in "
             "tests/mutation_equivalent.yaml, each with its reason); 'no tests': no test "
             "of the selection calls the function; 'other': mutmut could not tell "
             f"(suspicious). Goal: at least {GOAL:.0%} per module. Rows: "
             "results/mutation.jsonl.", ""]
    for run in history:
        lines += [f"## Run of {run['time']} (git {run['git'][:12]}, {run['device']})", "",
                  "| module | mutants | killed | timed out or crashed | survived | no tests "
                  "| other | equivalent | score |", "|---|---|---|---|---|---|---|---|---|"]
        for module, s in run["modules"].items():
            mark = "" if s["score"] >= GOAL else " (below goal)"
            lines.append(f"| `{module}` | {s['mutants']} | {s['killed']} | {s['timeout']} "
                         f"| {s['survived']} | {s['no_tests']} | {s['other']} | "
                         f"{s['equivalent']} | {s['score']:.1%}{mark} |")
        lines.append("")
    lines += [f"## Mutants not killed in the last run ({last['time']})", "",
              "| mutant | status | change | equivalent because |", "|---|---|---|---|"]
    for name, status, change, why in survivors:
        change = change.replace("|", "\\|")
        lines.append(f"| `{name}` | {status} | `{change}` | {why or '**not equivalent**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", type=Path, default=ROOT / "mutants")
    ap.add_argument("--equivalent", type=Path, default=ROOT / "tests" / "mutation_equivalent.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "mutation.jsonl")
    ap.add_argument("--md", type=Path, default=ROOT / "results" / "mutation.md")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the view from the stored rows and mutmut's last results "
                         "(after an edit to the equivalents' reasons), appending no row")
    args = ap.parse_args(argv)
    from kmrec_gpu.environment import cpu_name
    from kmrec_gpu.results import write_atomic

    os.chdir(ROOT)  # mutmut's helpers read mutants/ and pyproject.toml from here
    by_module = statuses(args.mutants)
    if not by_module:
        raise SystemExit(f"no mutmut results under {args.mutants}: run `mutmut run` first")
    equivalent = load_equivalents(args.equivalent)
    known = {m for ms in by_module.values() for m in ms}
    stale = sorted(set(equivalent) - known)
    if stale:
        print(f"note: {len(stale)} declared equivalents are not among this run's mutants "
              f"(their function changed?): {', '.join(stale[:5])}", file=sys.stderr)
    row = {"time": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
           "git": git_revision(), "device": cpu_name(),
           "modules": {m: score(ms, equivalent) for m, ms in by_module.items()}}
    # mutants never run are counted, not listed: their change says nothing yet
    survivors = [(name, status, diff_of(name, module), equivalent.get(name, ""))
                 for module, ms in by_module.items() for name, status in ms.items()
                 if status not in DETECTED and status != "not checked"]
    stored = ([json.loads(ln) for ln in args.out.read_text().splitlines() if ln.strip()]
              if args.out.exists() else [])
    if args.render_only:
        if not stored:
            raise SystemExit(f"no stored rows in {args.out} to render")
        write_atomic(args.md, render(stored, survivors))
        print(f"{args.md} rewritten from {args.out}")
        return 0
    text = render(stored + [row], survivors)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:  # append-only: every run's scores stay
        f.write(json.dumps(row) + "\n")
    write_atomic(args.md, text)
    for module, s in row["modules"].items():
        print(f"{module}: {s['killed'] + s['timeout']}/{s['mutants']} detected, "
              f"{s['equivalent']} equivalent,"
              f" score {s['score']:.1%}")
    print(f"rows appended to {args.out}; view in {args.md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
