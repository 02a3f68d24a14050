"""Provenance labels: which device, data, seeds and code revision a table or figure shows.

A reader comparing two numbers in the report must be able to tell whether they came from
the same machine, the same bytes of data and the same code, so every table and figure
carries the label of exactly the rows it is drawn from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from kmrec_gpu.report.load import SOURCE


class Prov(NamedTuple):
    device: str | None
    data: str
    seed: int | None
    revision: str | None


def short_revision(rev: str | None) -> str | None:
    if not rev:
        return None
    dirty = rev.endswith("-dirty")
    base = rev[: -len("-dirty")] if dirty else rev
    return base[:10] + ("-dirty" if dirty else "")


def dataset_label(dataset: dict[str, Any], seed: int | None) -> str:
    """``name sha256[:12]``, or the generator seed for synthetic data (it has no file)."""
    name = dataset.get("name") or "?"
    sha = dataset.get("sha256")
    if sha:
        return f"{name} {sha[:12]}"
    gen_seed = dataset.get("meta_seed", dataset.get("seed"))
    if gen_seed is None and name.startswith("synthetic"):
        gen_seed = seed  # the presets are generated from the row's seed
    if gen_seed is None:
        return f"{name} (no checksum recorded)"
    return f"{name} generator seed {gen_seed}"


_KMEANS_CASE = re.compile(r"^liked (?P<name>\S+)$")


def _kmeans_bench_prov(rec: dict[str, Any]) -> Prov:
    # bench/kmeans.jsonl predates the row schema: a case names its input, not a checksum
    seed = rec.get("seed")
    m = _KMEANS_CASE.match(rec.get("case", ""))
    if m and not m["name"].startswith("synthetic"):
        data = f"{m['name']} (no checksum recorded)"
    elif m:
        data = f"{m['name']} generator seed {seed}"
    else:
        data = f"{rec.get('input') or rec.get('case')} generator seed {seed}"
    return Prov((rec.get("device") or {}).get("name"), data, seed,
                short_revision(rec.get("git")))


def prov(row: dict[str, Any]) -> Prov:
    if "schema_version" not in row:
        return _kmeans_bench_prov(row)
    return Prov(row["backend"].get("device_name"), dataset_label(row["dataset"], row["seed"]),
                row["seed"], short_revision(row.get("git_revision")))


def _join(values: Iterable[Any], fmt=str) -> str:
    vals = sorted({v for v in values if v is not None}, key=lambda v: (str(type(v)), v))
    return ", ".join(fmt(v) for v in vals) if vals else "not recorded"


def label(rows: Iterable[dict[str, Any]]) -> str:
    """One line: device(s), dataset checksum(s), seed(s), code revision(s), row count, files."""
    rows = list(rows)
    if not rows:
        return "_No stored rows._"
    ps = [prov(r) for r in rows]
    files = sorted({r[SOURCE] for r in rows if SOURCE in r})
    return (f"_Device: {_join(p.device for p in ps)}; data: {_join(p.data for p in ps)}; "
            f"seeds: {_join(p.seed for p in ps)}; code: "
            f"{_join((p.revision for p in ps), lambda r: f'`{r}`')}; "
            f"{len(rows)} row{'s' if len(rows) != 1 else ''} from "
            f"{', '.join(f'`{f}`' for f in files)}._")


def plain(text: str) -> str:
    """The label without Markdown emphasis/backticks, for drawing inside a figure."""
    return text.strip("_").replace("`", "")
