"""kmrec_gpu.leakage on its own: the rating and the top-k checks against pipelines whose
leaks are known — a leak far below any float tolerance, a prediction turning NaN, a
recommender that reads test rows — and the reports' counts. Every model's own no-leak
test rests on these functions."""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu.leakage import (
    LeakageError,
    assert_no_leakage,
    assert_no_recommender_leakage,
    check_leakage,
    check_recommender_leakage,
    fit_predict_estimator,
    fit_recommend_estimator,
    move_test_items,
    perturb_test,
    scored_users,
    with_test_rows,
)
from kmrec_gpu.splits import holdout
from tests.test_splits import make_ratings


@pytest.fixture(scope="module")
def split():
    return holdout(make_ratings(), 0.2, seed=0)


def _test_sum(s):
    return float(s.test.ratings.sum())


def test_a_leak_far_below_float_tolerance_is_a_leak(split):
    rep = check_leakage(lambda s: np.full(len(s.test), 3.0) + 1e-13 * _test_sum(s), split)
    assert rep.leaks and rep.n_moved == len(split.test)
    assert 0 < rep.max_abs_delta < 1e-9


@pytest.mark.parametrize("flip", ["to_nan", "from_nan"])
def test_a_prediction_turning_nan_or_back_is_a_leak(split, flip):
    first = _test_sum(split)

    def pipeline(s):
        out = np.full(len(s.test), 3.0)
        nan_now = (_test_sum(s) == first) == (flip == "from_nan")
        out[0] = np.nan if nan_now else 3.0
        return out

    rep = check_leakage(pipeline, split)
    assert rep.leaks and rep.n_moved == 1 and rep.max_abs_delta == 0.0
    with pytest.raises(LeakageError, match=r"^1 of \d+ test predictions moved"):
        assert_no_leakage(pipeline, split)


def test_nan_in_both_runs_and_equal_values_do_not_move(split):
    def pipeline(s):
        out = np.full(len(s.test), 3.0)
        out[:3] = np.nan
        return out

    rep = assert_no_leakage(pipeline, split, seed=5)
    assert not rep.leaks and rep.n_moved == 0 and rep.max_abs_delta == 0.0
    assert (rep.n_rows, rep.n_changed_ratings) == (len(split.test), len(split.test))


def test_a_shape_change_is_an_error(split):
    first = _test_sum(split)
    with pytest.raises(LeakageError, match=r"^prediction shape changed: \(\d+,\) -> \(1,\)$"):
        check_leakage(lambda s: np.zeros(len(s.test) if _test_sum(s) == first else 1), split)


def test_the_report_message_names_counts_and_the_largest_move(split):
    first = _test_sum(split)

    def pipeline(s):
        out = np.zeros(len(s.test))
        if _test_sum(s) != first:
            out[:2] = [0.25, -0.5]
        return out

    with pytest.raises(LeakageError, match=r"^2 of \d+ test predictions moved \(max \|delta\| "
                                          r"0\.5\) when only the test ratings changed: the "
                                          r"model reads test ratings$"):
        assert_no_leakage(pipeline, split)


def test_perturbation_is_seeded_and_touches_test_ratings_only(split):
    a, b, c = perturb_test(split, 0), perturb_test(split, 0), perturb_test(split, 1)
    np.testing.assert_array_equal(a.test.ratings, b.test.ratings)
    assert (a.test.ratings != c.test.ratings).any()
    assert (a.test.ratings != split.test.ratings).all()
    # every allowed value other than the current one is drawn somewhere
    assert set(a.test.ratings.tolist()) == set(split.test.scale.values.tolist())
    assert perturb_test(split).test.ratings.tolist() == a.test.ratings.tolist()


def test_fit_predict_estimator_fits_on_train_and_predicts_test(split):
    seen = {}

    class Probe:
        def fit(self, train):
            seen["n_train"] = len(train)
            return self

        def predict(self, test):
            return [float(len(test))] * len(test)

    out = fit_predict_estimator(Probe)(split)
    assert seen["n_train"] == len(split.train) and out.tolist() == [len(split.test)] * len(
        split.test)


# -- top-k ----------------------------------------------------------------------------------


def test_scored_users_are_the_users_with_a_test_row(split):
    expect = sorted(set(split.test.users.tolist()))
    assert scored_users(split).tolist() == expect


def test_moving_test_items_keeps_users_and_ratings_and_changes_every_item(split):
    m = move_test_items(split, seed=0)
    assert (m.test.items != split.test.items).all()
    assert m.test.items.min() >= 0 and m.test.items.max() < split.test.n_items
    np.testing.assert_array_equal(m.test.users, split.test.users)
    np.testing.assert_array_equal(m.test.ratings, split.test.ratings)
    np.testing.assert_array_equal(move_test_items(split).test.items, m.test.items)
    assert (move_test_items(split, seed=1).test.items != m.test.items).any()


def test_with_test_rows_is_train_then_test(split):
    both = with_test_rows(split)
    n = len(split.train)
    assert len(both) == n + len(split.test)
    np.testing.assert_array_equal(both.users[n:], split.test.users)
    np.testing.assert_array_equal(both.items[:n], split.train.items)
    np.testing.assert_array_equal(both.ratings[n:], split.test.ratings)
    np.testing.assert_array_equal(both.timestamps[n:], split.test.timestamps)


def _recommend_popular(rows):
    def fit_recommend(s):
        r = rows(s)
        counts = np.bincount(r.items, minlength=s.train.n_items)
        top = np.argsort(-counts, kind="stable")[:5]
        return np.tile(top, (len(scored_users(s)), 1))
    return fit_recommend


def test_a_recommender_fitted_on_test_rows_is_caught(split):
    leaky = _recommend_popular(with_test_rows)
    rep = check_recommender_leakage(leaky, split)
    assert rep.leaks and rep.n_users_moved == rep.n_users == len(scored_users(split))
    assert rep.n_slots_moved >= rep.n_users and rep.n_changed_ratings == len(split.test)
    with pytest.raises(LeakageError, match=r"^\d+ of \d+ users' recommendation lists moved "
                                          r"\(\d+ slots\) when only the test rows changed"):
        assert_no_recommender_leakage(leaky, split)


def test_a_recommender_fitted_on_train_passes(split):
    rep = assert_no_recommender_leakage(_recommend_popular(lambda s: s.train), split)
    assert not rep.leaks and rep.n_slots_moved == 0 and rep.n_users == len(scored_users(split))


def test_one_moved_slot_of_one_user_is_counted(split):
    first = _test_sum(split)

    def fit_recommend(s):
        out = np.zeros((len(scored_users(s)), 3), dtype=np.int64)
        if _test_sum(s) != first:
            out[1, 2] = 7
        return out

    rep = check_recommender_leakage(fit_recommend, split)
    assert (rep.n_users_moved, rep.n_slots_moved) == (1, 1)
    first_shape = len(scored_users(split))
    with pytest.raises(LeakageError, match=r"^recommendation shape changed"):
        check_recommender_leakage(
            lambda s: np.zeros((first_shape if _test_sum(s) == first else 1, 3)), split)


def test_fit_recommend_estimator_asks_for_the_scored_users_at_k(split):
    calls = {}

    class Probe:
        def fit(self, train):
            calls["n_train"] = len(train)
            return self

        def recommend(self, users, k):
            calls["users"], calls["k"] = list(users), k
            return np.zeros((len(users), k), dtype=np.int64)

    out = fit_recommend_estimator(Probe, k=4)(split)
    assert out.shape == (len(scored_users(split)), 4)
    assert calls == {"n_train": len(split.train), "users": scored_users(split).tolist(),
                     "k": 4}
    assert fit_recommend_estimator(Probe)(split).shape[1] == 10


def test_the_check_perturbs_with_the_seed_it_is_given(split):
    def total(s):  # moves by exactly the change in the test ratings' sum
        return np.full(len(s.test), _test_sum(s))

    for seed in (0, 3):
        expect = abs(_test_sum(perturb_test(split, seed)) - _test_sum(split))
        assert check_leakage(total, split, seed=seed).max_abs_delta == pytest.approx(expect)
    assert check_leakage(total, split) == check_leakage(total, split, seed=0)
    with pytest.raises(LeakageError) as e:
        assert_no_leakage(total, split, seed=3)
    assert f"{abs(_test_sum(perturb_test(split, 3)) - _test_sum(split)):.3g}" in str(e.value)


def test_moved_test_items_move_by_different_steps(split):
    m = move_test_items(split, seed=0)
    steps = (m.test.items.astype(int) - split.test.items.astype(int)) % split.test.n_items
    assert len(set(steps.tolist())) > 1


def test_with_test_rows_without_timestamps():
    import dataclasses

    s = holdout(make_ratings(timestamps=False), 0.2, seed=0)
    both = with_test_rows(s)
    assert both.timestamps is None and len(both) == len(s.train) + len(s.test)
    assert dataclasses.replace(s.train).timestamps is None


def _recorder():
    """A pipeline that keeps every split it is given and predicts nothing from it."""
    seen = []

    def run(s):
        seen.append(s)
        return np.zeros(len(s.test))

    return run, seen


def _ratings_and_items(s):
    return (s.test.ratings.tolist(), s.test.items.tolist())


def test_the_default_seed_is_0_and_each_check_passes_its_seed_on(split):
    for check in (check_leakage, assert_no_leakage, check_recommender_leakage,
                  assert_no_recommender_leakage):
        run, seen = _recorder()
        check(run, split)
        check(run, split, seed=0)
        check(run, split, seed=5)
        default, zero, five = (_ratings_and_items(s) for s in seen[1::2])
        assert default == zero != five, check.__name__
    run, seen = _recorder()
    check_recommender_leakage(run, split, seed=5)
    moved = move_test_items(perturb_test(split, 5), 5)
    assert _ratings_and_items(seen[1]) == _ratings_and_items(moved)


def test_the_perturbation_streams_are_pinned(split):
    """Test ratings and moved movies for seed 0 (a renamed stream or a changed step moves
    every model's leakage check to other rows)."""
    import hashlib

    p, m = perturb_test(split, 0), move_test_items(split, 0)
    digest = hashlib.sha256(p.test.ratings.tobytes() + m.test.items.tobytes()).hexdigest()
    assert p.test.ratings[:8].tolist() == [0.5, 2.5, 1.5, 1.0, 3.0, 3.5, 4.5, 2.5]
    assert m.test.items[:8].tolist() == [36, 34, 24, 36, 10, 35, 34, 31]
    assert digest[:16] == "5b547168d371a0ed"


def test_moved_rows_stay_in_the_vocabulary_of_one_or_two_movies():
    from kmrec_gpu.metrics.rating import HALF_STAR
    from kmrec_gpu.ratings import from_arrays

    for n_items, users, items in ((1, np.arange(60), np.zeros(60, dtype=int)),
                                  (2, np.repeat(np.arange(30), 2), np.tile([0, 1], 30))):
        s = holdout(from_arrays(users, items, np.full(60, 3.0), scale=HALF_STAR), 0.3, seed=0)
        m = move_test_items(s, 0)
        assert m.test.n_items == n_items and len(s.test) == 18
        if n_items == 1:
            assert m.test.items.tolist() == [0] * 18  # nowhere else to go
        else:
            assert (m.test.items == 1 - s.test.items).all()  # each to the other movie


def test_an_empty_test_set_moves_nothing(split):
    empty = split.__class__(split.train, split.test.subset(np.array([], dtype=int)),
                            split.method, split.params, 0)
    rep = check_leakage(lambda s: np.zeros(len(s.test)), empty)
    assert (rep.n_rows, rep.n_moved, rep.max_abs_delta, rep.leaks) == (0, 0, 0.0, False)


def test_one_recommendation_list_is_one_user(split):
    lists = iter([np.array([1, 2, 3]), np.array([1, 5, 3])])
    rep = check_recommender_leakage(lambda s: next(lists), split)
    assert (rep.n_users_moved, rep.n_slots_moved) == (1, 1)
    same = iter([np.array([1, 2, 3])] * 2)
    assert check_recommender_leakage(lambda s: next(same), split).n_users_moved == 0


def test_the_recommender_leak_message_is_exact(split):
    def reads_test(s):
        return np.array([[int(_test_sum(s)) % 7, 1]])

    with pytest.raises(LeakageError) as e:
        assert_no_recommender_leakage(reads_test, split)
    assert str(e.value) == (
        "1 of 1 users' recommendation lists moved (1 slots) when only the test rows changed "
        "(their ratings, and the movies they are on): the recommender reads test ratings")
