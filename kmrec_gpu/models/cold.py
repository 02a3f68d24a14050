"""Every held-out pair gets a prediction: LensKit's fallback rule for rating models.

A pair is *cold* when its user or its movie has no training rating. What a model makes
of such a pair is an accident of its code (a mean-filled pivot gives the user's mean, a
network its zero padding row, a factor model a zero vector), so an RMSE would mix a
model's skill on warm pairs with that accident. :class:`ColdFallback` gives cold pairs
to the bias baseline ``mu + b_u + b_i`` fitted on the same training set, as LensKit's
``Fallback(model, Bias())`` does, and counts them in ``n_fallback_``.

A model config chooses its rule with ``cold_pairs`` (rating models only):
``bias_baseline`` (the default) or ``own``, kept for the baselines whose own rule *is*
what they measure and for the documents' as-published protocols.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmrec_gpu.ratings import Ratings

RULES = ("bias_baseline", "own")
DEFAULT = "bias_baseline"


class ColdFallback:
    """``primary`` on warm pairs, :class:`BiasBaseline` on cold ones.

    Both are fitted on the same training set (the fallback's fit counts in the fit time,
    as it would in a deployed model). Fitted attributes that the wrapper lacks are read
    from ``primary``, so a row's facts and a comparison's artifacts are the model's own;
    ``get_params`` is the primary's too, so rows name the model's configuration.
    """

    def __init__(self, primary: Any, fallback: Any = None) -> None:
        self.primary = primary
        if fallback is None:
            # imported here: the harness reads RULES at start-up, before any model is built
            from kmrec_gpu.models.baseline import BiasBaseline

            fallback = BiasBaseline()
        self.fallback = fallback

    def fit(self, train: Ratings) -> ColdFallback:
        self.primary.fit(train)
        self.fallback.fit(train)
        self.seen_users_ = np.bincount(train.users, minlength=train.n_users) > 0
        self.seen_items_ = np.bincount(train.items, minlength=train.n_items) > 0
        return self

    def cold(self, X: Ratings) -> np.ndarray:
        """True for each pair of ``X`` whose user or movie has no training rating."""
        if not hasattr(self, "seen_users_"):
            raise RuntimeError("ColdFallback is not fitted; call fit(train) first")
        if X.n_users != self.seen_users_.size or X.n_items != self.seen_items_.size:
            raise ValueError("X must share the training set's vocabularies (use a TTSplit)")
        return ~(self.seen_users_[X.users] & self.seen_items_[X.items])

    def predict(self, X: Ratings) -> np.ndarray:
        cold = self.cold(X)
        out = np.array(self.primary.predict(X), dtype=np.float64)  # a copy: it is written
        if cold.any():
            out[cold] = self.fallback.predict(X.subset(np.flatnonzero(cold)))
        self.n_fallback_ = int(cold.sum())
        return out

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        return self.primary.get_params()

    def __getattr__(self, name: str) -> Any:
        # only reached when normal lookup fails: the primary's fitted facts and artifacts
        primary = self.__dict__.get("primary")
        if primary is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(primary, name)


def rule(model_cfg: dict) -> str | None:
    """The cold-pair rule of a model config: None for a model that predicts no ratings."""
    if model_cfg.get("task") != "rating":
        return None
    return model_cfg.get("cold_pairs", DEFAULT)


def wrap(model: Any, model_cfg: dict) -> Any:
    return ColdFallback(model) if rule(model_cfg) == "bias_baseline" else model
