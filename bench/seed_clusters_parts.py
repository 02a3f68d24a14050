"""The measurements behind bench/seed_clusters.py (one function per part, a-d)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sklearn
from sklearn.cluster import KMeans as SkKMeans

from kmrec_gpu.cluster import KMeans
from kmrec_gpu.cluster.elbow import ElbowResult, find_knee, plot_elbow
from kmrec_gpu.data import load
from kmrec_gpu.environment import cpu_name
from kmrec_gpu.leakage_rec import scored_users
from kmrec_gpu.metrics import bootstrap_ci, per_user_ranking, ranking_metrics
from kmrec_gpu.models.genre_profiles import GenreProfileClusters, movie_genre_clusters
from kmrec_gpu.models.liked_clusters import LikedClusters, fix_small_clusters, liked_matrix
from kmrec_gpu.models.pivot_clusters import cluster_sizes, k_scan, mean_filled_pivot
from kmrec_gpu.models.popularity import GlobalPopularity, RandomRecommender
from kmrec_gpu.results import make_row
from kmrec_gpu.splits import per_user

# What the seed-002 article reports (its figures, compared against, never used to compute)
ARTICLE_USERS = (45, 21, 8, 15, 11)
ARTICLE_MOVIES = (64, 39, 15, 50, 25)
THRESHOLD = 4.0
ELBOW_KS = tuple(range(2, 31, 2))
METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")


@dataclass
class Context:
    writer: object
    command: str
    seeds: list[int]
    k: int
    n_boot: int
    out_dir: Path = Path("results")
    backend: dict = field(default_factory=lambda: {
        "name": "cpu", "library": "numpy", "device_name": cpu_name()})

    def row(self, r, *, seed: int, model: str, params: dict, metrics: dict, phase: str,
            split: dict | None = None, extra: dict | None = None, wall: float | None = None):
        ds = {"name": r.name, "sha256": r.source.sha256 if r.source else None,
              "n_ratings": len(r), "meta_seed": r.meta.get("seed")}
        self.writer.append(make_row(
            run_id=self.writer.run_id, dataset=ds, split=split, seed=seed,
            model={"name": model, "params": params}, backend=self.backend, phase=phase,
            metrics=metrics, wall_time=None if wall is None else {"total_s": wall},
            command=self.command, extra=extra or {}))


def knee(ks, wcss, fallback: int = 15) -> int:
    """The elbow by Kneedle on log(WCSS) (kmrec_gpu.cluster.elbow.find_knee), no eye
    involved; the article's k = 15 when the curve has no knee."""
    found = find_knee(list(ks), list(wcss))
    return fallback if found is None else found


def _article_movie_rows(raw: np.ndarray, fixed: np.ndarray, liked, min_size: int) -> list[int]:
    """Rows of each final cluster's movie table as the article's code builds it: the
    distinct movies of the members it kept, plus each moved user's uncovered movies
    appended one row each (duplicates included, as its ``DataFrame.append`` does)."""
    liked = (liked > 0).tocsr()
    kept = np.flatnonzero(np.bincount(raw[raw >= 0]) >= min_size)
    stayed = np.isin(raw, kept)
    out = []
    for new, old in enumerate(kept):
        base = set(liked[np.flatnonzero(raw == old)].indices.tolist())
        movers = np.flatnonzero((fixed == new) & ~stayed)
        out.append(len(base) + sum(len(set(liked[u].indices.tolist()) - base)
                                   for u in movers))
    return out


def _sizes_after_fix(raw, liked, min_size) -> dict:
    fixed = fix_small_clusters(raw, liked, min_size)
    n = int(fixed.max()) + 1
    members = [np.flatnonzero(fixed == c) for c in range(n)]
    return {"n_clusters_raw": int(np.unique(raw).size),
            "raw_sizes": np.bincount(raw).tolist(),
            "n_clusters": n, "users": [int(m.size) for m in members],
            "movies": [int(np.unique(liked[m].indices).size) for m in members],
            "movies_article_rows": _article_movie_rows(raw, fixed, liked, min_size)}


def seed002_article(ctx: Context, prog) -> dict:
    """(a) The article's procedure on its 447-row file, with scikit-learn and with ours."""
    r = load("seed-002")
    liked = liked_matrix(r, THRESHOLD)
    # CountVectorizer orders its columns by the movie id *string*; rows are np.unique(user)
    cols = np.argsort(r.item_ids.astype(str), kind="stable")
    X = np.asarray(liked[:, cols].todense(), dtype=np.float64)
    out = {"n_users": X.shape[0], "n_movies": X.shape[1], "n_rows": len(r),
           "sklearn": sklearn.__version__}
    task = prog.add_task("002: elbow k=1..30, two engines", total=60)
    for name in ("sklearn", "kmrec"):
        wcss = []
        for k in range(1, 31):
            wcss.append(_fit(name, X, k).inertia_)
            prog.advance(task)
        out[f"wcss_{name}"] = wcss
        out[f"knee_{name}"] = knee(list(range(1, 31)), wcss)
        png = ctx.out_dir / f"seed002_elbow_{name}.png"
        plot_elbow(ElbowResult(tuple(range(1, 31)), tuple(wcss), out[f"knee_{name}"]), png,
                   title=f"seed 002, 447-row file: WCSS k = 1..30 ({name})")
        out[f"elbow_png_{name}"] = str(png)
    prog.remove_task(task)
    csr = liked[:, cols].tocsr()
    for name in ("sklearn", "kmrec"):
        t = time.perf_counter()
        km = _fit(name, X, 15)
        sizes = _sizes_after_fix(km.labels_.astype(np.int64), csr, 6)
        out[name + "_k15"] = sizes
        sizes["matches_article"] = (sorted(sizes["users"]) == sorted(ARTICLE_USERS)
                                    and sorted(sizes["movies"]) == sorted(ARTICLE_MOVIES))
        ctx.row(r, seed=0, model=f"002-liked-clusters[{name}]",
                params={"n_clusters": 15, "n_init": 10, "max_iter": 300, "random_state": 0,
                        "min_cluster_size": 6, "library": name},
                metrics={"n_clusters_after_fix": sizes["n_clusters"],
                         "inertia_k15": km.inertia_,
                         "elbow_knee_k": out[f"knee_{name}"]},
                phase="fit", wall=time.perf_counter() - t,
                extra={"as_published": True, **{k: v for k, v in sizes.items()},
                       "wcss_k1_30": out[f"wcss_{name}"],
                       "article_users": list(ARTICLE_USERS),
                       "article_movies": list(ARTICLE_MOVIES)})
    return out


def _fit(name: str, X, k: int):
    if name == "sklearn":  # the article's settings, as its code sets them
        return SkKMeans(k, init="k-means++", n_init=10, max_iter=300, random_state=0).fit(X)
    return KMeans(k, init="k-means++", n_init=10, max_iter=300, random_state=0).fit(X)


def seed004_pivot(ctx: Context, prog) -> dict:
    """(b) Moviematcher's k scan (SSE, silhouette) and its k = 7 sizes, seeded."""
    r = load("ml-latest-small")
    X, users, _ = mean_filled_pivot(r)
    out = {"shape": list(X.shape), "scan": {}, "k7": {}}
    task = prog.add_task("004: pivot k scan 2..9 per seed", total=len(ctx.seeds))
    for s in ctx.seeds:
        t = time.perf_counter()
        scan = k_scan(X, range(2, 10), random_state=s, sample_size=None)
        out["scan"][s] = scan
        km7 = KMeans(7, random_state=s).fit(X)
        sizes = cluster_sizes(km7.labels_, users, r, 7)
        out["k7"][s] = sizes
        ctx.row(r, seed=s, model="004-pivot-kmeans", params={"n_clusters": 7,
                "fill": "user mean over all ratings (as published: no split)"},
                metrics={"max_users_in_cluster": max(sizes["users"]),
                         "max_ratings_in_cluster": max(sizes["ratings"]),
                         "n_clusters_over_20000_ratings": sum(
                             x > 20000 for x in sizes["ratings"])},
                phase="fit", wall=time.perf_counter() - t,
                extra={"as_published": True, "sizes": sizes, "k_scan": scan})
        prog.advance(task)
    prog.remove_task(task)
    return out


def seed000_movies(ctx: Context, prog) -> dict:
    """(c) The movie clustering seed 000's code ran: K = 6 on the genre one-hot, seed 0."""
    r = load("ml-latest-small")
    g = r.genres.astype(np.float64)
    sk = SkKMeans(6, random_state=0).fit(g)
    ours = movie_genre_clusters(r, 6, random_state=0)
    out = {"n_movies": g.shape[0], "n_genres": g.shape[1],
           "sklearn_sizes": sorted(np.bincount(sk.labels_, minlength=6).tolist(), reverse=True),
           "kmrec_sizes": sorted(np.bincount(ours.labels_, minlength=6).tolist(), reverse=True),
           "sklearn_inertia": float(sk.inertia_), "kmrec_inertia": ours.inertia_,
           "sklearn_n_init": str(sk.n_init)}
    ctx.row(r, seed=0, model="000-movie-genre-kmeans", params={"n_clusters": 6,
            "random_state": 0, "features": "all genre columns one-hot"},
            metrics={"sklearn_inertia": out["sklearn_inertia"],
                     "kmrec_inertia": out["kmrec_inertia"]},
            phase="fit", extra={"as_published": True, **out})
    return out


def _models(ctx, train, seed):
    ks = list(ELBOW_KS)
    liked = liked_matrix(train, THRESHOLD)
    liked = liked[np.diff(liked.indptr) > 0]  # the users LikedClusters clusters
    wcss = [KMeans(k, random_state=seed).fit(liked).inertia_ for k in ks]
    k_elbow = knee(ks, wcss)
    return {
        "popularity": GlobalPopularity(threshold=THRESHOLD),
        "random": RandomRecommender(random_state=seed),
        "liked-clusters-k15": LikedClusters(n_clusters=15, random_state=seed),
        "liked-clusters-elbow": LikedClusters(n_clusters=k_elbow, random_state=seed),
        "genre-profiles-k8": GenreProfileClusters(n_clusters=8, random_state=seed),
    }, {"elbow_ks": ks, "elbow_wcss": wcss, "elbow_k": k_elbow}


def evaluate_held_out(ctx: Context, prog, datasets) -> dict:
    """(d) Per-user 80/20 splits; every model fitted on train only; relevance >= 4."""
    res: dict = {}
    task = prog.add_task("held-out evaluation", total=len(datasets) * len(ctx.seeds))
    for name in datasets:
        r = load(name)
        for s in ctx.seeds:
            split = per_user(r, fraction=0.2, min_train=1, seed=s)
            users = scored_users(split)
            models, elbow = _models(ctx, split.train, s)
            for mname, m in models.items():
                t = time.perf_counter()
                rec = m.fit(split.train).recommend(users, ctx.k)
                wall = time.perf_counter() - t
                agg = ranking_metrics(rec, users, split.test, train=split.train, k=ctx.k,
                                      threshold=THRESHOLD)
                pu, su = per_user_ranking(rec, users, split.test, k=ctx.k, threshold=THRESHOLD)
                key = mname
                res.setdefault(name, {}).setdefault(key, []).append(
                    {"seed": s, "per_user": pu, "users": su, "agg": agg,
                     "elbow_k": elbow["elbow_k"] if "elbow" in key else None})
                extra = {"n_fallback_users": getattr(m, "n_fallback_users_", 0),
                         "n_clusters_after_fix": getattr(m, "n_clusters_", None),
                         "cluster_sizes": getattr(m, "cluster_sizes_", np.array([])).tolist()}
                if "elbow" in key:
                    extra.update(elbow)
                ctx.row(r, seed=s, model=key, params=m.get_params(), metrics=agg,
                        phase="evaluate", wall=wall, split=split.summary(), extra=extra)
            prog.advance(task)
    prog.remove_task(task)
    return res


def summarise_held_out(ctx: Context, res: dict) -> dict:
    """Pooled over seeds: mean over (user, seed) rows with a bootstrap over users, and the
    paired difference to popularity (same users, same splits) with its interval."""
    out: dict = {}
    mean = lambda a, b: float(np.mean(a))  # noqa: E731
    for name, models in res.items():
        pop = models["popularity"]
        for mname, runs in models.items():
            row = {"n_seeds": len(runs), "coverage": float(np.mean(
                [x["agg"]["catalog_coverage"] for x in runs])),
                "elbow_k": [x["elbow_k"] for x in runs if x["elbow_k"] is not None]}
            groups = np.concatenate([x["users"] for x in runs])
            # the paired difference needs the same scored users, in the same order
            assert all(np.array_equal(x["users"], y["users"]) for x, y in zip(runs, pop))
            for key in METRICS:
                v = np.concatenate([x["per_user"][key] for x in runs])
                row[key] = bootstrap_ci(mean, v, v, n_resamples=ctx.n_boot, seed=0,
                                        groups=groups)
                d = v - np.concatenate([x["per_user"][key] for x in pop])
                row["diff_" + key] = bootstrap_ci(mean, d, d, n_resamples=ctx.n_boot,
                                                  seed=0, groups=groups)
            out.setdefault(name, {})[mname] = row
    return out
