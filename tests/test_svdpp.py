"""SVD++: Surprise's SVDpp to the last bits from the same seed, and no test rating read."""

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
from kmrec_gpu.models.surprise_peer import SurprisePeer, surprise_available
from kmrec_gpu.models.svdpp import SVDpp
from kmrec_gpu.splits import holdout


@pytest.fixture(scope="module")
def split():
    return holdout(load("synthetic-small"), 0.2, seed=1)


@pytest.mark.skipif(not surprise_available(), reason="scikit-surprise not installed (peers)")
def test_the_factors_and_predictions_are_surprises(split):
    ours = SVDpp(n_factors=8, n_epochs=3, random_state=7).fit(split.train)
    peer = SurprisePeer("SVDpp", n_factors=8, n_epochs=3, random_state=7).fit(split.train)
    algo, ts = peer.algo_, peer.algo_.trainset
    assert ours.mu_ == ts.global_mean
    raw_users = [ts.to_raw_uid(u) for u in range(ts.n_users)]
    raw_items = [ts.to_raw_iid(i) for i in range(ts.n_items)]
    assert list(ours.user_inner_[raw_users]) == list(range(ts.n_users))
    assert list(ours.item_inner_[raw_items]) == list(range(ts.n_items))
    for name in ("bu", "bi", "pu", "qi", "yj"):
        np.testing.assert_array_equal(getattr(ours, name + "_"), getattr(algo, name), name)
    np.testing.assert_allclose(ours.predict(split.test), peer.predict(split.test),
                               rtol=0, atol=1e-12)


def test_every_step_moves_the_fit_and_more_epochs_fit_train_better(split):
    one = SVDpp(n_epochs=1, random_state=0).fit(split.train)
    five = SVDpp(n_epochs=5, random_state=0).fit(split.train)
    y = split.train.ratings.astype(np.float64)
    err = [np.sqrt(np.mean((m.predict(split.train) - y) ** 2)) for m in (one, five)]
    assert err[1] < err[0]
    # the implicit factors take part: without them (y = 0) the predictions change
    zeroed = SVDpp(n_epochs=5, random_state=0).fit(split.train)
    zeroed.yj_[:] = 0.0
    assert not np.allclose(zeroed.predict(split.test), five.predict(split.test))


def test_no_test_rating_is_read(split):

    def make():
        return SVDpp(n_epochs=2, random_state=0)

    rep = assert_no_leakage(fit_predict_estimator(make), split)
    assert rep.n_changed_ratings == len(split.test)

    def leaky(s):
        return make().fit(with_test_rows(s)).predict(s.test)

    assert check_leakage(leaky, split).leaks


@pytest.mark.parametrize("kw, match", [({"n_factors": 0}, "n_factors"),
                                       ({"n_epochs": 2.5}, "n_epochs"),
                                       ({"lr_all": float("nan")}, "lr_all"),
                                       ({"reg_all": -1.0}, "reg_all")])
def test_bad_parameters_are_named(split, kw, match):
    with pytest.raises(ValueError, match=match):
        SVDpp(**kw).fit(split.train)


def test_unfitted_predict_says_so(split):
    with pytest.raises(RuntimeError, match="not fitted"):
        SVDpp().predict(split.test)
