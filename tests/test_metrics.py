"""Every metric against hand-computed cases, and against scikit-learn where it has one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import mean_absolute_error, mean_squared_error, ndcg_score

from kmrec_gpu.metrics import (
    bootstrap_ci,
    exact_match,
    mae,
    ranking_metrics,
    rating_metrics,
    relative_accuracy,
    rmse,
    top_k_items,
    within,
)
from kmrec_gpu.ratings import RatingScale, from_arrays

Y = np.array([4.0, 3.0, 5.0, 1.0])
P = np.array([3.5, 3.2, 4.1, 2.6])


def test_rating_metrics_by_hand():
    # errors -0.5, 0.2, -0.9, 1.6
    assert rmse(Y, P) == pytest.approx(math.sqrt((0.25 + 0.04 + 0.81 + 2.56) / 4))
    assert mae(Y, P) == pytest.approx((0.5 + 0.2 + 0.9 + 1.6) / 4)
    # snapped 3.5, 3.0, 4.0, 2.5 -> only 3.0 matches
    assert exact_match(Y, P) == pytest.approx(0.25)
    assert within(Y, P, 0.5) == pytest.approx(0.5)  # 0.5 is inclusive
    assert within(Y, P, 1.0) == pytest.approx(0.75)
    assert relative_accuracy(Y, P) == pytest.approx(
        np.mean([1 - 0.5 / 4, 1 - 0.2 / 3, 1 - 0.9 / 5, 1 - 1.6 / 1]))


def test_rating_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(1, 11, 500) / 2
    p = y + rng.normal(0, 0.8, 500)
    m = rating_metrics(y, p)
    assert m["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, p)))
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["n"] == 500


def test_seed000_accuracy_reading():
    # CLAIMS.md: predictions 3.2476 and 3.9744 for a true 4.0 give 81.19% and 99.36%
    assert relative_accuracy([4.0], [3.2476]) == pytest.approx(0.8119, abs=1e-4)
    assert relative_accuracy([4.0], [3.9744]) == pytest.approx(0.9936, abs=1e-4)


def test_relative_accuracy_skips_zero_truth():
    assert relative_accuracy([0.0, 2.0], [1.0, 1.0]) == pytest.approx(0.5)
    assert math.isnan(relative_accuracy([0.0], [1.0]))


def test_exact_match_clips_and_uses_scale():
    assert exact_match([5.0, 0.5, 1.0], [7.3, -2.0, -2.0]) == pytest.approx(2 / 3)
    whole = RatingScale(1.0, 5.0, 1.0)
    assert exact_match([4.0], [3.6], whole) == 1.0
    assert exact_match([4.0], [3.4], whole) == 0.0


@pytest.mark.parametrize("y, p, msg", [
    ([1.0, 2.0], [1.0], "^y_true has 2 values but y_pred has 1$"),
    ([], [], "^cannot score an empty set of ratings$"),
    ([1.0, np.nan], [1.0, 2.0], r"y_true\[1\]"),
    ([1.0, 2.0], [np.inf, 2.0], r"y_pred\[0\]"),
])
def test_rating_metrics_reject_bad_input(y, p, msg):
    with pytest.raises(ValueError, match=msg):
        rating_metrics(y, p)


# ---- ranking ---------------------------------------------------------------------------

def _ratings(u, i, r, n_users=3, n_items=8):
    rat = from_arrays(np.asarray(u), np.asarray(i), np.asarray(r, dtype=np.float32),
                      scale=RatingScale(0.5, 5.0, 0.5),
                      item_vocab=np.arange(n_items))
    return rat


def _split():
    # users 0, 1, 2 over items 0..7; vocabularies shared through from_arrays(item_vocab)
    train = _ratings([0, 0, 1, 2], [0, 1, 2, 3], [4, 4, 4, 4])
    test = _ratings([0, 0, 0, 1, 2], [2, 5, 6, 4, 7], [5, 2, 4, 5, 3])
    return train, test


def test_ranking_metrics_by_hand():
    train, test = _split()
    recs = np.array([
        [2, 3, 6],    # user 0: relevant {2, 5, 6}; hits at 1 and 3
        [0, 1, 4],    # user 1: relevant {4}; hit at 3
        [0, 1, 2],    # user 2: relevant {7}; no hit
    ])
    m = ranking_metrics(recs, np.array([0, 1, 2]), test, k=3)
    assert m["precision@3"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert m["recall@3"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    d = 1 / np.log2(np.arange(2, 5))
    ndcg0 = (d[0] + d[2]) / d.sum()
    ndcg1 = d[2] / d[0]
    assert m["ndcg@3"] == pytest.approx((ndcg0 + ndcg1 + 0) / 3)
    ap0 = (1 / 1 + 2 / 3) / 3
    ap1 = (1 / 3) / 1
    assert m["map@3"] == pytest.approx((ap0 + ap1) / 3)
    assert m["hit_rate@3"] == pytest.approx(2 / 3)
    # distinct recommended items {0,1,2,3,4,6} over 4 items... without train: vocabulary 8
    assert m["catalog_coverage"] == pytest.approx(6 / 8)
    assert m["n_users"] == 3 and m["n_skipped_users"] == 0


def test_ranking_threshold_and_skipped_users():
    train, test = _split()
    recs = np.array([[2, 6, 5], [4, 0, 1], [7, 0, 1]])
    # threshold 4: user 0 relevant {2, 6}; user 1 {4}; user 2 (rated 3) has none -> skipped
    m = ranking_metrics(recs, np.array([0, 1, 2]), test, k=3, threshold=4.0)
    assert m["n_users"] == 2 and m["n_skipped_users"] == 1
    assert m["recall@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx(1.0)
    assert m["map@3"] == pytest.approx(1.0)


def test_ranking_refuses_training_items():
    train, test = _split()
    with pytest.raises(ValueError, match="training ratings"):
        ranking_metrics(np.array([[0, 2, 5]]), np.array([0]), test, train=train, k=3)


def test_ranking_padding_counts_as_miss():
    train, test = _split()
    m = ranking_metrics(np.array([[2, -1, -1]]), np.array([0]), test, train=train, k=3)
    assert m["precision@3"] == pytest.approx(1 / 3)
    assert m["catalog_coverage"] == pytest.approx(1 / 4)  # 4 items have training ratings


def test_top_k_excludes_training_items_and_breaks_ties_by_code():
    train, _ = _split()
    scores = np.tile(np.arange(8, dtype=float), (3, 1))
    scores[2, :] = 1.0  # all tied
    top = top_k_items(scores, 3, exclude=train.to_csr())
    assert top[0].tolist() == [7, 6, 5]
    assert top[1].tolist() == [7, 6, 5]
    assert top[2].tolist() == [0, 1, 2] and 3 not in top[2]
    excl = sp.csr_matrix(np.ones((1, 8)))
    excl[0, 4] = 0
    excl.eliminate_zeros()
    assert top_k_items(np.ones((1, 8)), 3, exclude=excl).tolist() == [[4, -1, -1]]


def _top_k_by_full_sort(scores, k, exclude=None):
    """The definition: a full sort by (score descending, item code), -inf/NaN/excluded out."""
    s = np.array(scores, dtype=np.float64)
    if exclude is not None:
        ex = sp.csr_matrix(exclude)
        s[np.repeat(np.arange(ex.shape[0]), np.diff(ex.indptr)), ex.indices] = -np.inf
    out = np.full((s.shape[0], k), -1)
    for j, row in enumerate(np.where(np.isnan(s), -np.inf, s)):
        it = np.lexsort((np.arange(row.size), -row))
        it = it[row[it] > -np.inf][:k]
        out[j, :it.size] = it
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_top_k_matches_a_full_sort_with_ties_at_the_cut(dtype):
    rng = np.random.default_rng(7)
    for _ in range(200):
        n, m, k = int(rng.integers(1, 5)), int(rng.integers(1, 40)), int(rng.integers(1, 12))
        s = rng.integers(0, 3, (n, m)).astype(float)  # few values: ties everywhere
        if dtype is not np.int64:
            s[rng.random((n, m)) < 0.1] = np.nan
            s[rng.random((n, m)) < 0.1] = -np.inf
            s[rng.random((n, m)) < 0.05] = np.inf
        ex = sp.csr_matrix(rng.random((n, m)) < 0.3)
        for e in (None, ex):
            np.testing.assert_array_equal(top_k_items(s.astype(dtype), k, exclude=e),
                                          _top_k_by_full_sort(s, k, e))


def test_top_k_tie_at_the_cut_goes_to_the_lower_code():
    # 40 items tied behind one better item: a partial sort may take any two of them
    scores = np.ones((1, 41))
    scores[0, 20] = 2.0
    assert top_k_items(scores, 3).tolist() == [[20, 0, 1]]


def test_ndcg_matches_sklearn():
    rng = np.random.default_rng(1)
    n_users, n_items, k = 40, 30, 10
    u, i = np.nonzero(rng.random((n_users, n_items)) < 0.2)
    test = _ratings(u, i, np.full(u.size, 4.0), n_users=n_users, n_items=n_items)
    scores = rng.random((n_users, n_items))  # no ties
    users = np.unique(u)
    rec = top_k_items(scores[test.user_ids[users]], k)
    ours = ranking_metrics(rec, users, test, k=k)["ndcg@10"]
    truth = np.zeros((users.size, n_items))
    truth[np.searchsorted(users, test.users), test.items] = 1
    # sklearn's vocabulary is the raw id order; ours is the same (items 0..n-1)
    ref = ndcg_score(truth, scores[test.user_ids[users]], k=k)
    assert ours == pytest.approx(ref)


# ---- bootstrap -------------------------------------------------------------------------

def test_bootstrap_interval_contains_point_and_is_seeded():
    rng = np.random.default_rng(2)
    y = rng.integers(1, 11, 2000) / 2
    p = y + rng.normal(0, 1.0, 2000)
    a = bootstrap_ci(rmse, y, p, n_resamples=300, seed=0)
    b = bootstrap_ci(rmse, y, p, n_resamples=300, seed=0)
    c = bootstrap_ci(rmse, y, p, n_resamples=300, seed=1)
    assert a == b and a != c
    point, lo, hi = a
    assert lo < point < hi
    # the standard error of an RMSE near 1 on 2000 rows is about 0.016
    assert 0.03 < hi - lo < 0.12


def test_grouped_bootstrap_is_wider_for_correlated_groups():
    rng = np.random.default_rng(3)
    n_groups, per = 100, 20
    g = np.repeat(np.arange(n_groups), per)
    offset = rng.normal(0, 1.0, n_groups)[g]  # a shared error per group
    y = np.full(g.size, 3.0)
    p = y + offset + rng.normal(0, 0.1, g.size)
    _, lo_r, hi_r = bootstrap_ci(mae, y, p, n_resamples=300, seed=0)
    pt, lo_g, hi_g = bootstrap_ci(mae, y, p, n_resamples=300, seed=0, groups=g)
    assert lo_g < pt < hi_g
    assert (hi_g - lo_g) > 2 * (hi_r - lo_r)


def test_bootstrap_rejects_bad_arguments():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(rmse, [1, 2], [1, 2], confidence=1.5)
    with pytest.raises(ValueError, match="groups"):
        bootstrap_ci(rmse, [1, 2], [1, 2], groups=[1])


# ---- ranking edges (mutation testing: results/mutation.md) ------------------------------

def test_ranking_defaults_to_k_10():
    train, test = _split()
    recs = np.tile(np.arange(8), (3, 1))[:, :8]
    m = ranking_metrics(recs, np.array([0, 1, 2]), test)
    assert "ndcg@10" in m and "precision@10" in m
    # 8 columns for k = 10: the two missing ranks are misses, not items
    assert m["precision@10"] == pytest.approx((3 / 10 + 1 / 10 + 1 / 10) / 3)


def test_short_lists_are_padded_with_misses():
    train, test = _split()
    # two columns for k = 4: user 0's relevant {2, 5, 6}; item 1 (what a +1 pad would
    # recommend) is relevant to no one here, so the pad must be a miss, not item 1 or 0
    short = ranking_metrics(np.array([[2, 5]]), np.array([0]), test, k=4)
    padded = ranking_metrics(np.array([[2, 5, -1, -1]]), np.array([0]), test, k=4)
    assert short == padded and short["precision@4"] == pytest.approx(2 / 4)
    test1 = _ratings([0, 0], [1, 2], [5, 5])
    m = ranking_metrics(np.array([[2]]), np.array([0]), test1, k=2)
    assert m["precision@2"] == pytest.approx(1 / 2) and m["recall@2"] == pytest.approx(1 / 2)


def test_a_single_relevant_pair_is_found():
    test = _ratings([0], [3], [5])
    m = ranking_metrics(np.array([[3]]), np.array([0]), test, k=1)
    assert m["precision@1"] == 1.0 and m["ndcg@1"] == 1.0 and m["map@1"] == 1.0


def test_no_relevant_rows_scores_no_user():
    train, test = _split()
    recs = np.array([[2, 6, 5], [4, 0, 1], [7, 0, 1]])
    m = ranking_metrics(recs, np.array([0, 1, 2]), test, k=3, threshold=5.5)
    assert m["n_users"] == 0 and m["n_skipped_users"] == 3
    assert math.isnan(m["ndcg@3"]) and math.isnan(m["precision@3"])
    assert m["catalog_coverage"] == 0.0  # skipped users' lists are not the catalogue's


def test_a_rating_at_the_threshold_is_relevant():
    test = _ratings([0, 0], [1, 2], [4.0, 3.5])
    m = ranking_metrics(np.array([[1, 2]]), np.array([0]), test, k=2, threshold=4.0)
    assert m["recall@2"] == 1.0 and m["precision@2"] == pytest.approx(1 / 2)


def test_coverage_counts_only_scored_users_lists_and_a_zero_catalogue_is_nan():
    train, test = _split()
    recs = np.array([[2, 6, 5], [4, 0, 1], [7, 3, 1]])  # user 2 has nothing >= 4: skipped
    m = ranking_metrics(recs, np.array([0, 1, 2]), test, k=3, threshold=4.0)
    assert m["catalog_coverage"] == pytest.approx(6 / 8)  # {0, 1, 2, 4, 5, 6}; not 3 or 7
    m0 = ranking_metrics(recs, np.array([0, 1, 2]), test, k=3, threshold=4.0, catalog_size=0)
    assert math.isnan(m0["catalog_coverage"])


def test_ranking_rejects_malformed_lists_with_their_shapes():
    train, test = _split()
    with pytest.raises(ValueError, match=r"^recommendations must be \(len\(users\), k\); "
                                         r"got \(3,\) for 3 users$"):
        ranking_metrics(np.array([2, 6, 5]), np.array([0, 1, 2]), test, k=3)
    with pytest.raises(ValueError, match=r"got \(1, 3\) for 2 users$"):
        ranking_metrics(np.array([[2, 6, 5]]), np.array([0, 1]), test, k=3)
    with pytest.raises(ValueError, match=r"^k must be >= 1, got 0$"):
        ranking_metrics(np.array([[2]]), np.array([0]), test, k=0)
    assert ranking_metrics(np.array([[2]]), np.array([0]), test, k=1)["precision@1"] == 1.0
    with pytest.raises(ValueError, match=r"^recommended item code 8 outside \[0, 8\)$"):
        ranking_metrics(np.array([[8]]), np.array([0]), test, k=1)
    with pytest.raises(ValueError, match=r"^user code 0 was recommended item code 0, which "
                                         r"is in their training ratings; exclude training "
                                         r"items from the candidates \(top_k_items\(\.\.\., "
                                         r"exclude=train\.to_csr\(\)\)\)$"):
        ranking_metrics(np.array([[0]]), np.array([0]), test, train=train, k=1)


def test_per_user_ranking_defaults_to_k_10():
    from kmrec_gpu.metrics.ranking import per_user_ranking

    _, test = _split()
    per_user, users = per_user_ranking(np.tile(np.arange(8), (3, 1)), np.array([0, 1, 2]), test)
    np.testing.assert_allclose(per_user["precision"], [3 / 10, 1 / 10, 1 / 10])


def test_top_k_items_takes_integer_scores_and_names_bad_shapes():
    scores = np.array([[3, 1, 2], [0, 5, 4]])
    np.testing.assert_array_equal(top_k_items(scores, 2), [[0, 2], [1, 2]])
    for other in (np.float16, np.bool_, np.uint8):  # made float64 for the ranking kernel
        np.testing.assert_array_equal(top_k_items(scores.astype(other), 1),
                                      top_k_items(scores.astype(other).astype(float), 1))
    with pytest.raises(ValueError, match=r"^scores must be 2-d \(users x items\), got shape "
                                         r"\(3,\)$"):
        top_k_items(np.ones(3), 1)
    with pytest.raises(ValueError, match=r"^k must be >= 1, got 0$"):
        top_k_items(scores, 0)
    with pytest.raises(ValueError, match=r"^exclude has shape \(1, 3\), scores \(2, 3\)$"):
        top_k_items(scores, 1, exclude=sp.csr_matrix(np.ones((1, 3))))


def test_rating_metrics_is_exactly_these_figures():
    m = rating_metrics(Y, P)
    assert m == pytest.approx({
        "rmse": math.sqrt((0.25 + 0.04 + 0.81 + 2.56) / 4), "mae": (0.5 + 0.2 + 0.9 + 1.6) / 4,
        "exact_match": 0.25, "within_0.5": 0.5, "within_1.0": 0.75,
        "relative_accuracy": np.mean([1 - 0.5 / 4, 1 - 0.2 / 3, 1 - 0.9 / 5, 1 - 1.6 / 1]),
        "n": 4})
    assert list(m) == ["rmse", "mae", "exact_match", "within_0.5", "within_1.0",
                       "relative_accuracy", "n"]
    # errors 1.2 and 0.8: outside and inside 1.0; both outside 0.5
    far = rating_metrics([1.0, 4.0], [2.2, 3.2])
    assert (far["within_0.5"], far["within_1.0"]) == (0.0, 0.5)


def test_rating_metrics_snaps_to_the_given_scale():
    y, p = [4.0, 2.0], [3.6, 2.3]
    assert rating_metrics(y, p)["exact_match"] == 0.0  # half stars: 3.5, 2.5
    whole = RatingScale(1, 5, 1)
    assert rating_metrics(y, p, scale=whole)["exact_match"] == 1.0  # whole stars: 4, 2
    assert exact_match(y, p, whole) == 1.0 and exact_match(y, p) == 0.0
