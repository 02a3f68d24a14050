"""Seed 002's clusters as the article computed them, with every scikit-learn release.

The article (CLAIMS.md, 002) clusters the 100 users of its 447-row file on a binary
user × movie matrix (``CountVectorizer`` over each user's movie list, so the columns are
the movie ids ordered as text) with ``KMeans(n_clusters=15, init="k-means++", n_init=10,
max_iter=300, random_state=0)``, dissolves the clusters of fewer than 6 users (each of
their users moves to the remaining cluster whose movie list covers the largest share of
the user's movies: :func:`~kmrec_gpu.models.liked_clusters.fix_small_clusters`) and
reports 5 clusters of 45/21/8/15/11 users.

It names no scikit-learn version, and K-means with a fixed seed gives different
clusters in different releases. So :class:`Probe002Clusters` runs the same fit with the
project's scikit-learn (in process, label ``"project"``) and with each other release it
is given, each in its own environment under ``$XDG_CACHE_HOME/kmrec/sklearn-envs/<version>``
(default ``~/.cache``), built once with ``pip install scikit-learn==<version>`` (wheels
only; releases before 1.4.2 were built against NumPy 1 and get ``numpy<2``) and kept.
Such an interpreter runs :mod:`kmrec_gpu.probes.sklearn_kmeans` by path (it imports
only NumPy and scikit-learn) with the matrix as JSON on stdin and the labels as JSON on
stdout. The fix and the counting run here, with the project's code, for every release.
A release that does not install (no wheel for this Python, as for the article's own
era, 0.23 and 0.24) or does not run is recorded with pip's or Python's last error line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from kmrec_gpu.log import get as _get_logger
from kmrec_gpu.models.liked_clusters import fix_small_clusters, liked_matrix
from kmrec_gpu.probes import Probe
from kmrec_gpu.ratings import Ratings

_LOG = _get_logger(__name__)

# What the article reports (compared against, never used to compute)
ARTICLE_USERS = (45, 21, 8, 15, 11)
ARTICLE_MOVIES = (64, 39, 15, 50, 25)
PROJECT = "project"  # the project's own scikit-learn, run in process
# The project's release and the last patch of every minor release with wheels for CPython
# 3.11 (`pip index versions scikit-learn`, each installed here): 1.1.3 is the first with
# cp311 wheels; 1.0.2 and older (the article's 2020 era: 0.23.x, 0.24.x) have none.
DEFAULT_VERSIONS = (PROJECT, "1.1.3", "1.2.2", "1.3.2", "1.4.2", "1.5.2", "1.6.1", "1.7.2",
                    "1.8.0", "1.9.1")
NUMPY2_FROM = (1, 4, 2)  # the first scikit-learn built against NumPy 2: earlier get numpy<2
CHILD = Path(__file__).with_name("sklearn_kmeans.py")
MARKER = "kmrec-env.json"  # what an environment holds (or why it could not be built)
# pip's words for a failure that retrying cannot fix (anything else, e.g. the network,
# is not remembered and is tried again next time)
FINAL_FAILURES = ("No matching distribution", "ResolutionImpossible",
                  "conflicting dependencies")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")
IMPORT_CHECK = ("import json, importlib.metadata as m, sklearn.cluster; print(json.dumps("
                "{d.metadata['Name'].lower(): d.version for d in m.distributions()}))")


def say(msg: str) -> None:
    _LOG.info(f"[probe 002] {msg}")


# -- the article's procedure --------------------------------------------------------------


def article_matrix(r: Ratings, threshold: float | None = 4.0
                   ) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """``(liked, user_codes, item_codes)``: the binary matrix the article clustered.

    Rows: the users with a movie rated ``>= threshold``, by id (``np.unique(userId)``);
    columns: the movies someone of them liked, ordered by id *as text*, as
    ``CountVectorizer`` orders its vocabulary."""
    liked = liked_matrix(r, threshold)
    users = np.flatnonzero(np.diff(liked.indptr) > 0)
    users = users[np.argsort(r.user_ids[users], kind="stable")]
    items = np.flatnonzero(np.bincount(liked.indices, minlength=liked.shape[1]) > 0)
    items = items[np.argsort(r.item_ids[items].astype(str), kind="stable")]
    return liked[users][:, items].tocsr(), users, items


def article_movie_rows(raw: np.ndarray, fixed: np.ndarray, liked: sp.spmatrix,
                       min_size: int) -> list[int]:
    """Rows of each final cluster's movie table as the article's code builds it: the
    distinct movies of the members it kept, plus each moved user's uncovered movies
    appended one row each (duplicates included, as its ``DataFrame.append`` does)."""
    liked = sp.csr_matrix(liked > 0)
    kept = np.flatnonzero(np.bincount(raw[raw >= 0]) >= min_size)
    stayed = np.isin(raw, kept)
    out = []
    for new, old in enumerate(kept):
        base = set(liked[np.flatnonzero(raw == old)].indices.tolist())
        movers = np.flatnonzero((fixed == new) & ~stayed)
        out.append(len(base) + sum(len(set(liked[u].indices.tolist()) - base)
                                   for u in movers))
    return out


def cluster_summary(raw: np.ndarray, liked: sp.spmatrix, min_size: int) -> dict[str, Any]:
    """The article's fix applied to K-means labels ``raw`` (one per row of ``liked``),
    and the clusters counted before and after: users and distinct movies per cluster."""
    raw = np.asarray(raw, dtype=np.int64)
    liked = sp.csr_matrix(liked)
    fixed = fix_small_clusters(raw, liked, min_size)
    n = int(fixed.max()) + 1
    members = [np.flatnonzero(fixed == c) for c in range(n)]
    return {"n_clusters_raw": int(np.unique(raw[raw >= 0]).size),
            "raw_sizes": np.bincount(raw[raw >= 0]).tolist(),
            "n_clusters": n, "users": [int(m.size) for m in members],
            "movies": [int(np.unique(liked[m].indices).size) for m in members],
            "movies_article_rows": article_movie_rows(raw, fixed, liked, min_size)}


def matches_article(summary: dict) -> bool:
    return (sorted(summary["users"]) == sorted(ARTICLE_USERS)
            and sorted(summary["movies"]) == sorted(ARTICLE_MOVIES))


# -- isolated environments ----------------------------------------------------------------


def env_root(root: str | os.PathLike | None = None) -> Path:
    """Where the environments live: ``root``, else ``$XDG_CACHE_HOME/kmrec/sklearn-envs``
    (``~/.cache/kmrec/sklearn-envs``)."""
    if root is not None:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kmrec" / "sklearn-envs"


def release_tuple(version: str) -> tuple[int, ...] | None:
    m = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", version)
    return None if m is None else tuple(int(x or 0) for x in m.groups())


def requirements(version: str) -> list[str]:
    """What pip installs for ``version``: the release, and ``numpy<2`` before 1.4.2 (1.1.3
    and 1.2.2 do not declare the bound and fail to import under NumPy 2: "numpy.dtype
    size changed"; 1.3.x and 1.4.0-1.4.1 declare it themselves)."""
    reqs = [f"scikit-learn=={version}"]
    rel = release_tuple(version)
    if rel is not None and rel < NUMPY2_FROM:
        reqs.append("numpy<2")
    return reqs


def env_python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def last_error_line(text: str) -> str:
    """pip's (or Python's) last ``ERROR:`` line, else the last non-empty line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    return (errors or lines or ["(no output)"])[-1]


@dataclass
class Env:
    """One release's environment, or why there is none."""

    version: str
    path: Path
    python: Path | None = None
    packages: dict[str, str] = field(default_factory=dict)
    stage: str | None = None  # where it failed: "install" or "import"
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def _read_marker(path: Path) -> dict | None:
    try:
        return json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _from_marker(version: str, path: Path, m: dict, cached: bool) -> Env:
    if m["status"] == "ok":
        return Env(version, path, env_python(path), dict(m.get("packages", {})), cached=cached)
    return Env(version, path, None, stage=m.get("stage"), error=m.get("error"), cached=cached)


def _build(tmp: Path, reqs: list[str], pip_args: list[str], timeout_s: float) -> dict:
    """Create a venv in ``tmp`` and install ``reqs``; the marker's content."""
    # the project's own pip installs into the new environment (--python): no copy of pip
    # in each one, and no ensurepip; without a pip here the environment gets its own
    have_pip = importlib.util.find_spec("pip") is not None
    subprocess.run([sys.executable, "-m", "venv", *(["--without-pip"] if have_pip else []),
                    str(tmp)], check=True, capture_output=True, text=True)
    py = env_python(tmp)
    pip = ([sys.executable, "-m", "pip", "--python", str(py)] if have_pip
           else [str(py), "-m", "pip"])
    cmd = [*pip, "install", "--disable-pip-version-check", "--no-input",
           "--only-binary=:all:", *reqs, *pip_args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "stage": "install", "final": False,
                "error": f"pip install ran over {timeout_s:.0f} s"}
    if p.returncode != 0:
        err = last_error_line(p.stdout + "\n" + p.stderr)
        return {"status": "failed", "stage": "install", "error": err,
                "final": any(w in p.stdout + p.stderr for w in FINAL_FAILURES)}
    p = subprocess.run([str(py), "-I", "-c", IMPORT_CHECK], capture_output=True, text=True,
                       timeout=timeout_s)
    if p.returncode != 0:  # installed but broken: the same resolution breaks again
        return {"status": "failed", "stage": "import", "final": True,
                "error": last_error_line(p.stderr)}
    return {"status": "ok", "packages": json.loads(p.stdout.strip().splitlines()[-1])}


def ensure_env(version: str, *, root: str | os.PathLike | None = None,
               pip_args: list[str] | tuple[str, ...] = (), timeout_s: float = 1800.0) -> Env:
    """The environment of scikit-learn ``version``, built on first use and kept.

    A cached environment is reused while its requirements are the ones
    :func:`requirements` gives; a failure pip calls final (no matching distribution,
    conflicting dependencies) or a failed import is remembered too (for the same
    ``pip_args``), anything else is tried again on the next call. The build happens in
    a temporary folder beside the final one, renamed into place when done."""
    if not _VERSION.match(version):
        raise ValueError(f"not a release name: {version!r}")
    root = env_root(root)
    path = root / version
    reqs, pip_args = requirements(version), list(pip_args)
    m = _read_marker(path)
    if m is not None and m.get("requirements") == reqs and (
            (m["status"] == "ok" and env_python(path).exists())
            or (m["status"] == "failed" and m.get("pip_args") == pip_args)):
        return _from_marker(version, path, m, cached=True)
    from kmrec_gpu.data.locate import writable_folder

    writable_folder(root, "the scikit-learn environments' cache")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.partial-", dir=root))
    try:
        say(f"scikit-learn {version}: building its environment ({' '.join(reqs)}) in {path}")
        t0 = time.perf_counter()
        m = _build(tmp, reqs, pip_args, timeout_s)
        m.update(version=version, requirements=reqs, pip_args=pip_args,
                 python=sys.version.split()[0], built_s=round(time.perf_counter() - t0, 1))
        if m["status"] == "failed" and not m["final"]:
            return _from_marker(version, path, m, cached=False)
        (tmp / MARKER).write_text(json.dumps(m, indent=1) + "\n", encoding="utf-8")
        if path.exists():  # stale (other requirements, or broken): set aside, then remove
            old = Path(tempfile.mkdtemp(prefix=f".{version}.old-", dir=root))
            os.replace(path, old / "env")
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, path)
        except OSError:  # another process put its own there first: use that one
            theirs = _read_marker(path)
            if theirs is not None:
                return _from_marker(version, path, theirs, cached=True)
            raise
        return _from_marker(version, path, m, cached=False)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class ReleaseFailed(RuntimeError):
    """A release's interpreter did not answer."""


def run_release(python: str | os.PathLike, request: dict, timeout_s: float = 600.0) -> dict:
    """Run :mod:`kmrec_gpu.probes.sklearn_kmeans` by path with ``python`` (isolated mode:
    no project path, no PYTHON* variables, no user site); its JSON answer."""
    try:
        p = subprocess.run([str(python), "-I", str(CHILD)], input=json.dumps(request),
                           capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise ReleaseFailed(f"ran over {timeout_s:.0f} s") from e
    except OSError as e:
        raise ReleaseFailed(f"cannot run {python}: {e}") from e
    if p.returncode != 0:
        raise ReleaseFailed(last_error_line(p.stderr))
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise ReleaseFailed(f"no JSON answer: {p.stdout[-200:]!r}") from e


# -- the probe ----------------------------------------------------------------------------


class Probe002Clusters(Probe):
    """Seed 002's K-means and small-cluster fix on the training ratings, once per
    scikit-learn release in ``sklearn_versions``.

    ``kmeans_seed`` is the K-means ``random_state``: the article's fixed 0, not the cell's
    seed (the parameter is not called ``random_state``, which in this project's configs
    always receives the cell's seed).
    ``interpreters`` maps a label of ``sklearn_versions`` to an interpreter to use as is
    instead of building an environment (any Python with NumPy and scikit-learn);
    ``pip_args`` are added to ``pip install`` (e.g. ``["--no-index", "--find-links",
    DIR]`` for a local wheel folder); ``env_root`` overrides the environments' folder.

    ``metrics_``: ``n_clusters`` and ``n_clusters_raw`` (before the fix) of the project's
    release; ``n_clusters_min`` and ``n_clusters_max`` over the releases that ran;
    ``n_releases`` (distinct scikit-learn versions that ran), ``n_releases_failed``,
    ``n_releases_matching_article`` (its users and movies per cluster, in any order).
    ``details_["releases"]``: one entry per label: the versions that ran, users and
    distinct movies per cluster (and the rows of the article's own movie tables), raw
    cluster sizes, inertia; or the stage (``install``, ``import``, ``run``) and error.
    """

    def __init__(self, *, n_clusters: int = 15, init: str = "k-means++", n_init: int = 10,
                 max_iter: int = 300, kmeans_seed: int = 0, threshold: float | None = 4.0,
                 min_cluster_size: int = 6,
                 sklearn_versions: list[str] | tuple[str, ...] = DEFAULT_VERSIONS,
                 interpreters: dict[str, str] | None = None, pip_args: list[str] | None = None,
                 env_root: str | None = None, timeout_s: float = 1800.0) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.kmeans_seed = kmeans_seed
        self.threshold = threshold
        self.min_cluster_size = min_cluster_size
        self.sklearn_versions = sklearn_versions
        self.interpreters = interpreters
        self.pip_args = pip_args
        self.env_root = env_root
        self.timeout_s = timeout_s

    def kmeans_params(self) -> dict[str, Any]:
        return {"n_clusters": int(self.n_clusters), "init": self.init,
                "n_init": int(self.n_init), "max_iter": int(self.max_iter),
                "random_state": int(self.kmeans_seed)}

    def _versions(self) -> list[str]:
        versions = [str(v) for v in self.sklearn_versions]
        if PROJECT not in versions:
            raise ValueError(f"sklearn_versions must include {PROJECT!r} (the project's own "
                             f"release, whose count is n_clusters), got {versions}")
        if len(set(versions)) != len(versions):
            raise ValueError(f"sklearn_versions has duplicates: {versions}")
        for v in versions:
            if v != PROJECT and not _VERSION.match(v):
                raise ValueError(f"not a release name: {v!r}")
        return versions

    def _one(self, label: str, request: dict, liked: sp.csr_matrix) -> dict[str, Any]:
        from kmrec_gpu.probes import sklearn_kmeans

        t0 = time.perf_counter()
        where, packages = "in process", {}
        if label == PROJECT:
            out = sklearn_kmeans.fit(request)
        else:
            python = (self.interpreters or {}).get(label)
            if python is None:
                env = ensure_env(label, root=self.env_root, pip_args=self.pip_args or (),
                                 timeout_s=self.timeout_s)
                if not env.ok:
                    say(f"scikit-learn {label}: not measured ({env.stage}: {env.error})")
                    return {"version": label, "status": "failed", "stage": env.stage,
                            "error": env.error}
                python, where, packages = env.python, str(env.path), env.packages
            else:
                where = str(python)
            try:
                out = run_release(python, request, self.timeout_s)
            except ReleaseFailed as e:
                say(f"scikit-learn {label}: not measured (run: {e})")
                return {"version": label, "status": "failed", "stage": "run", "error": str(e)}
        summary = cluster_summary(np.asarray(out["labels"]), liked, int(self.min_cluster_size))
        entry = {"version": label, "status": "ok", "sklearn": out["sklearn"],
                 "numpy": out["numpy"], "python": out["python"], "where": where,
                 "inertia": out["inertia"], "n_iter": out["n_iter"], **summary,
                 "matches_article": matches_article(summary),
                 "seconds": round(time.perf_counter() - t0, 3)}
        if packages:
            entry["packages"] = packages
        say(f"{label}: scikit-learn {out['sklearn']}, NumPy {out['numpy']}: "
            f"{summary['n_clusters']} clusters after the fix, users {summary['users']}")
        return entry

    def measure(self, split) -> Probe002Clusters:
        versions = self._versions()
        liked, users, items = article_matrix(split.train, self.threshold)
        if liked.shape[0] < int(self.n_clusters):
            raise ValueError(f"n_clusters={self.n_clusters} but only {liked.shape[0]} users "
                             f"have a rating >= {self.threshold}")
        coo = liked.tocoo()
        request = {"shape": list(liked.shape), "rows": coo.row.tolist(),
                   "cols": coo.col.tolist(), "kmeans": self.kmeans_params()}
        releases = [self._one(v, request, liked) for v in versions]
        ran = [e for e in releases if e["status"] == "ok"]
        proj = releases[versions.index(PROJECT)]
        counts = [e["n_clusters"] for e in ran]
        self.metrics_ = {
            "n_clusters": proj["n_clusters"],
            "n_clusters_raw": proj["n_clusters_raw"],
            "n_clusters_min": min(counts),
            "n_clusters_max": max(counts),
            "n_releases": len({e["sklearn"] for e in ran}),
            "n_releases_failed": len(releases) - len(ran),
            "n_releases_matching_article": len({e["sklearn"] for e in ran
                                                if e["matches_article"]}),
        }
        self.details_ = {
            "article": {"n_clusters": len(ARTICLE_USERS), "users": list(ARTICLE_USERS),
                        "movies": list(ARTICLE_MOVIES)},
            "matrix": {"n_users": int(liked.shape[0]), "n_movies": int(liked.shape[1]),
                       "n_ones": int(liked.nnz), "threshold": self.threshold,
                       "rows": "users by id", "columns": "movies by id as text "
                       "(CountVectorizer's vocabulary order)"},
            "kmeans": self.kmeans_params(),
            "min_cluster_size": int(self.min_cluster_size),
            "releases": releases,
        }
        return self
