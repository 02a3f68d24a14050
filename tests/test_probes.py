"""The probes (kmrec_gpu.probes): each measure() on small data against a hand computation.

Nothing here installs a scikit-learn release: the isolated-environment path runs with
this interpreter given as a fake release, and the failed install runs pip with
--no-index, which fails at once and offline.
"""

from __future__ import annotations

import ast
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
import sklearn

from kmrec_gpu.cluster import KMeans
from kmrec_gpu.data.synthetic import synthetic
from kmrec_gpu.neural.estimators import PublishedMLP000
from kmrec_gpu.neural.seed000 import published_split
from kmrec_gpu.probes import Probe, plain
from kmrec_gpu.probes import seed002 as p002
from kmrec_gpu.probes.seed000 import Probe000Pair, file_order
from kmrec_gpu.probes.seed002 import Probe002Clusters
from kmrec_gpu.probes.seed004 import Probe004Clusters
from kmrec_gpu.ratings import RatingScale, from_arrays
from kmrec_gpu.splits import TTSplit, holdout

SCALE = RatingScale(0.5, 5.0, 0.5)


def all_split(r) -> TTSplit:
    """What split ``all`` gives: every rating in train, an empty test part."""
    return TTSplit(r, r.subset(np.zeros(len(r), dtype=bool)), method="all")


def check_contract(probe: Probe) -> None:
    """What the harness reads: flat finite numeric metrics, JSON details, plain params."""
    assert probe.metrics_ and all(isinstance(k, str) for k in probe.metrics_)
    for k, v in probe.metrics_.items():
        assert isinstance(v, (int, float)) and not isinstance(v, bool), (k, v)
        assert math.isfinite(v), (k, v)
    json.dumps(probe.details_, allow_nan=False)
    json.dumps(probe.get_params(), allow_nan=False)


def blocks():
    """Three groups of identical users: A (8 users) likes movies 1-5, B (8) likes 6-10,
    C (2) likes 1, 2, 3 and 6; plus a rating below 4 that is not a like."""
    rows = []
    for u in range(1, 9):
        rows += [(u, m, 4.0) for m in range(1, 6)]
    for u in range(9, 17):
        rows += [(u, m, 5.0) for m in range(6, 11)]
    for u in (17, 18):
        rows += [(u, m, 4.5) for m in (1, 2, 3, 6)]
    rows.append((1, 10, 2.0))
    u, m, y = zip(*rows)
    return from_arrays(np.array(u), np.array(m), np.array(y), scale=SCALE, name="blocks")


# -- seed 002 -----------------------------------------------------------------------------


def test_002_matrix_orders_columns_as_text():
    liked, users, items = p002.article_matrix(blocks())
    r = blocks()
    assert liked.shape == (18, 10) and liked.nnz == 8 * 5 + 8 * 5 + 2 * 4
    assert r.item_ids[items].tolist() == [1, 10, 2, 3, 4, 5, 6, 7, 8, 9]
    assert r.user_ids[users].tolist() == list(range(1, 19))


def test_002_procedure_by_hand():
    """K = 3 finds the three groups (inertia 0); C (2 users < 3) is dissolved and its
    users join A, whose movies cover 3 of their 4 (B's: 1 of 4)."""
    p = Probe002Clusters(n_clusters=3, min_cluster_size=3,
                         sklearn_versions=["project"]).measure(all_split(blocks()))
    check_contract(p)
    (rel,) = p.details_["releases"]
    assert rel["status"] == "ok" and rel["sklearn"] == sklearn.__version__
    assert rel["inertia"] == pytest.approx(0.0)
    assert sorted(rel["raw_sizes"]) == [2, 8, 8] and rel["n_clusters_raw"] == 3
    a = int(np.argmax(rel["movies"]))  # A after the move: movies 1-6
    assert rel["n_clusters"] == 2 and rel["users"][a] == 10 and rel["users"][1 - a] == 8
    assert rel["movies"][a] == 6 and rel["movies"][1 - a] == 5
    # the article's table for A: its 5 movies + movie 6 appended once per moved user
    assert rel["movies_article_rows"][a] == 7 and rel["movies_article_rows"][1 - a] == 5
    assert p.metrics_ == {"n_clusters": 2, "n_clusters_raw": 3, "n_clusters_min": 2,
                          "n_clusters_max": 2, "n_releases": 1, "n_releases_failed": 0,
                          "n_releases_matching_article": 0}
    assert p.details_["kmeans"] == {"n_clusters": 3, "init": "k-means++", "n_init": 10,
                                    "max_iter": 300, "random_state": 0}


@pytest.mark.data
def test_002_on_the_article_file_matches_the_reference(seed002):
    """The project's scikit-learn on the 447-row file gives what the former seed-cluster script
    gave (scikit-learn 1.9.1): 15 raw clusters, 7 after the fix; users per cluster exact."""
    p = Probe002Clusters(sklearn_versions=["project"]).measure(all_split(seed002))
    check_contract(p)
    (rel,) = p.details_["releases"]
    assert p.details_["matrix"]["n_users"] == 100 and p.details_["matrix"]["n_movies"] == 83
    assert p.details_["matrix"]["n_ones"] == 447
    if rel["sklearn"] != "1.9.1":
        pytest.skip(f"reference numbers are scikit-learn 1.9.1's, this is {rel['sklearn']}")
    assert rel["raw_sizes"] == [2, 12, 13, 1, 6, 9, 1, 1, 1, 7, 2, 1, 2, 12, 30]
    assert rel["users"] == [12, 19, 8, 10, 7, 12, 32]
    assert rel["movies"] == [18, 59, 32, 21, 24, 15, 32]
    assert rel["movies_article_rows"] == [18, 65, 33, 21, 24, 15, 32]
    assert p.metrics_["n_clusters"] == 7 and p.metrics_["n_clusters_raw"] == 15
    assert not rel["matches_article"]


def test_002_isolated_path_with_a_fake_release():
    """A release given as an interpreter (here this one) runs the child module by path,
    with the request as JSON on stdin; its labels are fixed and counted here."""
    p = Probe002Clusters(n_clusters=3, min_cluster_size=3,
                         sklearn_versions=["project", "fake-1.0"],
                         interpreters={"fake-1.0": sys.executable}).measure(all_split(blocks()))
    check_contract(p)
    proj, fake = p.details_["releases"]
    assert fake["version"] == "fake-1.0" and fake["status"] == "ok"
    assert fake["where"] == sys.executable and fake["sklearn"] == sklearn.__version__
    for k in ("n_clusters", "users", "movies", "raw_sizes", "movies_article_rows"):
        assert fake[k] == proj[k], k
    # the same scikit-learn twice is one release
    assert p.metrics_["n_releases"] == 1 and p.metrics_["n_releases_failed"] == 0


def test_002_failed_install_is_recorded_not_raised(tmp_path):
    kw = dict(n_clusters=3, min_cluster_size=3, sklearn_versions=["project", "0.0.1"],
              pip_args=["--no-index"], env_root=str(tmp_path))
    p = Probe002Clusters(**kw).measure(all_split(blocks()))
    check_contract(p)
    bad = p.details_["releases"][1]
    assert bad["status"] == "failed" and bad["stage"] == "install"
    assert "No matching distribution" in bad["error"] and bad["error"].startswith("ERROR:")
    assert p.metrics_["n_releases_failed"] == 1 and p.metrics_["n_releases"] == 1
    assert p.metrics_["n_clusters_min"] == p.metrics_["n_clusters_max"] == 2
    # a final failure is remembered: the next call does not run pip again
    env = p002.ensure_env("0.0.1", root=tmp_path, pip_args=["--no-index"])
    assert env.cached and not env.ok and env.error == bad["error"]
    assert not list(tmp_path.glob(".*partial*"))  # no half-built folder left behind


def test_002_release_that_cannot_run_is_recorded(tmp_path):
    p = Probe002Clusters(n_clusters=3, min_cluster_size=3,
                         sklearn_versions=["project", "broken"],
                         interpreters={"broken": str(tmp_path / "no-python")}
                         ).measure(all_split(blocks()))
    bad = p.details_["releases"][1]
    assert bad["status"] == "failed" and bad["stage"] == "run" and "cannot run" in bad["error"]


def test_002_parameters_and_requirements(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="project"):
        Probe002Clusters(sklearn_versions=["1.1.3"]).measure(all_split(blocks()))
    with pytest.raises(ValueError, match="release name"):
        p002.ensure_env("../x", root=tmp_path)
    assert p002.requirements("1.1.3") == ["scikit-learn==1.1.3", "numpy<2"]
    assert p002.requirements("1.4.1.post1") == ["scikit-learn==1.4.1.post1", "numpy<2"]
    assert p002.requirements("1.4.2") == ["scikit-learn==1.4.2"]
    assert p002.requirements("1.10.0") == ["scikit-learn==1.10.0"]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert p002.env_root() == tmp_path / "kmrec" / "sklearn-envs"
    params = Probe002Clusters().get_params()
    assert params["sklearn_versions"][0] == "project" and "kmeans_seed" in params
    assert "random_state" not in params  # the article's seed is fixed, not the cell's


def test_002_child_module_imports_only_numpy_and_sklearn():
    tree = ast.parse(p002.CHILD.read_text(encoding="utf-8"))
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
            for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert mods <= {"__future__", "json", "sys", "numpy", "sklearn"}, mods
    # in process (how "project" runs it); by path: test_002_isolated_path_with_a_fake_release
    from kmrec_gpu.probes.sklearn_kmeans import fit

    ans = fit({"shape": [4, 2], "rows": [0, 1, 2, 3], "cols": [0, 0, 1, 1],
               "kmeans": {"n_clusters": 2, "n_init": 3, "random_state": 0}})
    assert ans["labels"][0] == ans["labels"][1] != ans["labels"][2] == ans["labels"][3]
    assert ans["inertia"] == 0.0 and ans["sklearn"] == sklearn.__version__
    json.dumps(ans)


# -- seed 004 -----------------------------------------------------------------------------


def test_004_sizes_by_hand():
    r = synthetic(40, 30, 900, seed=3, min_user_ratings=10)
    p = Probe004Clusters(n_clusters=3, over=250, random_state=5).measure(all_split(r))
    check_contract(p)
    # the pivot by pandas: users x movies, holes filled with the user's mean
    df = pd.DataFrame({"u": r.users, "i": r.items, "y": r.ratings.astype(np.float64)})
    piv = df.pivot(index="u", columns="i", values="y")
    X = piv.apply(lambda row: row.fillna(row.mean()), axis=1).to_numpy()
    labels = KMeans(3, random_state=5).fit(X).labels_
    of_user = pd.Series(labels, index=piv.index)
    users = np.bincount(labels, minlength=3).tolist()
    ratings = df["u"].map(of_user).value_counts().reindex(range(3), fill_value=0).tolist()
    assert p.details_["users"] == users and p.details_["ratings"] == ratings
    assert sum(users) == 40 and sum(ratings) == 900
    assert p.details_["pivot_shape"] == [40, 30]
    assert p.metrics_["largest_cluster_users"] == max(users)
    assert p.metrics_["largest_cluster_ratings"] == max(ratings)
    assert p.metrics_["clusters_over_250_ratings"] == sum(x > 250 for x in ratings)
    assert p.metrics_["clusters_over_250_users"] == 0
    assert set(Probe004Clusters().measure(all_split(r)).metrics_) >= {
        "clusters_over_20000_ratings", "clusters_over_20000_users"}


# -- seed 000 -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    return synthetic(20, 15, 300, seed=1, min_user_ratings=10)


def test_000_file_order_inverts_the_seeds_split(tiny):
    full, how = file_order(published_split(tiny))
    assert "seed's split" in how
    for c in ("users", "items", "ratings", "timestamps"):
        assert np.array_equal(getattr(full, c), getattr(tiny, c)), c
    full, how = file_order(holdout(tiny, 0.2, seed=0))  # any other split: id order
    order = np.lexsort((tiny.item_ids[tiny.items], tiny.user_ids[tiny.users]))
    assert "sorted" in how and np.array_equal(full.items, tiny.items[order])


def test_000_pair_by_hand(tiny):
    split = published_split(tiny)
    row = 7  # any rating: the probe's pair is (that user, that movie)
    user, movie = int(tiny.user_ids[tiny.users[row]]), int(tiny.item_ids[tiny.items[row]])
    kw = dict(epochs=1, batch_size=32, genres="all", random_state=4, device="cpu")
    p = Probe000Pair(user=user, movie=movie, **kw).measure(split)
    check_contract(p)
    # by hand: the same network, and the feature row of the movie's first rating, sliced
    # one column off: its rating first, then the movie's flags without the last one
    m = PublishedMLP000(**kw).fit(split.train)
    first = int(np.flatnonzero(tiny.items == tiny.items[row])[0])
    feats = np.concatenate([[tiny.ratings[first]], tiny.genres[tiny.items[row]][:-1]])
    pred = float(m.predict_with_genres(np.array([tiny.users[row]]), np.array([tiny.items[row]]),
                                       feats[None, :].astype(np.float32))[0])
    true = float(tiny.ratings[row])
    assert p.metrics_["pair_prediction"] == pytest.approx(pred, abs=1e-6)
    assert p.metrics_["pair_accuracy"] == pytest.approx(1 - abs(pred - true) / true, abs=1e-6)
    assert p.metrics_["pair_true"] == true
    assert p.metrics_["pair_in_train"] == int(row not in set(_test_rows(tiny).tolist()))
    # the printed test loss: the mean over batches of 32 of each batch's MSE
    y, yhat = split.test.ratings.astype(np.float64), m.predict(split.test)
    batches = [((yhat[i:i + 32] - y[i:i + 32]) ** 2).mean() for i in range(0, y.size, 32)]
    assert p.metrics_["test_mse"] == pytest.approx(np.mean(batches), rel=1e-9)
    assert p.metrics_["test_rmse"] == pytest.approx(np.sqrt(np.mean((yhat - y) ** 2)))
    # the genre-only network (no user embedding) is scored the same way
    g = PublishedMLP000(user_dim=0, **kw).fit(split.train)
    gpred = float(g.predict_with_genres(np.array([tiny.users[row]]),
                                        np.array([tiny.items[row]]),
                                        feats[None, :].astype(np.float32))[0])
    assert p.metrics_["pair_prediction_genres_only"] == pytest.approx(gpred, abs=1e-6)
    assert p.details_["pair"]["features_row"] == first
    assert p.details_["networks"]["user+genres"]["predictions"]["misaligned (rating)"] == \
        p.metrics_["pair_prediction"]


def _test_rows(r):
    from kmrec_gpu.neural.seed000 import published_rows

    return published_rows(len(r))[1]


def test_000_needs_a_test_part_and_a_known_lead(tiny):
    with pytest.raises(ValueError, match="test part"):
        Probe000Pair(user=1, movie=1).measure(all_split(tiny))
    with pytest.raises(ValueError, match="lead"):
        Probe000Pair(lead="timestamp").measure(published_split(tiny))


def test_params_are_plain():
    assert plain({"a": (1, np.int64(2)), "b": np.array([0.5])}) == {"a": [1, 2], "b": [0.5]}
    assert Probe000Pair().get_params()["hidden"] == [64, 32]
    assert Probe004Clusters(random_state=3).get_params() == {
        "n_clusters": 7, "over": 20000, "random_state": 3, "backend": "cpu"}
