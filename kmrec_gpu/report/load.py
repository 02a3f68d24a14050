"""Collect what the report is drawn from: stored files only, nothing is re-run.

- ``<results>/claims.json`` (validated by :mod:`kmrec_gpu.claims`);
- ``<results>/runs/*.jsonl`` result rows (validated by :func:`kmrec_gpu.results.scan_lines`:
  a malformed line is skipped and reported with its file and line, never fatal);
- ``<results>/bench/factor.jsonl`` (result rows) and ``<results>/bench/kmeans.jsonl``
  (the K-means benchmark's own records, written before the row schema covered it, then
  result rows whose ``extra`` holds the same record: :func:`kmeans_record` reads both).

Each row is copied with the file it came from under :data:`SOURCE`, so every table can
name its files.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmrec_gpu.claims import load_claims
from kmrec_gpu.errors import KmrecError, SchemaError
from kmrec_gpu.results import BadLine, rows_files, scan_lines, validate_row, warn_bad_lines

SOURCE = "_source"
_ORDER = "_order"


class ResultsNotFound(KmrecError, FileNotFoundError):
    """The results folder to report on does not exist (or is not a folder)."""


@dataclass
class Inputs:
    results_dir: Path
    claims: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)  # newest row per measurement
    factor: list[dict] = field(default_factory=list)
    kmeans: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    n_rows_read: int = 0
    n_superseded: int = 0
    bad_lines: list[BadLine] = field(default_factory=list)  # skipped, each reported once
    interrupted: list[dict] = field(default_factory=list)  # see interrupted_cells

    def shown(self, path: Path) -> str:
        """A file's name as the report prints it: relative to the results folder's parent."""
        return (Path(self.results_dir.name) / path.relative_to(self.results_dir)).as_posix()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def stamp(row: dict[str, Any]) -> str | None:
    """The row's creation time as stored (bench/kmeans.jsonl's ``time`` is a timing in
    some of its records, so only a string counts)."""
    for key in ("created_utc", "time"):
        if isinstance(row.get(key), str):
            return row[key]
    return None


def when(row: dict[str, Any]) -> dt.datetime:
    s = stamp(row)
    if s is None:
        return _EPOCH  # undated: file order decides
    t = dt.datetime.fromisoformat(s)
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def measurement_key(row: dict[str, Any]) -> str:
    """What makes two rows the same measurement (a re-run), whatever their run and time."""
    if "schema_version" not in row:
        return json.dumps([row.get("bench"), row.get("part"), row.get("curve"),
                           row.get("case"), row.get("peer"), row.get("update")],
                          sort_keys=True, default=str)
    e = row.get("extra") or {}
    be = row["backend"]
    return json.dumps([
        row["phase"], row["status"], row["dataset"].get("name"), row["dataset"].get("sha256"),
        row["dataset"].get("n_ratings"), row["split"], row["seed"], row["model"],
        [be.get("name"), be.get("library"), be.get("device_name")],
        {k: e.get(k) for k in ("protocol", "target", "purpose", "harness", "bench", "part",
                               "peer", "algo", "solver", "library")},
    ], sort_keys=True, default=str)


def newest(rows: list[dict]) -> tuple[list[dict], int]:
    """The newest row of each measurement (a re-run supersedes), and how many were dropped."""
    best: dict[str, dict] = {}
    for r in rows:
        k = measurement_key(r)
        if k not in best or (when(r), r[_ORDER]) > (when(best[k]), best[k][_ORDER]):
            best[k] = r
    kept = sorted(best.values(), key=lambda r: r[_ORDER])
    return kept, len(rows) - len(kept)


def _cell(row: dict[str, Any]) -> str:
    e = row.get("extra") or {}
    return json.dumps([row["phase"], row["model"]["name"], row["dataset"].get("name"),
                       row["split"], row["seed"], e.get("protocol"), e.get("target")],
                      sort_keys=True, default=str)


def drop_repeated_runs(rows: list[dict]) -> tuple[list[dict], int]:
    """Leave out the rows of a run that a later run of the same command measured again.

    A repeated run may resolve a parameter differently (an elbow picks another k), so its
    rows are not always the same measurement key; the same command covering every cell of
    the earlier run is what says it is a re-run.
    """
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        runs[(r[SOURCE], r["run_id"])].append(r)
    facts = {k: (rs[0].get("command"), {_cell(r) for r in rs},
                 max((when(r), r[_ORDER]) for r in rs)) for k, rs in runs.items()}
    dropped = {a for a, (cmd, cells, t) in facts.items() if cmd and any(
        b != a and cmd_b == cmd and t_b > t and cells <= cells_b
        for b, (cmd_b, cells_b, t_b) in facts.items())}
    kept = [r for r in rows if (r[SOURCE], r["run_id"]) not in dropped]
    return kept, len(rows) - len(kept)


def _tag(rows: list[dict], shown: str, start: int) -> list[dict]:
    return [{**r, SOURCE: shown, _ORDER: start + i} for i, r in enumerate(rows)]


def _record(rec: Any) -> dict:
    if not isinstance(rec, dict):
        raise SchemaError(f"a record is a JSON object, not {type(rec).__name__}")
    return rec


def kmeans_record(row: dict[str, Any]) -> dict[str, Any] | None:
    """A line of ``bench/kmeans.jsonl`` as the report reads it (the benchmark's own record
    shape), or None for a line of another benchmark. A result row (``bench/bench_kmeans.py``
    since it wrote rows) is validated and its record rebuilt from ``extra`` and the row's
    own provenance fields; a record from before is kept as it is."""
    if "schema_version" not in row:
        return row if row.get("bench") == "kmeans" else None
    validate_row(row)
    e = row.get("extra") or {}
    if e.get("bench") != "kmeans":
        return None
    return {**e, "time": row["created_utc"], "seed": row["seed"], "git": row["git_revision"],
            "command": row.get("command"), "versions": {**row["versions"],
                                                        **(e.get("versions_extra") or {})}}


def load_inputs(results_dir: str | Path) -> Inputs:
    """Every stored file under ``results_dir``. A malformed line (not JSON, not UTF-8, not a
    valid row) is skipped, reported once on stderr with its file and line, and listed in
    :attr:`Inputs.bad_lines`; a results folder that does not exist is an error."""
    root = Path(results_dir)
    if not root.is_dir():
        raise ResultsNotFound(f"results folder {root} "
                              + ("is not a folder" if root.exists() else "does not exist")
                              + ": pass the folder the runs wrote to (--results DIR)")
    inp = Inputs(results_dir=root)
    claims_path = root / "claims.json"
    if claims_path.exists():
        inp.claims = load_claims(claims_path)
        inp.files.append(inp.shown(claims_path))
    order = 0
    runs: list[dict] = []
    for f in rows_files(root / "runs") if (root / "runs").is_dir() else []:
        rows = _tag(_scan(inp, f, validate_row), inp.shown(f), order)
        order += len(rows)
        runs += rows
        inp.files.append(inp.shown(f))
    factor: list[dict] = []
    kmeans: list[dict] = []
    if (f := root / "bench" / "factor.jsonl").exists():
        factor = _tag(_scan(inp, f, validate_row), inp.shown(f), order)
        order += len(factor)
        inp.files.append(inp.shown(f))
    if (f := root / "bench" / "kmeans.jsonl").exists():
        records = _scan(inp, f, lambda r: kmeans_record(_record(r)))
        kmeans = _tag([r for r in records if r is not None], inp.shown(f), order)
        inp.files.append(inp.shown(f))
    warn_bad_lines(inp.bad_lines)
    inp.n_rows_read = len(runs) + len(factor) + len(kmeans)
    inp.interrupted = interrupted_cells(runs)
    runs, d1 = drop_repeated_runs(runs)
    factor, d2 = drop_repeated_runs(factor)
    inp.runs, d3 = newest(runs)
    inp.factor, d4 = newest(factor)
    inp.kmeans, d5 = newest(kmeans)
    inp.n_superseded = d1 + d2 + d3 + d4 + d5
    return inp


def _scan(inp: Inputs, path: Path, parse) -> list:
    good, bad = scan_lines(path, parse)
    inp.bad_lines += bad
    return [r for _, r in good]


def _ends_cell(row: dict[str, Any]) -> bool:
    """Whether the harness writes this row last for a cell: its ``evaluate`` row, or the
    failed or skipped ``end-to-end`` row that says why the cell did not run."""
    return row["phase"] == "evaluate" or (row["phase"] == "end-to-end"
                                          and row["status"] != "ok")


def interrupted_cells(rows: list[dict]) -> list[dict]:
    """Harness cells a run began and never ended: rows with the cell's key in that run
    (load, split, fit, ...) but no ``evaluate`` row and no failed or skipped ``end-to-end``
    row, as a process killed mid-cell leaves them. One dict per (run, cell), with the rows
    it left, its last phase, and whether any run has since stored an ok ``evaluate`` row
    for that cell key."""
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        h = harness(r)
        if h and isinstance(h.get("cell_key"), str):
            cells[(r["run_id"], h["cell_key"])].append(r)
    done = {k for (_, k), rs in cells.items()
            if any(r["phase"] == "evaluate" and r["status"] == "ok" for r in rs)}
    out = []
    for (run_id, key), rs in cells.items():
        if any(_ends_cell(r) for r in rs):
            continue
        last = max(rs, key=lambda r: r.get(_ORDER, 0))
        out.append({"run_id": run_id, "cell_key": key, "harness": harness(last),
                    "row": last, "phases": [r["phase"] for r in rs],
                    "completed_elsewhere": key in done})
    return sorted(out, key=lambda c: (stamp(c["row"]) or "", c["run_id"], c["cell_key"]))


def harness(row: dict[str, Any]) -> dict[str, Any] | None:
    h = (row.get("extra") or {}).get("harness")
    return h if isinstance(h, dict) else None


def kernels_tag(row: dict[str, Any]) -> str:
    """``kernels=on`` or ``kernels=off`` for a harness row run with a non-default kernel
    switch (with the path its model took, where the row records it), else ""."""
    mode = (harness(row) or {}).get("kernels")
    if mode in (None, "auto"):
        return ""
    facts = (row.get("extra") or {}).get("facts") or {}
    paths = sorted({facts[k] for k in ("assign_path", "sddmm_path") if facts.get(k)})
    return f"kernels={mode}" + (f" ({', '.join(paths)})" if paths else "")


def comparison(row: dict[str, Any]) -> dict[str, Any] | None:
    c = (row.get("extra") or {}).get("comparison")
    return c if isinstance(c, dict) else None


def gpu_found(rows: list[dict]) -> bool:
    """Whether any stored row ran on CUDA (or says its comparison found a GPU)."""
    for r in rows:
        if "schema_version" not in r:
            continue
        if r["status"] == "ok" and r["backend"].get("name") == "cuda":
            return True
        if (c := comparison(r)) and c.get("gpu_found"):
            return True
    return False


def fallback_reasons(rows: list[dict]) -> list[str]:
    """Why the backends that asked for CUDA got none, as the rows recorded it."""
    out = set()
    for r in rows:
        if "schema_version" not in r:
            continue
        reason = r["backend"].get("fallback_reason")
        if isinstance(reason, str) and "cuda" in reason.lower():
            out.add(reason)
        if r["status"] == "skipped" and "cuda" in (r.get("reason") or "").lower():
            out.add(r["reason"])
    return sorted(out)
