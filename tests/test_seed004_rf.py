"""Seed 004's random forest: feature table by hand, the `enjoyed` leak, the leakage check."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from kmrec_gpu.data.synthetic import synthetic_preset
from kmrec_gpu.leakage import LeakageError, assert_no_leakage, check_leakage
from kmrec_gpu.metrics import rmse
from kmrec_gpu.models.seed004_rf import (
    DEFAULT_FEATURES,
    DOCUMENTED_FEATURES,
    NO_GENRE,
    Seed004Pipeline,
    build_features,
    concat,
    first_two_genres,
    make_forest,
    parse_years,
    protocol_features,
    published_split,
)
from kmrec_gpu.ratings import Ratings, RatingScale
from kmrec_gpu.splits import TTSplit, holdout

GENRES = ("Action", "Animation", "Drama", "IMAX", "Musical")
#            Act    Anim   Drama  IMAX   Musical
FLAGS = [[True, False, True, False, False],   # item 0: Action|Drama
         [False, True, False, True, True],    # item 1: Animation|Musical|IMAX (IMAX last)
         [False, False, True, False, False],  # item 2: Drama only
         [False, False, False, False, False]]  # item 3: no genre
TITLES = ["Heat (1995)", "Fantasia 2000 (1999)", "Untitled", "Old (1987) "]


def tiny() -> tuple[Ratings, TTSplit]:
    # user 0: 4.0, 2.0, 3.0 (train) + 5.0 (test); user 1: 1.0, 2.5 (train) + 4.5 (test);
    # user 2: 3.5 (train); user 3: 0.5 (test only: cold in the clean protocol)
    users = np.array([0, 0, 0, 1, 1, 2, 0, 1, 3], dtype=np.int32)
    items = np.array([0, 1, 2, 0, 1, 3, 3, 2, 0], dtype=np.int32)
    vals = np.array([4.0, 2.0, 3.0, 1.0, 2.5, 3.5, 5.0, 4.5, 0.5], dtype=np.float32)
    r = Ratings(users=users, items=items, ratings=vals,
                timestamps=np.arange(9, dtype=np.int64) * 100,
                user_ids=np.array([10, 20, 30, 40]), item_ids=np.array([1, 2, 3, 4]),
                scale=RatingScale(0.5, 5.0, 0.5), genres=np.array(FLAGS),
                genre_names=GENRES, titles=np.array(TITLES, dtype=object)).validate()
    test = np.zeros(9, dtype=bool)
    test[6:] = True
    return r, TTSplit(r.subset(~test), r.subset(test))


def test_years_and_genres_by_hand():
    # "Untitled" has no year: median of 1995, 1999, 1987
    np.testing.assert_array_equal(parse_years(np.array(TITLES, dtype=object), 4),
                                  [1995, 1999, 1995, 1987])
    assert parse_years(None, 2).tolist() == [0.0, 0.0]
    g1, g2, vocab = first_two_genres(np.array(FLAGS), GENRES, 4)
    assert vocab == sorted(GENRES + (NO_GENRE,))

    def names(g):
        return [vocab[k] for k in g]

    assert names(g1) == ["Action", "Animation", "Drama", NO_GENRE]
    assert names(g2) == ["Drama", "Musical", NO_GENRE, NO_GENRE]  # IMAX comes last


def test_feature_table_protocols_by_hand():
    r, split = tiny()
    tr, te, stats = build_features(split, "as_published", n_clusters=2)
    assert te["enjoyed"].tolist() == [1, 1, 0]  # 5.0, 4.5, 0.5
    assert tr["enjoyed"].tolist() == [1, 0, 1, 0, 0, 1]  # 2.5 is not > 2.5
    assert te["user_id"].tolist() == [10, 20, 40] and te["movie_id"].tolist() == [4, 3, 1]
    assert te["year"].tolist() == [1987, 1995, 1995]
    assert te["timestamp"].tolist() == [600, 700, 800]
    # user means over ALL rows, test included
    np.testing.assert_allclose(tr["user_mean"][:3], (4 + 2 + 3 + 5) / 4)
    np.testing.assert_allclose(te["user_mean"], [3.5, (1 + 2.5 + 4.5) / 3, 0.5])
    assert stats.n_fit_rows == 9 and (stats.cluster >= 0).all()

    tr, te, stats = build_features(split, "clean", n_clusters=2)
    np.testing.assert_allclose(tr["user_mean"][:3], 3.0)  # train rows only
    train_mean = float(np.mean([4, 2, 3, 1, 2.5, 3.5]))
    np.testing.assert_allclose(te["user_mean"], [3.0, 1.75, train_mean])  # user 3 is cold
    assert stats.n_fit_rows == 6 and stats.cluster[3] == -1
    assert te["cluster"].iloc[2] == stats.fallback_cluster
    # same user, same cluster on both sides of the split
    assert te["cluster"].iloc[0] == tr["cluster"].iloc[0]


def test_protocol_features():
    assert protocol_features("as_published") == DEFAULT_FEATURES
    assert "enjoyed" not in protocol_features("clean")
    assert protocol_features("no_enjoyed") == protocol_features("clean")
    assert protocol_features("clean", DOCUMENTED_FEATURES) == tuple(
        f for f in DOCUMENTED_FEATURES if f != "enjoyed")
    with pytest.raises(ValueError, match="protocol"):
        protocol_features("leaky")
    with pytest.raises(ValueError, match="unknown features"):
        protocol_features("clean", ("rating",))
    with pytest.raises(ValueError, match="model"):
        Seed004Pipeline(model="svr")


def test_concat_and_published_split():
    r, split = tiny()
    both = concat(split.train, split.test)
    np.testing.assert_array_equal(both.ratings, r.ratings)
    s = published_split(r, test_size=0.2, random_state=101)
    tr, te = train_test_split(np.arange(len(r)), test_size=0.2, random_state=101)
    np.testing.assert_array_equal(s.train.ratings, r.ratings[tr])
    np.testing.assert_array_equal(s.test.users, r.users[te])


def test_forest_backend_falls_back_to_sklearn(monkeypatch):
    from kmrec_gpu import backends
    from kmrec_gpu.errors import BackendUnavailable

    monkeypatch.setattr(backends, "cuda_status",
                        lambda: backends.CudaStatus(torch=False, cupy=False, checked=("none",)))
    reg, lib, why = make_forest(backend="auto", n_estimators=3)
    assert lib.startswith("scikit-learn") and "no usable CUDA" in why
    assert make_forest(backend="cpu")[2] is None
    with pytest.raises(BackendUnavailable):
        make_forest(backend="cuda")


@pytest.fixture(scope="module")
def syn_split():
    return holdout(synthetic_preset("synthetic-small", seed=0), 0.2, seed=0)


def _small(protocol, **kw):
    return Seed004Pipeline(protocol, n_estimators=20, random_state=0, **kw)


def test_enjoyed_leak_lowers_rmse_synthetic(syn_split):
    y = syn_split.test.ratings
    leaky, clean = rmse(y, _small("as_published")(syn_split)), rmse(y, _small("clean")(syn_split))
    assert leaky < clean - 0.15, (leaky, clean)


def test_leakage_check_on_every_protocol_and_model(syn_split):
    for model in ("forest", "linear"):
        rep = check_leakage(_small("as_published", model=model), syn_split)
        assert rep.leaks and rep.n_moved > len(syn_split.test) // 2, rep
        with pytest.raises(LeakageError):
            assert_no_leakage(_small("as_published", model=model), syn_split)
        assert not assert_no_leakage(_small("clean", model=model), syn_split).leaks
    # without `enjoyed`, statistics fitted on all rows still leak (here the user mean)
    feats = DEFAULT_FEATURES + ("user_mean",)
    assert check_leakage(_small("no_enjoyed", model="linear", features=feats), syn_split).leaks
    assert_no_leakage(_small("clean", model="linear", features=feats), syn_split)


@pytest.mark.data
def test_enjoyed_leak_on_ml_latest_small_slice(ml_small):
    r = ml_small.subset(ml_small.users < 60)
    s = published_split(r)
    y = s.test.ratings
    leaky = rmse(y, _small("as_published")(s))
    no_enjoyed = rmse(y, _small("no_enjoyed")(s))
    clean = rmse(y, _small("clean")(s))
    assert leaky < 0.75 < no_enjoyed and leaky < clean - 0.2, (leaky, no_enjoyed, clean)
