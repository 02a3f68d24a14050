"""metrics.bootstrap against references: scipy's own percentile bootstrap on the same
stream (row resampling), a plain loop that resamples whole groups (the grouped path),
coverage of a known mean, and the pooled bootstrap's (split, user) groups. The intervals
published in results/ come from this code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from kmrec_gpu import seeding
from kmrec_gpu.metrics import mae, rmse
from kmrec_gpu.metrics.bootstrap import bootstrap_ci, pooled_bootstrap_ci


def _data(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(1, 11, n) / 2
    return y, y + rng.normal(0, 1.0, n)


def _mean_error(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p - y))


def _grouped_reference(metric, y, p, groups, n_resamples, confidence, seed):
    """Each resample draws as many groups as there are, with replacement, and takes every
    row of each drawn group: a loop, on the same named stream."""
    rng = seeding.rng(seed, "bootstrap")
    labels = np.unique(groups)
    members = [np.flatnonzero(groups == g) for g in labels]
    vals = []
    for _ in range(n_resamples):
        pick = rng.integers(0, labels.size, size=labels.size)
        rows = np.concatenate([members[j] for j in pick])
        vals.append(metric(y[rows], p[rows]))
    a = (1 - confidence) / 2
    lo, hi = np.quantile(vals, [a, 1 - a])
    return float(metric(y, p)), float(lo), float(hi)


@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_row_bootstrap_is_scipys_percentile_interval_on_the_named_stream(confidence):
    y, p = _data()
    res = stats.bootstrap((y, p), rmse, paired=True, vectorized=False, n_resamples=400,
                          confidence_level=confidence, method="percentile",
                          random_state=seeding.rng(7, "bootstrap"))
    got = bootstrap_ci(rmse, y, p, n_resamples=400, confidence=confidence, seed=7)
    assert got == (rmse(y, p), res.confidence_interval.low, res.confidence_interval.high)


@pytest.mark.parametrize("confidence", [0.8, 0.95])
def test_grouped_bootstrap_is_the_resampling_of_whole_groups(confidence):
    y, p = _data(240, seed=1)
    # unsorted labels, unequal sizes, a group of one row, the largest label last
    groups = np.random.default_rng(2).choice([5, 1, 9, 3, 7, 40], size=y.size)
    groups[17] = 99
    got = bootstrap_ci(mae, y, p, n_resamples=200, confidence=confidence, seed=3,
                       groups=groups)
    ref = _grouped_reference(mae, y, p, groups, 200, confidence, 3)
    assert got == pytest.approx(ref, rel=1e-12)


def test_the_defaults_are_seed_zero_and_a_thousand_resamples():
    y, p = _data(60)
    u = np.arange(60) % 6
    assert bootstrap_ci(rmse, y, p) == bootstrap_ci(rmse, y, p, n_resamples=1000, seed=0)
    assert bootstrap_ci(rmse, y, p, seed=1) != bootstrap_ci(rmse, y, p, seed=0)
    assert pooled_bootstrap_ci(rmse, [(y, p, u)]) == \
        pooled_bootstrap_ci(rmse, [(y, p, u)], n_resamples=1000, seed=0)


def test_grouped_intervals_cover_a_known_mean_at_their_level():
    """Errors with a group effect and known mean 0: the 90% interval of the mean error
    must hold 0 in about 90% of 200 replications (binomial sd ~2.1 points)."""
    hits = 0
    for rep in range(200):
        rng = np.random.default_rng(1000 + rep)
        groups = np.repeat(np.arange(40), 5)
        p = rng.normal(0, 1, 40)[groups] + rng.normal(0, 0.5, groups.size)
        _, lo, hi = bootstrap_ci(_mean_error, np.zeros(groups.size), p, n_resamples=200,
                                 confidence=0.9, seed=rep, groups=groups)
        hits += lo <= 0.0 <= hi
    assert 0.83 <= hits / 200 <= 0.96


def test_fewer_than_two_rows_have_no_interval():
    point, lo, hi = bootstrap_ci(rmse, [3.0], [4.0])
    assert point == 1.0 and math.isnan(lo) and math.isnan(hi)


def test_one_resample_and_the_open_confidence_range():
    y, p = _data(50)
    point, lo, hi = bootstrap_ci(rmse, y, p, n_resamples=1, groups=np.arange(50) % 7)
    assert lo == hi  # one resample: its value is both ends
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\), got"):
            bootstrap_ci(rmse, y, p, confidence=bad)
    with pytest.raises(ValueError, match="n_resamples must be >= 1, got 0"):
        bootstrap_ci(rmse, y, p, n_resamples=0)
    with pytest.raises(ValueError, match="y_true has 50 values but y_pred has 49"):
        bootstrap_ci(rmse, y, p[:-1])


def test_pooled_bootstrap_resamples_each_user_of_each_split_as_its_own_group():
    ya, pa = _data(120, seed=4)
    yb, pb = _data(90, seed=5)
    ua = np.random.default_rng(6).integers(0, 30, ya.size)  # the widest ids come first
    ua[:2] = 29, 28
    ub = np.random.default_rng(7).integers(0, 12, yb.size)
    empty = (np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64))
    got = pooled_bootstrap_ci(rmse, [(ya, pa, ua), (yb, pb, ub), empty], n_resamples=150,
                              seed=2)
    # user u of split s is the group (s, u): the same code in two splits is two groups
    groups = np.concatenate([ua, 1000 + ub])
    ref = _grouped_reference(rmse, np.concatenate([ya, yb]), np.concatenate([pa, pb]),
                             groups, 150, 0.95, 2)
    assert got == pytest.approx(ref, rel=1e-12)
    merged = bootstrap_ci(rmse, np.concatenate([ya, yb]), np.concatenate([pa, pb]),
                          n_resamples=150, seed=2, groups=np.concatenate([ua, ub]))
    assert got != merged
    with pytest.raises(ValueError, match=r"^need at least one \(y_true, y_pred, users\) part$"):
        pooled_bootstrap_ci(rmse, [])


def test_pooled_bootstrap_of_one_split_is_its_grouped_bootstrap():
    y, p = _data(80, seed=8)
    u = np.random.default_rng(9).integers(0, 9, y.size)
    assert pooled_bootstrap_ci(mae, [(y, p, u)], n_resamples=100, confidence=0.9, seed=4) \
        == bootstrap_ci(mae, y, p, n_resamples=100, confidence=0.9, seed=4, groups=u)
