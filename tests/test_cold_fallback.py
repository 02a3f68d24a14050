"""Cold pairs (a user or movie without a training rating) go to the bias baseline, warm
pairs stay the model's, the row counts them, and the rule is part of the cell's key."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kmrec_gpu.factor.models import TruncatedSVDModel
from kmrec_gpu.harness import evaluate
from kmrec_gpu.harness.spec import CellSpec, ConfigError
from kmrec_gpu.leakage import assert_no_leakage, fit_predict_estimator
from kmrec_gpu.models.baseline import BiasBaseline
from kmrec_gpu.models.cold import ColdFallback, rule
from kmrec_gpu.results import read_rows
from kmrec_gpu.splits import holdout
from tests.test_harness import cfg_for, harness
from tests.test_splits import make_ratings


def cold_split():
    """A holdout split whose train loses user 0 and item 0 entirely: their test pairs are
    cold (and the holdout itself leaves some movies cold)."""
    s = holdout(make_ratings(n_users=40, per_user=15), 0.2, seed=0)
    keep = (s.train.users != 0) & (s.train.items != 0)
    s = dataclasses.replace(s, train=s.train.subset(np.flatnonzero(keep)))
    assert ((s.test.users == 0) | (s.test.items == 0)).sum() >= 3
    return s


class Far:
    """A model that answers 99 everywhere: any pair the wrapper leaves to it shows."""

    def fit(self, train):
        self.n_iter_ = 7
        return self

    def predict(self, X):
        return np.full(len(X), 99.0)

    def get_params(self):
        return {"far": True}


def test_cold_pairs_get_the_bias_baseline_and_warm_pairs_the_model():
    s = cold_split()
    m = ColdFallback(Far()).fit(s.train)
    got = m.predict(s.test)
    cold = m.cold(s.test)
    seen_u = np.bincount(s.train.users, minlength=s.train.n_users) > 0
    seen_i = np.bincount(s.train.items, minlength=s.train.n_items) > 0
    np.testing.assert_array_equal(cold, ~seen_u[s.test.users] | ~seen_i[s.test.items])
    assert m.n_fallback_ == int(cold.sum()) == s.summary()["cold_rows"] > 0
    np.testing.assert_array_equal(got[~cold], 99.0)
    bias = BiasBaseline().fit(s.train).predict(s.test)
    np.testing.assert_allclose(got[cold], bias[cold], rtol=0, atol=0)
    assert (got[cold] <= s.test.scale.maximum).all()


def test_a_warm_test_set_is_the_model_alone():
    s = holdout(make_ratings(n_users=40, per_user=15), 0.2, seed=0, drop_cold=True)
    m = ColdFallback(Far()).fit(s.train)
    np.testing.assert_array_equal(m.predict(s.test), 99.0)
    assert m.n_fallback_ == 0


def test_the_wrapper_reports_the_models_facts_and_params():
    s = cold_split()
    svd = TruncatedSVDModel(n_components=4)
    m = ColdFallback(svd).fit(s.train)
    assert m.get_params() == svd.get_params()
    np.testing.assert_array_equal(evaluate.artifacts(m)["singular_values"],
                                  svd.singular_values_)
    assert evaluate.model_facts(ColdFallback(Far()).fit(s.train))["n_iter"] == 7
    with pytest.raises(AttributeError):
        m.no_such_attribute_
    with pytest.raises(RuntimeError, match="not fitted"):
        ColdFallback(Far()).predict(s.test)


def test_the_wrapped_model_does_not_leak():
    s = cold_split()
    rep = assert_no_leakage(fit_predict_estimator(
        lambda: ColdFallback(TruncatedSVDModel(n_components=4))), s)
    assert rep.n_changed_ratings == len(s.test)


def _cfg_cell(tmp_path, *overrides):
    return CellSpec.from_config(cfg_for(tmp_path, *overrides))


def test_a_harness_row_counts_the_pairs_that_fell_back(tmp_path):
    h = harness(tmp_path)
    # synthetic-small's temporal split leaves users and movies without a training rating
    for model in ("svd", "bias_baseline"):
        assert h.run(_cfg_cell(tmp_path, f"model={model}", "split=temporal")).status == "ok"
    rows = read_rows(h.results_file)
    split = next(r for r in rows if r["phase"] == "split")["split"]
    ev = {r["model"]["name"]: r for r in rows if r["phase"] == "evaluate"}
    assert split["cold_rows"] > 0
    assert ev["svd"]["metrics"]["n_fallback"] == split["cold_rows"]
    assert "n_fallback" not in ev["bias_baseline"]["metrics"]  # its own rule is the fallback


def test_the_rule_is_part_of_the_key_and_checked(tmp_path):
    default = _cfg_cell(tmp_path, "model=svd")
    own = _cfg_cell(tmp_path, "model=svd", "+model.cold_pairs=own")
    assert rule(default.model) == "bias_baseline" and rule(own.model) == "own"
    assert default.key != own.key
    assert "cold_pairs" not in own.canonical()["model"]  # unchanged from before the rule
    with pytest.raises(ConfigError, match="cold_pairs='zero'"):
        _cfg_cell(tmp_path, "model=svd", "+model.cold_pairs=zero")
    with pytest.raises(ConfigError, match="on a rating model only"):
        _cfg_cell(tmp_path, "model=popularity", "+model.cold_pairs=own")
    assert rule(_cfg_cell(tmp_path, "model=popularity").model) is None
