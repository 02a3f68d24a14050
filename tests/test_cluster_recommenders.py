"""The seeds' clustering recommenders: hand-made cases, training items kept out,
fallbacks counted, determinism, and the leakage check for recommenders (which must also
catch a recommender fitted on train + test)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from kmrec_gpu.data import load
from kmrec_gpu.leakage import (
    LeakageError,
    assert_no_recommender_leakage,
    check_recommender_leakage,
    fit_recommend_estimator,
    scored_users,
    with_test_rows,
)
from kmrec_gpu.metrics import ranking_metrics, top_k_items
from kmrec_gpu.models.genre_profiles import (
    GenreProfileClusters,
    allocate_slots,
    genre_profiles,
    movie_genre_clusters,
)
from kmrec_gpu.models.liked_clusters import LikedClusters, fix_small_clusters
from kmrec_gpu.models.pivot_clusters import PivotClusters, k_scan, mean_filled_pivot
from kmrec_gpu.models.popularity import GlobalPopularity, RandomRecommender
from kmrec_gpu.ratings import RatingScale, from_arrays
from kmrec_gpu.splits import per_user

HALF = RatingScale(0.5, 5.0, 0.5)


@pytest.fixture(scope="module")
def split():
    return per_user(load("synthetic-small"), fraction=0.2, seed=0)


MODELS = {
    "popularity": lambda: GlobalPopularity(),
    "random": lambda: RandomRecommender(random_state=3),
    "liked-clusters": lambda: LikedClusters(n_clusters=5, min_cluster_size=3),
    "genre-profiles": lambda: GenreProfileClusters(n_clusters=4),
}


# ---- fix_small_clusters -------------------------------------------------------------------
def test_fix_small_clusters_hand_made():
    liked_by = [{0, 1}, {0, 1}, {0, 1},  # cluster 0 (kept)
                {2, 3, 5, 7},            # cluster 1 (dissolved): covers 2/4 of cluster 2
                {2, 3, 4}, {2, 3, 4},    # cluster 2 (kept)
                {0, 5, 7},               # cluster 3 (dissolved): 1/3 of cluster 0; it
                                         # would be 2/3 of cluster 2 had that list grown
                                         # by user 3's movies, which the article's does not
                {0, 2},                  # cluster 4 (dissolved): a tie, lowest new number
                {1}]                     # not clustered
    labels = np.array([0, 0, 0, 1, 2, 2, 3, 4, -1])
    rows = [u for u, s in enumerate(liked_by) for _ in s]
    cols = [i for s in liked_by for i in sorted(s)]
    liked = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(9, 8))
    out = fix_small_clusters(labels, liked, min_size=2)
    assert out.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, -1]
    # min_size 1 keeps every cluster and changes nothing
    assert fix_small_clusters(labels, liked, 1).tolist() == labels.tolist()


@pytest.mark.parametrize("labels, min_size, msg", [
    (np.array([0, 1]), 0, "min_size must be a positive int, got 0"),
    (np.array([0, 1]), 5, "every cluster has fewer than min_size=5"),
    (np.array([0.0, 1.0]), 1, "labels must be a 1-d int array"),
    (np.array([0, 1, 1]), 1, "liked_csr has 2 rows"),
])
def test_fix_small_clusters_rejects_bad_input(labels, min_size, msg):
    with pytest.raises(ValueError, match=msg):
        fix_small_clusters(labels, sp.csr_matrix(np.eye(2)), min_size)


# ---- recommendations ---------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_recommendations_exclude_training_items_and_are_deterministic(split, name):
    users = scored_users(split)
    rec = MODELS[name]().fit(split.train).recommend(users, k=10)
    assert rec.shape == (users.size, 10) and rec.dtype.kind == "i"
    seen = split.train.to_csr(binary=True)
    for j, u in enumerate(users):
        got = rec[j][rec[j] >= 0]
        assert not set(got) & set(seen[u].indices), f"user {u} got a training item"
        assert len(set(got)) == got.size, "an item is listed twice"
    # the ranking metrics refuse training items too, so this also proves they are out
    ranking_metrics(rec, users, split.test, train=split.train, k=10, threshold=4.0)
    again = MODELS[name]().fit(split.train).recommend(users, k=10)
    np.testing.assert_array_equal(rec, again)


def test_random_recommender_depends_on_the_seed_and_not_on_the_batch(split):
    users = scored_users(split)
    a = RandomRecommender(random_state=0).fit(split.train)
    b = RandomRecommender(random_state=1).fit(split.train)
    assert (a.recommend(users) != b.recommend(users)).any()
    np.testing.assert_array_equal(a.recommend(users[5:6]), a.recommend(users)[5:6])


def _tiny():
    # users 0-2 like movies 0-1; user 3 likes movies 2-3; user 4 rates only 1.0s
    u = [0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    i = [0, 1, 0, 1, 0, 1, 4, 2, 3, 4, 0, 5]
    r = [5, 4, 4, 5, 4, 4, 1, 5, 4, 2, 1, 1]
    genres = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [1, 0]], dtype=bool)
    return from_arrays(np.array(u), np.array(i), np.array(r, float), scale=HALF,
                       genres=genres, genre_names=("A", "B"))


def test_users_without_liked_movies_fall_back_to_popularity_and_are_counted():
    t = _tiny()
    m = LikedClusters(n_clusters=2, min_cluster_size=1).fit(t)
    assert m.n_fallback_users_ == 1 and m.labels_[4] == -1
    pop = GlobalPopularity().fit(t)
    np.testing.assert_array_equal(m.recommend(np.array([4]), 3), pop.recommend(np.array([4]), 3))
    g = GenreProfileClusters(n_clusters=2).fit(t)
    assert g.n_fallback_users_ == 1


def test_liked_clusters_ranks_by_members_and_pads_only_when_asked():
    t = _tiny()
    m = LikedClusters(n_clusters=2, min_cluster_size=1).fit(t)
    # user 3's cluster (alone) liked only 2 and 3, both theirs: the list is padded with
    # popularity (movies 0, 1 liked by three users each), or -1 when padding is off
    assert m.recommend(np.array([3]), 3).tolist() == [[0, 1, 5]]
    bare = LikedClusters(n_clusters=2, min_cluster_size=1, pad_with_popularity=False).fit(t)
    assert bare.recommend(np.array([3]), 3).tolist() == [[-1, -1, -1]]


@pytest.mark.parametrize("profile, k, want", [
    ([0.5, 0.3, 0.2], 10, [5, 3, 2]),
    ([1, 1, 1], 10, [4, 3, 3]),          # equal remainders: lower genre first
    ([0.45, 0.45, 0.1], 3, [2, 1, 0]),   # quotas 1.35, 1.35, 0.3
    ([0.0, 2.0, 0.0], 4, [0, 4, 0]),
])
def test_allocate_slots_largest_remainder(profile, k, want):
    got = allocate_slots(np.array(profile), k)
    assert got.tolist() == want and got.sum() == k


def test_allocate_slots_rejects_an_empty_profile():
    with pytest.raises(ValueError, match="positive sum"):
        allocate_slots(np.zeros(3), 5)


def test_genre_recommender_follows_the_users_genre_shares():
    # 6 movies of genre A (0-5), 6 of genre B (6-11), movie 12 is both
    n_items = 13
    genres = np.zeros((n_items, 2), dtype=bool)
    genres[:6, 0] = genres[6:12, 1] = True
    genres[12] = True
    # user 0 likes A 3 times and B once (3:1); users 1-3 like everything from 6 up;
    # user 4 likes movies 3-5 (A), so genre A has candidates beyond movie 12
    u = [0, 0, 0, 0] + [v for v in (1, 2, 3) for _ in range(7)] + [4, 4, 4]
    i = [0, 1, 2, 6] + [j for _ in (1, 2, 3) for j in range(6, 13)] + [3, 4, 5]
    t = from_arrays(np.array(u), np.array(i), np.full(len(u), 4.0), scale=HALF,
                    item_vocab=np.arange(n_items), genres=genres, genre_names=("A", "B"))
    prof = genre_profiles(t)
    np.testing.assert_allclose(prof[0], [0.75, 0.25])
    m = GenreProfileClusters(n_clusters=1).fit(t)
    rec = m.recommend(np.array([0]), 4)[0]
    # 3 slots for A: 12 (liked by 3), then 3 and 4 (liked by 1; lower codes first);
    # 1 slot for B: 12 is taken already, so 7; listed by cluster popularity
    assert rec.tolist() == [7, 12, 3, 4]


def test_allocate_slots_splits_rows_as_it_splits_one_profile():
    rng = np.random.default_rng(3)
    prof = rng.integers(0, 4, (300, 7)).astype(float)
    prof[prof.sum(axis=1) == 0, 0] = 1.0
    for k in (1, 3, 10):
        rows = allocate_slots(prof, k)
        np.testing.assert_array_equal(rows, [allocate_slots(p, k) for p in prof])
        assert (rows.sum(axis=1) == k).all()


@pytest.mark.parametrize("name", ["popularity", "liked-clusters"])
def test_shared_rankings_give_the_dense_top_k(split, name):
    """Lists walked from a ranking sorted once per cluster equal a top-k over each user's
    dense row of scores (the definition), on real data where scores tie."""
    m = MODELS[name]().fit(split.train)
    users = np.arange(split.train.n_users)
    if name == "popularity":
        dense = np.tile(m.scores_, (users.size, 1))
    else:
        pop = m.popularity_.scores_
        fin = np.isfinite(pop)
        frac = np.where(fin, 0.5 * pop / (pop[fin].max() + 1.0), -np.inf)
        counts = m.cluster_item_counts_[np.maximum(m.labels_, 0)]
        dense = np.where(m.labels_[:, None] >= 0, np.where(counts > 0, counts + frac, frac),
                         frac)
    want = top_k_items(dense, 10, exclude=m.seen_)
    np.testing.assert_array_equal(m.recommend(users, 10), want)


def _genre_lists_per_user(m, users, k):
    """The genre recommender's rule, user by user, as a reference for the batched walk."""
    out = np.full((users.size, k), -1)
    for j, u in enumerate(users):
        taken = np.zeros(m.n_items_, dtype=bool)
        taken[m.seen_.indices[m.seen_.indptr[u]:m.seen_.indptr[u + 1]]] = True
        picks = []
        c = m.labels_[u]
        if c >= 0:
            sc = m.cluster_scores_[c]
            for g, n in enumerate(allocate_slots(m.profiles_[u], k)):
                cand = m.genre_items_[g]
                cand = cand[~taken[cand]]
                best = cand[np.lexsort((cand, -sc[cand]))[:n]]
                taken[best] = True
                picks.extend(best.tolist())
            picks.sort(key=lambda i: (-sc[i], i))
        for i in m.pop_order_:
            if len(picks) >= k:
                break
            if not taken[i]:
                taken[i] = True
                picks.append(int(i))
        out[j, :len(picks)] = picks
    return out


def test_genre_walk_matches_the_rule_user_by_user(split):
    m = GenreProfileClusters(n_clusters=4).fit(split.train)
    users = np.arange(split.train.n_users)
    for k in (1, 5, 10):
        np.testing.assert_array_equal(m.recommend(users, k), _genre_lists_per_user(m, users, k))


def test_bad_input_is_named():
    m = GlobalPopularity().fit(_tiny())
    with pytest.raises(ValueError, match=r"user codes must lie in \[0, 5\)"):
        m.recommend(np.array([7]))
    with pytest.raises(ValueError, match="k must be a positive int, got 0"):
        m.recommend(np.array([0]), 0)
    with pytest.raises(ValueError, match="n_clusters=9 but only 4 users"):
        LikedClusters(n_clusters=9).fit(_tiny())
    with pytest.raises(RuntimeError, match="not fitted"):
        LikedClusters().recommend(np.array([0]))


# ---- leakage -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_no_recommender_reads_test_ratings(split, name):
    rep = assert_no_recommender_leakage(fit_recommend_estimator(MODELS[name]), split)
    assert rep.n_changed_ratings == len(split.test) and rep.n_users > 50


@pytest.mark.parametrize("name", ["popularity", "liked-clusters", "genre-profiles"])
def test_the_check_catches_a_recommender_fitted_on_train_plus_test(split, name):
    def leaky(s):
        return MODELS[name]().fit(with_test_rows(s)).recommend(scored_users(s), 10)

    rep = check_recommender_leakage(leaky, split)
    assert rep.leaks and rep.n_slots_moved > 0
    with pytest.raises(LeakageError, match="users' recommendation lists moved"):
        assert_no_recommender_leakage(leaky, split)


def test_pivot_clusters_do_not_see_test_ratings(split):
    def labels(s):
        return PivotClusters(n_clusters=3).fit(s.train).labels_

    rep = check_recommender_leakage(labels, split)
    assert not rep.leaks


# ---- pivot and movie clusters --------------------------------------------------------------
def test_mean_filled_pivot_and_sizes():
    t = _tiny()
    X, users, items = mean_filled_pivot(t)
    assert X.shape == (5, 6) and users.tolist() == [0, 1, 2, 3, 4]
    assert X[0, 2] == pytest.approx(4.5) and X[0, 0] == 5.0
    m = PivotClusters(n_clusters=2).fit(t)
    assert sum(m.sizes_["users"]) == 5 and sum(m.sizes_["ratings"]) == len(t)
    scan = k_scan(X, [2, 3])
    assert [s["k"] for s in scan] == [2, 3] and scan[0]["sse"] >= scan[1]["sse"]


def test_movie_genre_clusters_cover_every_movie():
    t = _tiny()
    km = movie_genre_clusters(t, n_clusters=3)
    assert km.labels_.shape == (t.n_items,)


# ---- real data -----------------------------------------------------------------------------
def test_seed002_fix_leaves_only_clusters_of_six_or_more(seed002):
    m = LikedClusters(n_clusters=15, min_cluster_size=6, n_init=10).fit(seed002)
    assert m.cluster_sizes_.sum() == seed002.n_rated_users == 100
    assert (m.cluster_sizes_ >= 6).all() and m.n_fallback_users_ == 0


def test_ml_small_pivot_shape(ml_small):
    X, users, items = mean_filled_pivot(ml_small)
    assert X.shape == (610, 9724)
