"""Which model families of the project's issues have stored results, and which have none.

A family is recognised by its model names (and, for peers and kernels, by the library,
peer or kernel path a row records); the list is the project's plan, the counts come from
the stored rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kmrec_gpu.report import fmt
from kmrec_gpu.report.labels import label
from kmrec_gpu.report.load import SOURCE, gpu_found, harness


@dataclass(frozen=True)
class Family:
    name: str
    origin: str
    name_re: str
    other_re: str | None = None  # matched against library / peer / kernel path / config

    def matches(self, item: dict[str, str]) -> bool:
        if re.search(self.name_re, item["name"], re.IGNORECASE):
            return True
        return bool(self.other_re and re.search(self.other_re, item["other"], re.IGNORECASE))


FAMILIES: tuple[Family, ...] = (
    Family("K-means liked clusters", "seed 002", r"liked[- ]clusters|^kmeans-bench liked"),
    Family("Genre-profile clusters", "seed 002 (held out)", r"genre-profiles|genre shares"),
    Family("Popularity / random", "seed 002 baselines", r"^(popularity|random)$"),
    Family("K-means engine (dense inputs)", "K-means engine issue", r"^kmeans-bench dense"),
    Family("Truncated SVD", "seed 001", r"truncated-?svd"),
    Family("NMF", "seed 001", r"nmf"),
    Family("Iterative SVD / soft-impute", "seed 001", r"iterative-?svd|soft-impute"),
    Family("Biased MF", "baselines", r"biased[-_]mf"),
    Family("Bias baselines (global mean, user/item biases)", "baselines",
           r"bias[-_]baseline|global[-_]mean"),
    Family("Random forest, linear regression and pivot K-means", "seed 004", r"^004-"),
    Family("Seed 000 networks and movie-genre K-means", "seed 000", r"^seed000|^000-"),
    Family("Seed 003 hybrid network", "seed 003", r"^seed003"),
    Family("Peer: scikit-learn", "peers", r"sklearn", r"sklearn|scikit-learn"),
    Family("Peer: Surprise", "peers", r"surprise", r"surprise"),
    Family("Peer: cuML", "peers (GPU)", r"cuml", r"cuml"),
    Family("Triton kernels", "kernels/", r"triton", r"triton"),
)


def _item(r: dict[str, Any]) -> dict[str, str]:
    if "schema_version" not in r:  # a bench/kmeans.jsonl record
        return {"name": f"kmeans-bench {r.get('case', '')}",
                "other": " | ".join(str(r.get(k) or "") for k in ("peer", "assign_path")),
                "dataset": r.get("case", "")}
    e = r.get("extra") or {}
    h = harness(r) or {}
    facts = e.get("facts") or {}
    other = [r["backend"].get("library"), e.get("peer"), e.get("solver"), e.get("library"),
             e.get("assign_path"), facts.get("assign_path"), facts.get("sddmm_path"),
             h.get("model_config"), h.get("backend_config")]
    return {"name": r["model"]["name"], "other": " | ".join(str(o or "") for o in other),
            "dataset": r["dataset"].get("name") or ""}


def _has_library(rows: list[dict], prefix: str) -> bool:
    return any(k.startswith(prefix) for r in rows for k in (r.get("versions") or {}))


def _why_none(fam: Family, rows: list[dict]) -> str:
    if fam.name == "Triton kernels":
        why = "none: no stored row ran a Triton kernel (they run on CUDA"
        return why + (")" if gpu_found(rows) else "; no stored run found a GPU)")
    if fam.name == "Peer: cuML":
        why = ["cuML is installed in a stored run's environment" if _has_library(rows, "cuml")
               else "cuML is not installed in any stored run's environment"]
        if not gpu_found(rows):
            why.append("no GPU was found")
        return "none: " + "; ".join(why)
    return "none stored"


def section(rows: list[dict]) -> str:
    items = [(r, _item(r)) for r in rows]
    table_rows, matched = [], []
    for fam in FAMILIES:
        hits = [(r, it) for r, it in items if fam.matches(it)]
        matched += [r for r, _ in hits]
        if hits:
            n_ok = sum(r.get("status", "ok") == "ok" for r, _ in hits)
            status = "stored" if n_ok == len(hits) else (
                f"stored ({len(hits) - n_ok} failed/skipped)" if n_ok
                else "only failed/skipped rows")
            datasets = sorted({it["dataset"] for _, it in hits})
            shown = ", ".join(datasets[:6]) + (f" (+{len(datasets) - 6} more)"
                                               if len(datasets) > 6 else "")
            files = sorted({r[SOURCE] for r, _ in hits})
            table_rows.append([fam.name, fam.origin, status, n_ok, shown,
                               ", ".join(f.rsplit("/", 1)[-1] for f in files)])
        else:
            table_rows.append([fam.name, fam.origin, _why_none(fam, rows), 0, "", ""])
    unique = list({id(r): r for r in matched}.values())
    return "\n\n".join([
        fmt.table(["family", "from", "status", "ok rows", "datasets", "files"], table_rows),
        label(unique)])
