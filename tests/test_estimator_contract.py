"""Every estimator on the project's base (``kmrec_gpu.estimator.Estimator``) keeps
scikit-learn's contract, with Ratings in place of X: clone, the parameter round trip,
the not-fitted error, and a pickle round trip that predicts (or recommends) the same."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from kmrec_gpu.data import load
from kmrec_gpu.estimator import Estimator
from kmrec_gpu.splits import holdout

NET = {"epochs": 1, "patience": None, "valid_fraction": 0.0, "device": "cpu"}
SEARCH = {"estimator": {"class": "kmrec_gpu.models.baseline.BiasBaseline"},
          "space": {"reg_user": {"low": 1.0, "high": 30.0}}, "n_trials": 2}
CASES = [  # (class path, parameters, task)
    ("kmrec_gpu.models.baseline.GlobalMean", {}, "rating"),
    ("kmrec_gpu.models.baseline.BiasBaseline", {"n_iter": 3}, "rating"),
    ("kmrec_gpu.models.knn.KNNBaseline", {"k": 5}, "rating"),
    ("kmrec_gpu.models.svdpp.SVDpp", {"n_epochs": 2}, "rating"),
    ("kmrec_gpu.models.mf.BiasedMF", {"n_factors": 4, "n_epochs": 2}, "rating"),
    ("kmrec_gpu.models.search.ValidatedSearch", SEARCH, "rating"),
    ("kmrec_gpu.neural.estimators.PublishedMLP000", {**NET, "genres": "all"}, "rating"),
    ("kmrec_gpu.neural.estimators.AttentionMLP000", NET, "rating"),
    ("kmrec_gpu.neural.estimators.HybridNN003", NET, "rating"),
    ("kmrec_gpu.factor.models.TruncatedSVDModel", {"n_components": 4}, "rating"),
    ("kmrec_gpu.factor.models.NMFModel", {"n_components": 3, "max_iter": 20}, "rating"),
    ("kmrec_gpu.factor.models.IterativeSVDModel", {"n_components": 3, "max_iter": 4},
     "rating"),
    ("kmrec_gpu.factor.validated.ValidatedIterativeSVD", {"n_components": 3, "max_iter": 3},
     "rating"),
    ("kmrec_gpu.factor.validated.ValidatedSoftImpute", {"n_components": 3, "max_iter": 3,
                                                        "shrinkage_grid": [1.5]}, "rating"),
    ("kmrec_gpu.models.item_item.EASE", {"l2": 50.0}, "topk"),
    ("kmrec_gpu.models.item_item.ItemKNN", {"neighbors": 10}, "topk"),
    ("kmrec_gpu.models.popularity.GlobalPopularity", {}, "topk"),
    ("kmrec_gpu.models.popularity.RandomRecommender", {"random_state": 3}, "topk"),
    ("kmrec_gpu.models.liked_clusters.LikedClusters", {"n_clusters": 3}, "topk"),
    ("kmrec_gpu.models.genre_profiles.GenreProfileClusters", {"n_clusters": 3}, "topk"),
    ("kmrec_gpu.models.implicit_peer.ImplicitALS", {"factors": 8, "iterations": 2}, "topk"),
]


def _cls(path: str) -> type:
    import importlib

    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


@pytest.fixture(scope="module")
def split():
    return holdout(load("synthetic-small"), 0.1, seed=0)


def _out(model, split, task: str) -> np.ndarray:
    if task == "rating":
        return model.predict(split.test)
    return model.recommend(np.unique(split.test.users)[:50], 10)


@pytest.mark.parametrize("path, params, task", CASES, ids=[c[0].rsplit(".", 1)[1] for c in CASES])
def test_the_scikit_learn_contract_with_ratings(path, params, task, split):
    if path.endswith("ImplicitALS"):
        pytest.importorskip("implicit")
    cls = _cls(path)
    assert issubclass(cls, Estimator)
    est = cls(**params)
    got = est.get_params()
    assert {k: got[k] for k in params} == params
    twin = clone(est)
    assert twin is not est and twin.get_params() == got
    assert cls(**params).set_params(**got).get_params() == got
    with pytest.raises(NotFittedError, match="not fitted"):
        _out(cls(**params), split, task)
    fitted = est.fit(split.train)
    assert not hasattr(clone(fitted), fitted._fitted_attr)  # clone keeps parameters only
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(_out(loaded, split, task), _out(fitted, split, task))
    assert loaded.get_params() == got
