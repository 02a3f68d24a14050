"""kNN with baselines: Surprise's KNNBaseline to the last bits, the same on every backend,
and no test rating read."""

from __future__ import annotations

import numpy as np
import pytest

from kmrec_gpu.data import load
from kmrec_gpu.leakage import (
    assert_no_leakage,
    check_leakage,
    fit_predict_estimator,
    with_test_rows,
)
from kmrec_gpu.models.baseline import BiasBaseline
from kmrec_gpu.models.knn import KNNBaseline
from kmrec_gpu.models.surprise_peer import SurprisePeer, surprise_available
from kmrec_gpu.splits import holdout


@pytest.fixture(scope="module")
def split():
    return holdout(load("synthetic-ml-100k"), 0.1, seed=0)


@pytest.mark.skipif(not surprise_available(), reason="scikit-surprise not installed (peers)")
@pytest.mark.parametrize("user_based", [False, True], ids=["item", "user"])
def test_predictions_are_surprises_knn_baseline(split, user_based):
    ours = KNNBaseline(user_based=user_based, k=20, shrinkage=50.0).fit(split.train)
    theirs = SurprisePeer("KNNBaseline", k=20, verbose=False,
                          sim_options={"name": "pearson_baseline", "user_based": user_based,
                                       "shrinkage": 50}).fit(split.train)
    np.testing.assert_allclose(ours.predict(split.test), theirs.predict(split.test),
                               rtol=0, atol=1e-9)


def test_without_neighbours_a_pair_gets_the_baseline(split):
    m = KNNBaseline(k=5).fit(split.train)
    # a similarity of zero everywhere: every pair's neighbours count for nothing
    m.similarity_ = np.zeros_like(m.similarity_)
    base = BiasBaseline(clip=True).fit(split.train).predict(split.test)
    np.testing.assert_allclose(m.predict(split.test), base, rtol=0, atol=1e-12)


def test_every_backend_gives_the_numpy_predictions(split, backend):
    want = KNNBaseline(k=10).fit(split.train).predict(split.test)
    got = KNNBaseline(k=10, backend=backend).fit(split.train).predict(split.test)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("user_based", [False, True], ids=["item", "user"])
def test_no_test_rating_is_read(split, user_based):

    def make():
        return KNNBaseline(user_based=user_based, k=10)

    rep = assert_no_leakage(fit_predict_estimator(make), split)
    assert rep.n_changed_ratings == len(split.test)

    def leaky(s):
        return make().fit(with_test_rows(s)).predict(s.test)

    assert check_leakage(leaky, split).leaks


@pytest.mark.parametrize("model, match", [
    (KNNBaseline(k=0), "k must be an int >= 1"),
    (KNNBaseline(shrinkage=-1.0), "shrinkage must be >= 0"),
    (KNNBaseline(dtype="int8"), "dtype must be"),
])
def test_bad_parameters_are_named(split, model, match):
    with pytest.raises(ValueError, match=match):
        model.fit(split.train)
