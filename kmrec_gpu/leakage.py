"""The leakage check every model must pass.

Fit, predict the test rows; give the test rows other ratings; fit again from scratch and
predict; the predictions must be identical. A model (or a whole pipeline) that reads test
ratings anywhere — a user mean over all rows, a scaler fitted on everything, clusters
computed before the split — moves, and the check names by how much.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kmrec_gpu import seeding
from kmrec_gpu.errors import KmrecError
from kmrec_gpu.splits import TTSplit


class LeakageError(KmrecError, AssertionError):
    """Predictions moved when only test ratings changed."""


@dataclass(frozen=True)
class LeakageReport:
    n_rows: int
    n_changed_ratings: int
    n_moved: int
    max_abs_delta: float

    @property
    def leaks(self) -> bool:
        return self.n_moved > 0


def perturb_test(split: TTSplit, seed: int = 0) -> TTSplit:
    """The same split with every test rating replaced by a different allowed value."""
    values = split.test.scale.values
    r = seeding.rng(seed, "leakage").integers(0, len(values) - 1, size=len(split.test))
    cur = np.searchsorted(values, split.test.ratings)
    # skipping the current value's index guarantees every rating really changes
    new = values[r + (r >= cur)]
    return dataclasses.replace(split, test=split.test.with_ratings(new))


def fit_predict_estimator(make_model: Callable[[], Any]) -> Callable[[TTSplit], np.ndarray]:
    """Adapter: an estimator factory as a ``split -> test predictions`` pipeline."""
    return lambda split: np.asarray(make_model().fit(split.train).predict(split.test))


def check_leakage(
    fit_predict: Callable[[TTSplit], np.ndarray], split: TTSplit, *, seed: int = 0
) -> LeakageReport:
    before = np.asarray(fit_predict(split), dtype=np.float64)
    changed = perturb_test(split, seed)
    after = np.asarray(fit_predict(changed), dtype=np.float64)
    if before.shape != after.shape:
        raise LeakageError(f"prediction shape changed: {before.shape} -> {after.shape}")
    delta = np.abs(before - after)
    moved = ~((before == after) | (np.isnan(before) & np.isnan(after)))
    return LeakageReport(
        n_rows=len(before),
        n_changed_ratings=int((changed.test.ratings != split.test.ratings).sum()),
        n_moved=int(moved.sum()),
        max_abs_delta=float(np.nanmax(delta)) if delta.size else 0.0,
    )


def assert_no_leakage(
    fit_predict: Callable[[TTSplit], np.ndarray], split: TTSplit, *, seed: int = 0
) -> LeakageReport:
    rep = check_leakage(fit_predict, split, seed=seed)
    if rep.leaks:
        raise LeakageError(
            f"{rep.n_moved} of {rep.n_rows} test predictions moved (max |delta| "
            f"{rep.max_abs_delta:.3g}) when only the test ratings changed: the model "
            "reads test ratings"
        )
    return rep
