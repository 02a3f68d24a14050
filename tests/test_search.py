"""The validated search: seeded, within its budget, on training data only, and honest
about a best value at the edge of its range."""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu.data import load
from kmrec_gpu.leakage import (
    assert_no_leakage,
    assert_no_recommender_leakage,
    fit_predict_estimator,
    fit_recommend_estimator,
)
from kmrec_gpu.models.search import ValidatedSearch
from kmrec_gpu.splits import holdout, per_user

pytest.importorskip("optuna")

KNN = {"class": "kmrec_gpu.models.knn.KNNBaseline"}


@pytest.fixture(scope="module")
def split():
    return holdout(load("synthetic-ml-100k"), 0.1, seed=0)


def knn_search(**kw):
    return ValidatedSearch(estimator=KNN, space={"k": {"low": 5, "high": 80, "int": True}},
                           n_trials=4, **kw)


def test_seeded_and_within_budget(split):
    a, b = knn_search(random_state=3).fit(split.train), knn_search(random_state=3).fit(split.train)
    assert a.best_params_ == b.best_params_ and a.n_trials_ == 4
    assert a.best_estimator_.k == a.best_params_["k"]
    np.testing.assert_array_equal(a.predict(split.test), b.predict(split.test))


def test_the_whole_search_reads_no_test_rating(split):
    assert_no_leakage(fit_predict_estimator(lambda: knn_search()), split)


def test_a_recommender_search_reads_no_test_row():
    s = per_user(load("synthetic-small"), fraction=0.2, seed=0)

    def make():
        return ValidatedSearch(
            estimator={"class": "kmrec_gpu.models.item_item.EASE"}, task="topk", n_trials=3,
            space={"l2": {"low": 1.0, "high": 1000.0, "log": True}})

    assert_no_recommender_leakage(fit_recommend_estimator(make), s)


def test_a_best_value_at_the_range_edge_is_flagged(split):
    # k in [1, 3]: the validation RMSE keeps falling with k, so the best sits at the top
    m = ValidatedSearch(estimator=KNN, space={"k": {"low": 1, "high": 3, "int": True}},
                        n_trials=3).fit(split.train)
    assert m.best_params_["k"] == 3 and m.at_edge_ == "k"
    wide = knn_search().fit(split.train)
    assert wide.at_edge_ == "" or wide.best_params_["k"] in (5, 80)


@pytest.mark.parametrize("kw, match", [
    ({"task": "ranking"}, "task must be"),
    ({"n_trials": 0}, "n_trials must be"),
    ({"estimator": {"_target_": "x"}}, "estimator must be a dict with a 'class'"),
    ({"space": {"k": {"low": 5, "high": 5}}}, r"space\['k'\]"),
    ({"space": {"l2": {"low": 0.0, "high": 5.0, "log": True}}}, r"low > 0 for a log range"),
])
def test_bad_configuration_is_named(split, kw, match):
    args = {"estimator": KNN, "space": {"k": {"low": 5, "high": 80, "int": True}}, **kw}
    with pytest.raises(ValueError, match=match):
        ValidatedSearch(**args).fit(split.train)


def test_a_pipeline_search_reads_no_test_row_and_runs_its_choice():
    from kmrec_gpu.data.synthetic import synthetic_preset
    from kmrec_gpu.models.seed004_rf import Seed004Pipeline

    split = holdout(synthetic_preset("synthetic-small", seed=0), 0.2, seed=0)

    def make():
        return ValidatedSearch(
            estimator={"class": "kmrec_gpu.models.seed004_rf.Seed004Pipeline",
                       "protocol": "clean", "model": "linear"},
            space={"n_clusters": {"low": 2, "high": 8, "int": True}}, task="pipeline",
            n_trials=3)

    assert not assert_no_leakage(lambda s: make().fit_predict(s), split).leaks
    m = make()
    pred = m.fit_predict(split)
    assert m.n_trials_ == 3 and 2 <= m.best_params_["n_clusters"] <= 8
    same = Seed004Pipeline("clean", model="linear", **m.best_params_).fit_predict(split)
    np.testing.assert_array_equal(pred, same)
    with pytest.raises(ValueError, match="fit_predict is for task='pipeline'"):
        ValidatedSearch(estimator={"class": "x"}, space={}, task="rating").fit_predict(split)
