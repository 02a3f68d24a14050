"""Datasets: the MovieLens registry, user CSVs, seed 002's subset and synthetic presets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kmrec_gpu.data.movielens import load_csv, load_movielens, load_seed002
from kmrec_gpu.data.registry import LOCAL_DATASETS, MOVIELENS, DatasetSpec, get_spec
from kmrec_gpu.ratings import Ratings

__all__ = ["DatasetSpec", "available", "get_spec", "load", "load_csv", "verify"]


def available() -> list[dict[str, Any]]:
    """One row per loadable name: registry releases, local files, synthetic presets."""
    from kmrec_gpu.data.synthetic import SYNTHETIC_PRESETS

    rows = [
        {"name": s.name, "kind": "movielens", "ratings": s.expected.n_ratings,
         "description": s.description}
        for s in MOVIELENS.values()
    ]
    rows += [
        {"name": s.name, "kind": "local", "ratings": s.expected.n_ratings,
         "description": s.description}
        for s in LOCAL_DATASETS.values()
    ]
    rows += [
        {"name": n, "kind": "synthetic", "ratings": p.n_ratings, "description": p.description}
        for n, p in SYNTHETIC_PRESETS.items()
    ]
    return rows


def load(
    name: str,
    path: str | Path | None = None,
    *,
    seed: int = 0,
    verify: bool = True,
    download: bool = True,
    progress: bool = False,
) -> Ratings:
    """Load any dataset by name. ``seed`` only matters for synthetic presets."""
    if name.startswith("synthetic"):
        from kmrec_gpu.data.synthetic import synthetic_preset

        return synthetic_preset(name, seed=seed, progress=progress)
    spec = get_spec(name)
    if name in LOCAL_DATASETS:
        return load_seed002(spec, path, verify=verify)
    return load_movielens(spec, path, verify=verify, download=download)


def verify(name: str, path: str | Path | None = None, *, download: bool = False) -> dict:
    """Checksums of a located copy plus its counts against the registry's.

    A copy that does not load (a line that does not parse, a zip that is not readable) is
    a failed check like a wrong digest, not an error: the report still lists every check
    that could be made, and one ``load`` row that says what went wrong and where."""
    import hashlib

    from kmrec_gpu.data.locate import locate
    from kmrec_gpu.errors import DataError

    spec = get_spec(name)
    src = locate(spec, path, download=download and spec.downloadable, open_now=False)
    try:
        checks = src.verify_archive()
        r = failure = None
        try:
            r = load(name, src.path, verify=False)  # hashes nothing: the digests are below
        except DataError as e:
            failure = str(e)
        digests: dict[str, str | None] = {}
        for member in sorted(set(spec.files.values())):
            try:
                digests[member] = hashlib.sha256(src.read(member)).hexdigest()
            except DataError:
                digests[member] = None  # unreadable: the load row says why
    finally:
        src.close()
    for member, sha in sorted(digests.items()):
        want = spec.member_sha256.get(member)
        if src.kind == "zip" or want is None:
            ok = False if sha is None else None if want is None else sha == want
            checks.append({"file": f"{src.path}:{member}" if src.kind == "zip" else member,
                           "algorithm": "sha256", "expected": want,
                           "actual": sha if sha is not None else "unreadable", "ok": ok})
    if failure is not None:
        checks.append({"file": name, "algorithm": "load", "expected": "a copy that loads",
                       "actual": failure, "ok": False})
        return {"name": name, "source": str(src.path), "kind": src.kind, "ok": False,
                "checks": checks}
    e = spec.expected
    s = r.summary()
    for key, want in (("n_ratings", e.n_ratings), ("n_users", e.n_users), ("n_items", e.n_items),
                      ("n_movies", e.n_movies), ("n_tags", e.n_tags)):
        if want is not None:
            checks.append({"file": key, "algorithm": "count", "expected": want,
                           "actual": s.get(key), "ok": s.get(key) == want})
    ok = all(c["ok"] is not False for c in checks)
    return {"name": name, "source": str(src.path), "kind": src.kind, "ok": ok, "checks": checks}
