"""The model configurations behind the published-claim figures: each composes and builds,
and does what its name says (validation-chosen iterations never read the test ratings; the
test-selected variant is the argmin of the test curve; seed 000's settings; train-only clip
bounds; seed 004's feature sets)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from kmrec_gpu import splits
from kmrec_gpu.backends import get_backend
from kmrec_gpu.data.synthetic import synthetic
from kmrec_gpu.factor import IterativeSVDModel
from kmrec_gpu.factor.validated import (
    SOFT_GRID,
    TEST_SELECTED,
    IterativeSVDTestSelected,
    ValidatedIterativeSVD,
    ValidatedSoftImpute,
    staged_rmse,
)
from kmrec_gpu.harness.runner import backend_kwargs, make_cell_split
from kmrec_gpu.harness.spec import CellSpec, conf_dir
from kmrec_gpu.leakage import assert_no_leakage, fit_predict_estimator, perturb_test
from kmrec_gpu.metrics import rmse
from kmrec_gpu.metrics.rating import HALF_STAR
from kmrec_gpu.models.seed004_rf import DEFAULT_FEATURES, DOCUMENTED_FEATURES
from kmrec_gpu.neural import PublishedMLP000
from kmrec_gpu.neural.estimators import SEED000_GENRES, genre_columns
from kmrec_gpu.ratings import RatingScale, from_arrays

NEW_MODELS = ["iterative_svd_val", "iterative_svd_testsel", "iterative_svd_r10",
              "iterative_svd_r15", "iterative_svd_r20", "iterative_svd_val_r10",
              "iterative_svd_val_r15", "iterative_svd_val_r20", "soft_impute", "published_mlp",
              "published_mlp_fast", "rf_seed004_published", "rf_seed004_published_ts",
              "linear_seed004_published", "linear_seed004_published_ts"]
# small and quick: rank 4, a few iterations
LOOP = dict(n_components=4, minmax=True, max_iter=8, random_state=0)


def composed(*overrides: str):
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def build(name: str, *overrides: str):
    cfg = composed(f"model={name}", *overrides)
    spec = CellSpec.from_config(cfg)
    kw = backend_kwargs(spec.model["backend_arg"], get_backend("cpu"))
    return spec, instantiate(cfg.model.estimator, _partial_=True, _convert_="all")(**kw)


@pytest.fixture(scope="module")
def split():
    # low rank, dense enough: the validation curve falls for a few iterations, then rises
    r = synthetic(150, 100, 4_000, seed=5, min_user_ratings=5, rank=3)
    return splits.holdout(r, 0.1, seed=0)


# -- every new configuration composes and builds ---------------------------------------------


@pytest.mark.parametrize("name", NEW_MODELS)
def test_new_configs_compose_and_build(name):
    spec, est = build(name, "seed=7")
    assert spec.model["name"] == name
    needs = ("fit_predict",) if spec.model["task"] == "pipeline" else ("fit", "predict")
    assert all(callable(getattr(est, a)) for a in needs)
    assert est.get_params()["random_state"] == 7


def test_the_rank_sweep_differs_only_in_rank():
    def params(name):  # the Backend instance differs between builds; its name does not
        p = build(name)[1].get_params()
        return {**p, "backend": p["backend"].name}

    base, val = params("iterative_svd"), params("iterative_svd_val")
    for r in (10, 15, 20):
        assert params(f"iterative_svd_r{r}") == {**base, "n_components": r}
        assert params(f"iterative_svd_val_r{r}") == {**val, "n_components": r}
    assert base["n_components"] == val["n_components"] == 16 and base["max_iter"] == 100
    assert val["max_iter"] == 25 and val["shrinkage_grid"] == [0.0] and val["minmax"]


def test_seed001_configs_are_what_the_script_ran():
    # 'truncated-svd-16' / 'nmf-15' of the former seed-001 script: minmax fitted on train, ours
    for name, cls, k in (("svd", "TruncatedSVDModel", 16), ("nmf", "NMFModel", 15)):
        _, est = build(name)
        p = est.get_params()
        assert type(est).__name__ == cls and p["n_components"] == k and p["minmax"]
        assert p["solver"] == "scalable"
    # 'soft-impute-16': shrinkage and iterations chosen on validation over SOFT_GRID
    _, soft = build("soft_impute")
    assert isinstance(soft, ValidatedSoftImpute)
    p = soft.get_params()
    assert p["shrinkage_grid"] == list(SOFT_GRID) and p["max_iter"] == 25
    assert p["n_components"] == 16 and p["minmax"] and p["valid_fraction"] == 0.1


# -- ValidatedIterativeSVD ---------------------------------------------------------------------


def test_validated_picks_the_argmin_of_its_validation_curve(split):
    m = ValidatedIterativeSVD(**LOOP).fit(split.train)
    inner = splits.validation_split(split.train, 0.1, seed=0)
    ref = IterativeSVDModel(**LOOP, tol=0.0, keep_history=True).fit(inner.train)
    curve = staged_rmse(ref, inner.test)
    np.testing.assert_allclose(m.validation_curve_, curve, rtol=0, atol=1e-12)
    assert len(curve) == 8 and m.n_iter_ == int(np.argmin(curve)) + 1
    assert m.validation_rmse_ == pytest.approx(min(curve)) and m.n_valid_ == len(inner.test)
    # refitting on all of train for n_iter_ iterations is the n_iter_-th stage of a full fit
    # (what the former seed-001 script took)
    full = IterativeSVDModel(**LOOP, tol=0.0, keep_history=True).fit(split.train)
    staged = list(full.staged_predict(split.test))
    np.testing.assert_allclose(m.predict(split.test), staged[m.n_iter_ - 1], atol=1e-10)


def test_validated_choice_is_not_the_first_or_last_iteration(split):
    # the curve falls then rises on this data: the choice is a real argmin, not an end
    m = ValidatedIterativeSVD(**{**LOOP, "max_iter": 12}).fit(split.train)
    assert 1 < m.n_iter_ < 12, m.validation_curve_


def test_validated_never_reads_test_ratings(split):
    rep = assert_no_leakage(fit_predict_estimator(lambda: ValidatedIterativeSVD(**LOOP)), split)
    assert rep.n_changed_ratings == len(split.test) and rep.n_moved == 0
    assert_no_leakage(fit_predict_estimator(
        lambda: ValidatedSoftImpute(**LOOP, shrinkage_grid=(0.05, 0.2))), split)


def test_soft_impute_picks_shrinkage_and_iterations_on_validation(split):
    grid = (0.0, 0.05, 0.2)
    m = ValidatedSoftImpute(**LOOP, shrinkage_grid=grid).fit(split.train)
    assert set(m.validation_curves_) == set(grid)
    best = min((min(c), lam) for lam, c in m.validation_curves_.items())
    assert m.shrinkage_ == best[1] and m.validation_rmse_ == pytest.approx(best[0])
    assert m.n_iter_ == int(np.argmin(m.validation_curves_[m.shrinkage_])) + 1
    assert m.model_.shrinkage == m.shrinkage_ and m.model_.n_iter_ == m.n_iter_


# -- the test-selected (as published) variant ---------------------------------------------------


def test_testsel_is_the_argmin_of_the_test_curve(split):
    p = IterativeSVDTestSelected(**LOOP)
    pred = p.fit_predict(split)
    full = IterativeSVDModel(**LOOP, tol=0.0, keep_history=True).fit(split.train)
    staged = list(full.staged_predict(split.test))
    curve = [rmse(split.test.ratings, s) for s in staged]
    np.testing.assert_allclose(p.test_curve_, curve, atol=1e-12)
    assert p.n_iter_ == int(np.argmin(curve)) + 1 and p.leaky_ == TEST_SELECTED
    np.testing.assert_array_equal(pred, staged[p.n_iter_ - 1])
    assert rmse(split.test.ratings, pred) == pytest.approx(min(curve))
    # it is at least as good on test as the honest choice, by construction
    honest = ValidatedIterativeSVD(**LOOP).fit(split.train).predict(split.test)
    assert rmse(split.test.ratings, pred) <= rmse(split.test.ratings, honest) + 1e-12


def test_testsel_choice_follows_the_test_ratings(split):
    """Its iteration count is a function of the test ratings: swap them and it moves."""
    a = IterativeSVDTestSelected(**{**LOOP, "max_iter": 12})
    a.fit_predict(split)
    b = IterativeSVDTestSelected(**{**LOOP, "max_iter": 12})
    b.fit_predict(perturb_test(split))
    assert a.test_curve_ != b.test_curve_


# -- seed 000 ----------------------------------------------------------------------------------


def test_published_mlp_has_the_seeds_settings():
    _, est = build("published_mlp")
    p = est.get_params()
    seed = PublishedMLP000().get_params()
    for k in ("epochs", "batch_size", "lr", "optimizer", "weight_decay", "patience",
              "user_dim", "hidden"):
        assert p[k] == seed[k], k
    assert (p["epochs"], p["batch_size"], p["lr"]) == (10, 32, 1e-3)
    fast = build("published_mlp_fast")[1].get_params()
    assert (fast["epochs"], fast["batch_size"]) == (5, 1024)


def test_seed000_or_all_genres():
    names = tuple(SEED000_GENRES) + ("IMAX",)
    r = from_arrays(np.array([0]), np.array([0]), np.array([4.0]), scale=HALF_STAR,
                    genres=np.zeros((1, len(names)), bool), genre_names=names)
    assert genre_columns(r, "seed000_or_all") == SEED000_GENRES  # IMAX dropped
    other = dataclasses.replace(r, genre_names=tuple(f"G{i}" for i in range(len(names))))
    assert genre_columns(other, "seed000_or_all") == other.genre_names


def test_clip_bound_comes_from_the_training_ratings():
    g = np.random.default_rng(0)
    n_users, n_items = 20, 15
    pairs = g.choice(n_users * n_items, 200, replace=False)
    u, i = np.divmod(pairs, n_items)
    y = np.clip(np.round(g.normal(3.0, 0.6, len(u)) * 2) / 2, 1.0, 4.5)
    y[:3] = [0.0, 20.0, 91.5]  # extremes that the split below puts in the test part only
    # a declared scale stretched to every row's values (as seed 000's adjusted target is)
    r = from_arrays(u, i, y, scale=RatingScale(0.0, 91.5, 0.5))
    test_mask = np.zeros(len(y), bool)
    test_mask[:40] = True
    s = splits.TTSplit(r.subset(~test_mask), r.subset(test_mask))
    lo, hi = float(s.train.ratings.min()), float(s.train.ratings.max())
    assert hi <= 4.5 < r.scale.maximum
    m = PublishedMLP000(genres="none", epochs=1, batch_size=32, clip=True, device="cpu",
                        hidden=(4,), user_dim=2).fit(s.train)
    assert (m.scale_.minimum, m.scale_.maximum) == (lo, hi)  # not the declared 0-91.5
    for shift, bound in ((+1000.0, hi), (-3000.0, lo)):  # push every prediction off the range
        with torch.no_grad():
            m.net_.mlp[-1].bias += shift
        assert (m.predict(s.test) == bound).all()


# -- seed 004 ----------------------------------------------------------------------------------


def test_seed004_published_features():
    feats = {n: build(n)[1].get_params()["features"] for n in
             ("rf_seed004_published", "rf_seed004_published_ts", "linear_seed004_published",
              "linear_seed004_published_ts")}
    assert feats["rf_seed004_published"] == list(DOCUMENTED_FEATURES)
    assert feats["linear_seed004_published"] == list(DOCUMENTED_FEATURES)
    assert feats["rf_seed004_published_ts"] == list(DEFAULT_FEATURES)
    assert feats["linear_seed004_published_ts"] == list(DEFAULT_FEATURES)
    for n in feats:
        p = build(n)[1].get_params()
        assert p["protocol"] == "as_published" and p["n_estimators"] == 100
    assert build("rf_seed004_published")[1].model == "forest"
    assert build("linear_seed004_published")[1].model == "linear"


def test_holdout20_split():
    s = composed("split=holdout20").split
    assert (s.method, s.params.test_fraction) == ("holdout", 0.2)
    r = synthetic(50, 40, 1_000, seed=1)
    tt = make_cell_split(r, dict(s), seed=3)
    assert len(tt.test) == 200 and len(tt.train) == 800
    ref = splits.holdout(r, 0.2, seed=3)
    np.testing.assert_array_equal(tt.test.users, ref.test.users)
