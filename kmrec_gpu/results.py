"""Result rows: one schema for every measurement, written append-only as JSON lines.

Each run writes its own file (``<results>/runs/<UTC time>-<run id>.jsonl``); a row is
appended by writing the whole file to a temporary name and renaming it over the old one,
so a crash never leaves a half-written line and earlier rows are never lost.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gzip
import json
import math
import os
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kmrec_gpu.environment import git_revision, library_versions
from kmrec_gpu.errors import SchemaError
from kmrec_gpu.log import get as _get_logger

_LOG = _get_logger(__name__)

SCHEMA_VERSION = 1
PHASES = ("load", "split", "fit", "predict", "recommend", "evaluate", "end-to-end")
STATUSES = ("ok", "failed", "skipped")

# key -> (type(s), required)
_FIELDS: dict[str, tuple[tuple[type, ...], bool]] = {
    "schema_version": ((int,), True),
    "run_id": ((str,), True),
    "created_utc": ((str,), True),
    "dataset": ((dict,), True),  # name, sha256, n_ratings, source
    "split": ((dict, type(None)), True),  # method, params, n_train, n_test
    "seed": ((int,), True),
    "model": ((dict,), True),  # name, params
    "backend": ((dict,), True),  # name, library, device_name, fallback_reason
    "versions": ((dict,), True),
    "git_revision": ((str,), True),
    "phase": ((str,), True),
    "status": ((str,), True),
    "reason": ((str, type(None)), False),
    "metrics": ((dict,), True),
    "wall_time": ((dict, type(None)), True),  # Timing.as_dict()
    "throughput": ((dict, type(None)), False),  # value, unit
    "peak_memory": ((dict, type(None)), False),  # host_bytes, device_bytes
    "command": ((str, type(None)), False),
    "extra": ((dict,), False),
}


def validate_row(row: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise SchemaError(f"a result row is a JSON object, not {type(row).__name__}")
    unknown = set(row) - set(_FIELDS)
    if unknown:
        raise SchemaError(f"result row has unknown keys {sorted(unknown)}")
    for key, (types, required) in _FIELDS.items():
        if key not in row:
            if required:
                raise SchemaError(f"result row lacks required key {key!r}")
            continue
        if not isinstance(row[key], types) or isinstance(row[key], bool) and bool not in types:
            raise SchemaError(
                f"result row key {key!r} is {type(row[key]).__name__}; expected "
                f"{' or '.join(t.__name__ for t in types)}"
            )
    try:
        _dt.datetime.fromisoformat(row["created_utc"])
    except ValueError:
        raise SchemaError(f"created_utc {row['created_utc']!r} is not an ISO 8601 time") from None
    if row["phase"] not in PHASES:
        raise SchemaError(f"phase {row['phase']!r}; expected one of {PHASES}")
    if row["status"] not in STATUSES:
        raise SchemaError(f"status {row['status']!r}; expected one of {STATUSES}")
    if row["status"] != "ok" and not row.get("reason"):
        raise SchemaError(f"a {row['status']} row must give its reason")
    for k in ("name", "sha256"):
        if k not in row["dataset"]:
            raise SchemaError(f"result row dataset lacks {k!r}")
    for k in ("name", "params"):
        if k not in row["model"]:
            raise SchemaError(f"result row model lacks {k!r}")
    for k in ("name", "library", "device_name"):
        if k not in row["backend"]:
            raise SchemaError(f"result row backend lacks {k!r}")
    for k, v in row["metrics"].items():
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise SchemaError(f"metric {k!r} is {v!r}; expected a number")
    return row


def make_row(*, run_id: str, dataset: dict, split: dict | None, seed: int, model: dict,
             backend: dict, phase: str, metrics: dict | None = None,
             wall_time: dict | None = None, status: str = "ok", **optional: Any) -> dict:
    """A row with the provenance fields (versions, revision, time) filled in."""
    row = {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "dataset": dataset,
        "split": split,
        "seed": int(seed),
        "model": model,
        "backend": backend,
        "versions": library_versions(),
        "git_revision": git_revision(),
        "phase": phase,
        "status": status,
        "metrics": {k: _num(v) for k, v in (metrics or {}).items()},
        "wall_time": wall_time,
        **optional,
    }
    return validate_row(row)


def _num(v: Any) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "item"):
        raise SchemaError(f"metric value {v!r} is not a number")
    v = v.item() if hasattr(v, "item") else v
    return v if isinstance(v, int) else float(v)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block
    succeeds, removed when it fails, so no reader ever sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp's 0600 is for the half-written file only
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _dumps(row: dict) -> str:
    return json.dumps(row, sort_keys=True, allow_nan=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class ResultWriter:
    """Appends validated rows to this run's own JSON-lines file."""

    def __init__(self, results_dir: str | Path, run_id: str | None = None) -> None:
        self.run_id = run_id or new_run_id()
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.path = Path(results_dir) / "runs" / f"{stamp}-{self.run_id}.jsonl"
        if self.path.exists() or self.path.with_name(self.path.name + ".gz").exists():
            raise FileExistsError(f"{self.path} exists; results are never overwritten")
        self._lines: list[str] = []

    def append(self, row: dict) -> None:
        validate_row(row)
        if row["run_id"] != self.run_id:
            raise SchemaError(f"row run_id {row['run_id']!r} != writer's {self.run_id!r}")
        self._lines.append(_dumps(row))
        write_atomic(self.path, "\n".join(self._lines) + "\n")

    def extend(self, rows: Iterable[dict]) -> None:
        for r in rows:
            self.append(r)


def append_row(path: str | Path, row: dict) -> None:
    """Append a validated row to a JSON-lines file shared by many runs (a benchmark's
    ``results/bench/*.jsonl``): the lines already there are kept as they are, whatever
    their schema, and the file is rewritten through a temporary file and a rename, as
    :class:`ResultWriter` does, so no reader sees half a line."""
    validate_row(row)
    path = Path(path)
    with _locked(path):  # read, add, rename: two writers at once would drop a row
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        write_atomic(path, old + _dumps(row) + "\n")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``<path>.lock`` (created once, left in place: removing
    it while another writer waits on it would let a third one in)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class BadLine:
    """A stored line that is not a valid row: its file, 1-based line (None: the whole file
    could not be read) and why."""

    file: Path
    line: int | None
    error: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)

    def strict(self) -> str:
        """The message of the strict reader's :class:`SchemaError`."""
        return f"{self.file}, line {self.line}: {self.error}" if self.line is not None else (
            f"{self.file}: {self.error}")


_WARNED: set[tuple[str, int | None, str]] = set()  # reported once per process


def warn_bad_lines(bad: Iterable[BadLine]) -> None:
    """One warning on stderr for each bad line not reported before in this process."""
    for b in bad:
        key = (str(Path(b.file).resolve()), b.line, b.error)
        if key in _WARNED:
            continue
        _WARNED.add(key)
        what = "line" if b.line is not None else "file"
        _LOG.warning(f"kmrec: warning: {b.where}: skipped a malformed result {what} "
                     f"({b.error}); repair or delete the {what}, or move the file out of "
                     f"{Path(b.file).parent}")


ROWS_SUFFIXES = (".jsonl", ".jsonl.gz")


def rows_files(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """The JSON-lines files of ``folder``, plain or gzipped (:func:`compact_runs`), in name
    order. A file present both ways is read plain: a run still writing rewrote it whole."""
    p = Path(folder)
    found = p.rglob("*") if recursive else p.glob("*")
    files = sorted(f for f in found if f.name.endswith(ROWS_SUFFIXES) and f.is_file())
    names = {f for f in files if f.suffix == ".jsonl"}
    return [f for f in files
            if not (f.suffix == ".gz" and f.with_name(f.name[:-3]) in names)]


def _file_bytes(f: Path) -> bytes:
    data = f.read_bytes()
    return gzip.decompress(data) if f.name.endswith(".gz") else data


def scan_lines(path: str | Path, parse: Callable[[Any], Any]
               ) -> tuple[list[tuple[Path, Any]], list[BadLine]]:
    """Every non-blank line of one JSON-lines file (plain or gzipped), or of every such
    file under a folder, passed through ``parse`` (which raises :class:`SchemaError` on a
    bad record): the (file, parsed) pairs in file and line order, and the lines that
    failed. Bytes that are not UTF-8 spoil their line only; a file that cannot be read is
    one bad entry."""
    p = Path(path)
    files = rows_files(p, recursive=True) if p.is_dir() else [p]
    good: list[tuple[Path, Any]] = []
    bad: list[BadLine] = []
    for f in files:
        try:
            data = _file_bytes(f)
        except (OSError, EOFError, zlib.error) as e:
            bad.append(BadLine(f, None, f"cannot be read: {type(e).__name__}: {e}"))
            continue
        for n, raw in enumerate(data.splitlines(), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                bad.append(BadLine(f, n, f"not UTF-8 text: byte {raw[e.start:e.start + 1]!r} "
                                         f"at column {e.start + 1}"))
                continue
            if not line.strip():
                continue
            try:
                good.append((f, parse(json.loads(line))))
            except json.JSONDecodeError as e:
                bad.append(BadLine(f, n, f"not JSON: {e}"))
            except SchemaError as e:
                bad.append(BadLine(f, n, str(e)))
    return good, bad


def scan_rows(path: str | Path) -> tuple[list[dict], list[BadLine]]:
    """The valid rows (of one file, or of every ``*.jsonl`` under a folder) and the lines
    that are not valid rows."""
    good, bad = scan_lines(path, validate_row)
    return [r for _, r in good], bad


def read_rows(path: str | Path, on_error: str = "raise") -> list[dict]:
    """Rows of one results file, or of every ``*.jsonl`` under a folder, validated.

    ``on_error="raise"`` (the default): a :class:`SchemaError` naming the file and line of
    the first bad line. ``on_error="warn"``: bad lines are skipped, each reported once per
    process on stderr with its file and line, and the valid rows returned."""
    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error {on_error!r}; expected 'raise' or 'warn'")
    rows, bad = scan_rows(path)
    if bad and on_error == "raise":
        raise SchemaError(bad[0].strict())
    warn_bad_lines(bad)
    return rows


def json_safe(x: Any) -> Any:
    """JSON-safe for a row: NumPy scalars and arrays and tuples to Python, NaN and inf to
    None (rows forbid NaN), anything else unknown to its ``str``."""
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if hasattr(x, "tolist") and hasattr(x, "dtype"):  # NumPy arrays and scalars
        return json_safe(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return str(x)


def compact_runs(results_dir: str | Path, *,
                 min_age_s: float = 3600.0) -> list[tuple[Path, int, int]]:
    """Gzip each finished run file of ``<results>/runs`` in place: ``X.jsonl`` becomes
    ``X.jsonl.gz`` holding the same bytes (checked by decompressing before the plain file
    goes), so every reader sees the same rows in about 40% of the space (this repository's 57 MB
    of run files became 21 MB: per-user statistics compress poorly). A file changed in
    the last ``min_age_s`` seconds may belong to a run still writing (a writer rewrites its
    whole file at each row) and is left alone, as is one whose ``.gz`` already exists.
    Returns (file, bytes before, bytes after) per file compacted."""
    import time

    out = []
    runs = Path(results_dir) / "runs"
    now = time.time()
    for f in sorted(runs.glob("*.jsonl")) if runs.is_dir() else []:
        dst = f.with_name(f.name + ".gz")
        if dst.exists() or now - f.stat().st_mtime < min_age_s:
            continue
        data = f.read_bytes()
        packed = gzip.compress(data, compresslevel=9, mtime=0)  # the same bytes every time
        with atomic_path(dst) as tmp:
            tmp.write_bytes(packed)
        if gzip.decompress(dst.read_bytes()) != data:
            dst.unlink()
            raise OSError(f"{dst}: does not decompress to {f}; {f} kept")
        f.unlink()
        out.append((dst, len(data), len(packed)))
    return out
